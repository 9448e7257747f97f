"""Parse Google's ndjson drawing files: metadata and stroke statistics, line by line, in ranges.

Lines in Google's own shape take a fast path: a compiled scanner
(pipeline/native/_native.c) checks the strokes' structure and counts them without decoding
(computing the first stroke's signed area on the way), and reads the metadata in Google's key
order straight into Arrow buffers. Any other
line is decoded in full with orjson, which accepts it or names what is wrong
(benchmarks/bench_join.py has the measurements). Files are split into byte ranges at line
boundaries so that several threads can share one file.
"""

from __future__ import annotations

import itertools
import math
import mmap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from pipeline.native import _native
from pipeline.store.schema import from_numpy

METADATA_KEYS = ("word", "countrycode", "timestamp", "recognized", "key_id")


@dataclass
class Columns:
    """What one byte range of a drawings file holds, column by column."""

    word: list[str] = field(default_factory=list)
    countrycode: list[str | None] = field(default_factory=list)
    timestamp: list[str] = field(default_factory=list)
    recognized: list[bool] = field(default_factory=list)
    key_id: list[int] = field(default_factory=list)
    strokes: list[int] = field(default_factory=list)
    points: list[int] = field(default_factory=list)
    duration_ms: list[int] = field(default_factory=list)
    first_stroke_area: list[float] = field(default_factory=list)
    byte_offset: list[int] = field(default_factory=list)
    byte_length: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class LineError(Exception):
    """A malformed line, by byte offset (the caller turns it into a line number)."""

    offset: int
    reason: str


def first_stroke_area(xs: list, ys: list) -> float:
    """The signed area of a stroke's polygon (shoelace formula, closing edge included).

    In the files' coordinates y grows downward, so a positive area is a stroke drawn clockwise
    on screen. The sum runs in the order the compiled scanner uses, in doubles, so the two
    agree to the bit.
    """
    for value in (*xs, *ys):
        if type(value) not in (int, float):
            raise ValueError(f"the first stroke holds {value!r}, not a number")
    if not xs:
        return 0.0
    x = [float(value) for value in xs]
    y = [float(value) for value in ys]
    total = 0.0
    for i in range(1, len(x)):
        total += x[i - 1] * y[i] - x[i] * y[i - 1]
    return (total + (x[-1] * y[0] - x[0] * y[-1])) * 0.5


def _check_format(number: int, stroke: list) -> None:
    """Google's format, as every real drawing in the heads shows it: simplified coordinates
    are integers in 0..255; raw coordinates any number, raw times numbers that never decrease
    within a stroke."""
    if len(stroke) == 2:
        for axis, values in zip("xy", stroke, strict=True):
            for value in values:
                if type(value) is not int or not 0 <= value <= 255:
                    raise ValueError(
                        f"stroke {number}: {axis} value {value!r} is not an integer in 0..255, "
                        "as simplified coordinates are"
                    )
        return
    for axis, values in zip("xyt", stroke, strict=True):
        for value in values:
            if type(value) not in (int, float):
                raise ValueError(f"stroke {number}: {axis} value {value!r} is not a number")
    times = stroke[2]
    for index in range(1, len(times)):
        if times[index] < times[index - 1]:
            raise ValueError(
                f"stroke {number}: time {times[index]!r} comes after {times[index - 1]!r} "
                "(raw times never decrease within a stroke)"
            )


def _stroke_stats(drawing: object, lists_per_stroke: int) -> tuple[int, int, int, float]:
    """Strokes, points, duration (raw: last time minus first) and the first stroke's signed
    area of a decoded drawing."""
    if not isinstance(drawing, list) or not drawing:
        raise ValueError("drawing must be a non-empty list of strokes")
    points = 0
    for number, stroke in enumerate(drawing):
        if not isinstance(stroke, list) or len(stroke) != lists_per_stroke:
            raise ValueError(f"stroke {number} must hold {lists_per_stroke} lists")
        count = len(stroke[0])
        for values in stroke:
            if not isinstance(values, list) or len(values) != count:
                raise ValueError(f"stroke {number} has lists of different lengths")
        if count == 0:
            raise ValueError(f"stroke {number} has no points (Google's strokes have at least one)")
        _check_format(number, stroke)
        points += count
    duration = 0
    if lists_per_stroke == 3:
        first, last = drawing[0][2], drawing[-1][2]
        duration = int(last[-1] - first[0]) if first and last else 0
    area = first_stroke_area(drawing[0][0], drawing[0][1])
    if not math.isfinite(area):
        raise ValueError("the first stroke's coordinates are too large for a double")
    return len(drawing), points, duration, area


