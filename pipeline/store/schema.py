"""Arrow schemas of the processed store and of the sample: one definition, used by every stage."""

import numpy as np
import pyarrow as pa

BITMAP_SIDE = 28
BITMAP_BYTES = BITMAP_SIDE * BITMAP_SIDE

#: Parquet key-value metadata of each partition: what it was made from (the join's record of
#: it, and the key later per-category stages key their own results on), and its summary.
RECORD_KEY = b"quickdraw.record"
SUMMARY_KEY = b"quickdraw.summary"

#: One row per drawing, in `data/processed/drawings/category=<cat>/part-0.parquet`.
DRAWINGS = pa.schema(
    [
        pa.field("key_id", pa.uint64(), nullable=False),
        pa.field("word", pa.string(), nullable=False),
        pa.field("countrycode", pa.string()),
        pa.field("recognized", pa.bool_(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("bitmap", pa.binary(BITMAP_BYTES), nullable=False),
        pa.field("position", pa.int64(), nullable=False),
        pa.field("byte_offset", pa.int64(), nullable=False),
        pa.field("byte_length", pa.int32(), nullable=False),
        pa.field("strokes", pa.int32(), nullable=False),
        pa.field("points", pa.int32(), nullable=False),
        pa.field("duration_ms", pa.int64()),  # raw drawings only: last time minus first
        # The first stroke's signed area (shoelace, closing edge included) in the file's
        # coordinates, y growing downward: positive = drawn clockwise on screen, 0 = no
        # direction (a line, a dot). Computed by the join's scan; the profile reads it.
        pa.field("first_stroke_area", pa.float64(), nullable=False),
    ]
)

#: The columns the sample stage writes for the report: the store's, the category (which the
#: store keeps in its partition folders) and the drawing's strokes, read from the drawings file.
SAMPLE = pa.schema(
    [
        DRAWINGS.field("key_id"),
        pa.field("category", pa.string(), nullable=False),
        *(DRAWINGS.field(name) for name in ("countrycode", "recognized", "timestamp", "bitmap")),
        DRAWINGS.field("position"),
        # Every point of every stroke, concatenated, in Google's 0..255 simplified space (y down)
        pa.field("xs", pa.list_(pa.uint8()), nullable=False),
        pa.field("ys", pa.list_(pa.uint8()), nullable=False),
        # The exclusive end of each stroke within xs and ys
        pa.field("stroke_ends", pa.list_(pa.int32()), nullable=False),
        # ms since the drawing's first point, per point; raw drawings only, else null
        pa.field("ts", pa.list_(pa.int32())),
    ]
)


#: One row per (category, country) over every drawing of the store: `data/profile/profile.parquet`
#: (pipeline/stats/profile.py; the README explains each column).
PROFILE = pa.schema(
    [
        pa.field("category", pa.string(), nullable=False),
        pa.field("countrycode", pa.string()),
        pa.field("drawings", pa.int64(), nullable=False),
        pa.field("recognized", pa.int64(), nullable=False),
        pa.field("recognized_share", pa.float64(), nullable=False),
        pa.field("recognized_low", pa.float64(), nullable=False),  # 95% Wilson score interval
        pa.field("recognized_high", pa.float64(), nullable=False),
        pa.field("strokes_median", pa.float64(), nullable=False),
        pa.field("points_median", pa.float64(), nullable=False),
        pa.field("duration_ms_median", pa.float64()),  # null unless the source is raw
        pa.field("directed", pa.int64(), nullable=False),  # first strokes with a direction
        pa.field("clockwise_share", pa.float64()),  # null when no first stroke has a direction
        pa.field("clockwise_low", pa.float64()),  # 95% Wilson score interval, null as above
        pa.field("clockwise_high", pa.float64()),
        pa.field("mean_bitmap", pa.binary(BITMAP_BYTES), nullable=False),
    ]
)


def from_numpy(values: np.ndarray) -> pa.Array:
    """A numeric or bool Arrow array over a numpy array's memory.

    `pa.array(ndarray)` imports pandas on its first call (half a second, on every run of a
    stage), only to ask whether the input is a pandas object.
    """
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)]
    )


def strings(values: list[str | None]) -> pa.Array:
    """A string array from Python strings, without `pa.array`'s pandas import."""
    data = [value.encode("utf-8") for value in values if value is not None]
    lengths = np.array([0 if v is None else len(v.encode("utf-8")) for v in values], np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    valid = np.array([value is not None for value in values], np.bool_)
    return pa.Array.from_buffers(
        pa.string(),
        len(values),
        [
            pa.py_buffer(np.packbits(valid, bitorder="little")),
            pa.py_buffer(offsets),
            pa.py_buffer(b"".join(data)),
        ],
        null_count=int((~valid).sum()),
    )


def to_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A numeric Arrow column without nulls as a numpy array (a view for one chunk).

    `to_numpy()` imports pandas, for the same half second as `pa.array(ndarray)`.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count or not pa.types.is_primitive(column.type) or column.type == pa.bool_():
        raise TypeError(f"to_numpy: a numeric column without nulls, not {column.type}")
    values = np.frombuffer(column.buffers()[1], column.type.to_pandas_dtype())
    return values[column.offset : column.offset + len(column)]


def repeat_text(value: str, count: int) -> pa.Array:
    """A string column holding `value` `count` times (`pa.array` and `pa.scalar` would import
    pandas, see `from_numpy`)."""
    data = value.encode("utf-8")
    offsets = np.arange(count + 1, dtype=np.int32) * len(data)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data * count)]
    )


def list_values(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list column as its flat values and each row's offsets into them (from 0): row i is
    values[offsets[i]:offsets[i + 1]]. Numeric lists without nulls; no pandas import."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    offsets = to_numpy(column.offsets).astype(np.int64)
    values = to_numpy(column.values)[offsets[0] : offsets[-1]]
    return values, offsets - offsets[0]
