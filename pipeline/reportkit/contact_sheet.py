"""A PNG contact sheet of sampled drawings, one row per country group, for places where a
picture travels better than HTML (a CI summary, a README). Each drawing is drawn from its
strokes as vector lines (supersampled, then averaged down), not enlarged from its 28x28 bitmap.
Same inputs, same bytes: no timestamps or metadata in the PNG, Pillow's own bundled font and
zlib, and drawing and downsampling are integer-exact."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline.formats.strokes import Strokes
from pipeline.reportkit.drawings import OTHER, Drawings, country_name

CELL = 64  # a drawing's square, in pixels
GAP = 4
MARGIN = 12
LABEL_WIDTH = 210
ROW_HEIGHT = CELL + GAP
LINE_HEIGHT = 18
PER_GROUP = 20
INSET = 5  # white between a drawing's bounding box and its cell's edge
SUPERSAMPLE = 4  # drawn at 4x, then each 4x4 block averaged: antialiased lines
PEN = 1.75  # line width in cell pixels (Google's pen of 16 in 304 is 1.5 px of a 28 px bitmap)
SPAN = 255  # the simplified strokes' coordinates are 0..255


def draw_cell(strokes: Sequence[np.ndarray], size: int = CELL) -> Image.Image:
    """One drawing (strokes of shape (2, k): x, y), dark on white, its bounding box centred
    in a `size` square (as Google centres the bitmaps), lines with round ends and joins,
    antialiased by supersampling. Same bytes on every machine: integer device coordinates,
    no trigonometry (docs/ci.md, "The same bytes on every machine")."""
    big = size * SUPERSAMPLE
    canvas = Image.new("L", (big, big), 255)
    if not strokes:
        return canvas.resize((size, size), Image.Resampling.BOX)
    draw = ImageDraw.Draw(canvas)
    scale = (size - 2 * INSET) * SUPERSAMPLE / SPAN
    points = np.concatenate(strokes, axis=1).T
    offset = (big - (points.max(axis=0) + points.min(axis=0)) * scale) / 2
    width = round(PEN * SUPERSAMPLE)
    radius = width / 2
    for stroke in strokes:
        # integer device coordinates: the same pixels on every platform
        xy = [tuple(p) for p in np.rint(stroke.T * scale + offset).astype(int).tolist()]
        if len(xy) > 1:
            draw.line(xy, fill=0, width=width)
        # round caps and joins as discs at every point (and a dot for a one-point stroke):
        # Pillow's integer ellipse, where its curved joints compute angles with libm's
        # trigonometry, whose last bits differ between C libraries
        for x, y in xy:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return canvas.resize((size, size), Image.Resampling.BOX)


def pick(drawings: Drawings, group: int, count: int) -> np.ndarray:
    """Up to `count` drawings of a group, taking the categories in turn (sample order within)."""
    members = np.flatnonzero(drawings.group == group)
    categories = drawings.category[members]
    rank = np.zeros(len(members), np.int64)
    for category in np.unique(categories):
        where = categories == category
        rank[where] = np.arange(where.sum())
    order = np.lexsort((categories, rank))
    return members[order[:count]]


def _label(drawings: Drawings, group: int) -> str:
    name = drawings.groups[group]
    total = int((drawings.group == group).sum())
    if name == OTHER:
        return f"other countries ({total:,})"
    return f"{name} {country_name(name)}"[:22] + f" ({total:,})"


def render(
    drawings: Drawings,
    strokes: Strokes,
    colours: Sequence[str],
    heading: Sequence[str],
    per_group: int = PER_GROUP,
) -> Image.Image:
    """The sheet: `heading` lines, then per country group a swatch, a label and its drawings
    (`strokes` holds the drawings' strokes, in the same order as `drawings`)."""
    font = ImageFont.load_default(size=13)
    width = 2 * MARGIN + LABEL_WIDTH + per_group * (CELL + GAP)
    top = MARGIN + LINE_HEIGHT * len(heading) + GAP
    height = top + ROW_HEIGHT * max(len(drawings.groups), 1) + MARGIN
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    for line, text in enumerate(heading):
        draw.text((MARGIN, MARGIN + line * LINE_HEIGHT), text, fill="#222222", font=font)
    for group, colour in enumerate(colours):
        y = top + group * ROW_HEIGHT
        middle = y + CELL // 2
        draw.rectangle((MARGIN, middle - 6, MARGIN + 12, middle + 6), fill=colour)
        draw.text((MARGIN + 18, middle - 7), _label(drawings, group), fill="#222222", font=font)
        for slot, index in enumerate(pick(drawings, group, per_group)):
            x = MARGIN + LABEL_WIDTH + slot * (CELL + GAP)
            sheet.paste(draw_cell(strokes.of(int(index))), (x, y))
            draw.rectangle((x - 1, y - 1, x + CELL, y + CELL), outline="#dddddd", width=1)
    return sheet


def png_bytes(image: Image.Image) -> bytes:
    """PNG without metadata (no time, no text chunks): identical bytes for identical pixels."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)  # 9: 5% smaller, 4x slower
    return buffer.getvalue()