def _metadata(record: object, *, with_drawing: bool = True) -> dict:
    """Check a decoded line's metadata: every key present, with the type Google writes."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    for key in (*METADATA_KEYS, "drawing") if with_drawing else METADATA_KEYS:
        if key not in record:
            raise ValueError(f"missing key {key!r}")
    for key in ("word", "timestamp", "key_id"):
        if not isinstance(record[key], str):
            raise ValueError(f"{key} must be a string, got {record[key]!r}")
    if not isinstance(record["recognized"], bool):
        raise ValueError(f"recognized must be true or false, got {record['recognized']!r}")
    code = record["countrycode"]
    if code is not None and not isinstance(code, str):
        raise ValueError(f"countrycode must be a string, got {code!r}")
    if not record["key_id"].isdigit() or int(record["key_id"]) >= 1 << 64:
        raise ValueError(f"key_id must be a 64-bit decimal number, got {record['key_id']!r}")
    return record


def decode_line(
    line: bytes | bytearray, lists_per_stroke: int
) -> tuple[dict, int, int, int, float]:
    """The slow, complete way: decode the whole line. Raises on anything malformed."""
    record = _metadata(orjson.loads(line))
    return (record, *_stroke_stats(record["drawing"], lists_per_stroke))


def _text(ends: bytes, data: bytes) -> pa.Array:
    """A string column from the scanner's int32 offsets and bytes (UTF-8 checked by the
    caller)."""
    return pa.Array.from_buffers(
        pa.string(), len(ends) // 4 - 1, [None, pa.py_buffer(ends), pa.py_buffer(data)]
    )


def parse_range(
    path: Path, start: int, end: int, raw: bool, compiled: bool = True
) -> pa.Table | LineError:
    """Parse the lines that begin in [start, end); return their columns or the first error.

    `compiled` takes the scanner's fast path; `compiled=False` decodes every line (tests
    compare the two).
    """
    lists = 3 if raw else 2
    if path.stat().st_size == 0:
        return _table(Columns())
    if compiled:
        table = _scanned(path, start, end, lists)
        if table is not None:
            return table
    return _decoded(path, start, end, lists)


def _scanned(path: Path, start: int, end: int, lists: int) -> pa.Table | None:
    """The range through the compiled scanner; None if any line is not in Google's shape.

    The range gets its own mapping, closed when scanned: a mapping of the whole file would keep
    every page it touched in this process's resident memory until the end.
    """
    base = start - start % mmap.ALLOCATIONGRANULARITY
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), end - base, offset=base, access=mmap.ACCESS_READ) as view,
    ):
        columns = _native.scan_lines(view, start - base, end - base, lists)
    starts, lengths, strokes, points, durations, recognized, key_ids, shaped, areas = (
        np.frombuffer(column, dtype)
        for column, dtype in zip(columns[:9], _SCANNED_TYPES, strict=True)
    )
    if not shaped.all():
        return None
    ends, texts = columns[9:12], columns[12:15]
    table = pa.table(
        {
            "word": _text(ends[0], texts[0]),
            "countrycode": _text(ends[1], texts[1]),
            "timestamp": _text(ends[2], texts[2]),
            "recognized": from_numpy(recognized.view(np.bool_)),
            "key_id": from_numpy(key_ids),
            "strokes": from_numpy(strokes),
            "points": from_numpy(points),
            "duration_ms": from_numpy(durations),
            "first_stroke_area": from_numpy(areas),
            "byte_offset": from_numpy(starts + base),
            "byte_length": from_numpy(lengths),
        }
    )
    try:
        table.validate(full=True)  # the texts must be UTF-8
    except pa.ArrowInvalid:
        return None  # the decoder will say which line is not
    return table


#: The numeric columns of `_native.scan_lines`, in its order.
_SCANNED_TYPES = (
    np.int64,
    np.int32,
    np.int32,
    np.int32,
    np.int64,
    np.uint8,
    np.uint64,
    np.uint8,
    np.float64,
)


def _decoded(path: Path, start: int, end: int, lists: int) -> pa.Table | LineError:
    """The range decoded line by line with orjson: accepts any key order, names any damage."""
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read(end - start)
    columns = Columns()
    line_start = 0
    while line_start < len(data):
        line_end = data.find(b"\n", line_start)
        line_end = len(data) if line_end < 0 else line_end
        try:
            record, strokes, points, duration, area = decode_line(data[line_start:line_end], lists)
        except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
            return LineError(start + line_start, str(exc) or type(exc).__name__)
        values = (
            record["word"],
            record["countrycode"],
            record["timestamp"],
            record["recognized"],
            int(record["key_id"]),
            strokes,
            points,
            duration,
            area,
            start + line_start,
            line_end - line_start,
        )
        for name, value in zip(_ROW_FIELDS, values, strict=True):
            getattr(columns, name).append(value)
        line_start = line_end + 1
    return _table(columns)


_ROW_FIELDS = (
    "word",
    "countrycode",
    "timestamp",
    "recognized",
    "key_id",
    "strokes",
    "points",
    "duration_ms",
    "first_stroke_area",
    "byte_offset",
    "byte_length",
)


def _table(columns: Columns) -> pa.Table:
    return pa.table(
        {
            "word": pa.array(columns.word, pa.string()),
            "countrycode": pa.array(columns.countrycode, pa.string()),
            "timestamp": pa.array(columns.timestamp, pa.string()),
            "recognized": pa.array(columns.recognized, pa.bool_()),
            "key_id": pa.array(columns.key_id, pa.uint64()),
            "strokes": pa.array(columns.strokes, pa.int32()),
            "points": pa.array(columns.points, pa.int32()),
            "duration_ms": pa.array(columns.duration_ms, pa.int64()),
            "first_stroke_area": pa.array(columns.first_stroke_area, pa.float64()),
            "byte_offset": pa.array(columns.byte_offset, pa.int64()),
            "byte_length": pa.array(columns.byte_length, pa.int32()),
        }
    )


def split_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """Cut a file into about `parts` byte ranges, each starting at the beginning of a line."""
    size = path.stat().st_size
    if size == 0:
        return []
    cuts = [0]
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        for part in range(1, parts):
            newline = buf.find(b"\n", max(cuts[-1], size * part // parts))
            if newline < 0 or newline + 1 >= size:
                break
            cuts.append(newline + 1)
    cuts.append(size)
    return list(itertools.pairwise(cuts))


def line_number(path: Path, offset: int) -> int:
    """1-based number of the line that starts at byte `offset`."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        count = 0
        position = buf.find(b"\n", 0, offset)
        while position >= 0:
            count += 1
            position = buf.find(b"\n", position + 1, offset)
        return count + 1
