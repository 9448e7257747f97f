"""Google's Quick, Draw! file formats (bitmaps, ndjson drawings, binary), drawing
strokes into bitmaps, and the join's check that a category's two files agree."""
