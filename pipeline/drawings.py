"""Parse Google's ndjson drawing files: metadata and stroke statistics, line by line, in ranges.

Lines in Google's own shape take a fast path that checks the strokes' characters, brackets and
counts without decoding them; any other line is decoded in full with orjson, which accepts it
or names what is wrong (see benchmarks/bench_join.py for the measurements). Files are split
into byte ranges at line boundaries so that several processes can share one file.
"""

from __future__ import annotations

import itertools
import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

import orjson

METADATA_KEYS = ("word", "countrycode", "timestamp", "recognized", "key_id")
_DRAWING_KEY = b',"drawing":'
_BLOCK = 8 << 20


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
    byte_offset: list[int] = field(default_factory=list)
    byte_length: list[int] = field(default_factory=list)
    timestamp_seconds: list[int] = field(default_factory=list)  # binary files: Unix seconds

    def extend(self, other: Columns) -> None:
        for name, values in vars(other).items():
            getattr(self, name).extend(values)


@dataclass(frozen=True)
class LineError(Exception):
    """A malformed line, by byte offset (the caller turns it into a line number)."""

    offset: int
    reason: str


def _stroke_stats(drawing: object, lists_per_stroke: int) -> tuple[int, int, int]:
    """Strokes, points and duration (raw: last time minus first) of a decoded drawing."""
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
        points += count
    duration = 0
    if lists_per_stroke == 3:
        first, last = drawing[0][2], drawing[-1][2]
        duration = int(last[-1] - first[0]) if first and last else 0
    return len(drawing), points, duration


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


def _parse_line(line: bytes | bytearray, lists_per_stroke: int) -> tuple[dict, int, int, int]:
    """The slow, complete way: decode the whole line. Raises on anything malformed."""
    record = _metadata(orjson.loads(line))
    return (record, *_stroke_stats(record["drawing"], lists_per_stroke))


class _FastLines:
    """Google's own line shape, checked without decoding the strokes.

    A line takes the fast path when `drawing` is its last key, opens with "[[[" and closes the
    line, its brackets balance, it holds no empty list, and its brackets and commas fit whole
    strokes of k lists (k = 3 raw, 2 simplified): 1 + S*(k + 1) "[" for S strokes and P*k - 1
    commas for P points. Then S and P are exact and only the short metadata prefix is decoded;
    counting runs at memory speed where decoding builds a Python object per number. Every other
    line is decoded in full, which accepts it (another key order, white space) or names what is
    wrong. What this path does not read is the digits of
    each number: a truncated or cut line, a lost bracket or a missing key never pass it.
    """

    def __init__(self, lists_per_stroke: int) -> None:
        self.lists = lists_per_stroke

    def parse(self, data: bytearray, start: int, end: int):
        """(record, strokes, points, duration) of the line data[start:end], or None."""
        cut = data.find(_DRAWING_KEY, start, start + 512)
        body = cut + len(_DRAWING_KEY)
        if cut < 0 or not data.startswith(b"[[[", body) or not data.startswith(b"]]]}", end - 4):
            return None
        opens = data.count(b"[", body, end)
        strokes, odd_brackets = divmod(opens - 1, self.lists + 1)
        points, odd_commas = divmod(data.count(b",", body, end) + 1, self.lists)
        if (
            odd_brackets
            or odd_commas
            or data.count(b"]", body, end) != opens
            or data.find(b"[]", body, end) >= 0
        ):
            return None
        try:
            record = _metadata(orjson.loads(data[start:cut] + b"}"), with_drawing=False)
        except (orjson.JSONDecodeError, ValueError):
            return None
        duration = 0
        if self.lists == 3:  # times of stroke 0 follow its second "],["; the last end the line
            times = data.find(b"],[", data.find(b"],[", body) + 3) + 3
            first_end = min(i for i in (data.find(b",", times), data.find(b"]", times)) if i >= 0)
            last_start = max(data.rfind(b",", body, end - 4), data.rfind(b"[", body, end - 4))
            try:
                duration = int(float(data[last_start + 1 : end - 4]) - float(data[times:first_end]))
            except ValueError:
                return None
        return record, strokes, points, duration


def parse_range(path: Path, start: int, end: int, raw: bool) -> Columns | LineError:
    """Parse the lines that begin in [start, end); return their columns or the first error.

    The range is read in blocks of whole lines into one reused buffer: no per-line copies of
    the (kilobytes long) strokes, which is what makes this several times faster than decoding.
    """
    lists_per_stroke = 3 if raw else 2
    fast = _FastLines(lists_per_stroke)
    rows: list[tuple] = []
    add = rows.append
    buffer = bytearray(_BLOCK)
    with path.open("rb") as handle:
        file_size = os.fstat(handle.fileno()).st_size
        position = start
        while position < end:
            handle.seek(position)
            size = handle.readinto(buffer)
            data = buffer if size == len(buffer) else buffer[:size]
            last = data.rfind(b"\n")
            if position + size >= file_size and not data.endswith(b"\n"):
                last = size  # the file's final line, without a newline
            elif last < 0:  # a line longer than the buffer: grow it and read again
                buffer = bytearray(2 * len(buffer))
                continue
            line_start = 0
            while line_start < last and position + line_start < end:
                line_end = data.find(b"\n", line_start, last)
                line_end = last if line_end < 0 else line_end
                parsed = fast.parse(data, line_start, line_end)
                if parsed is None:
                    try:
                        parsed = _parse_line(data[line_start:line_end], lists_per_stroke)
                    except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                        return LineError(position + line_start, str(exc) or type(exc).__name__)
                record, strokes, points, duration = parsed
                add(
                    (
                        record["word"],
                        record["countrycode"],
                        record["timestamp"],
                        record["recognized"],
                        int(record["key_id"]),
                        strokes,
                        points,
                        duration,
                        position + line_start,
                        line_end - line_start,
                    )
                )
                line_start = line_end + 1
            position += line_start
    return Columns(*map(list, zip(*rows, strict=True))) if rows else Columns()


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
