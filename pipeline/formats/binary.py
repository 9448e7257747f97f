"""Google's compact `binary/<category>.bin` drawings: read, write and cut.

Each record, little-endian: key_id u64, countrycode 2 ASCII bytes, recognized u8, timestamp
u32 (Unix seconds), stroke count u16, then per stroke a point count u16, the x bytes and the
y bytes (the simplified 0..255 coordinates). About 36x smaller than the raw ndjson.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError

HEADER = struct.Struct("<Q2sBIH")
POINTS = struct.Struct("<H")


@dataclass(frozen=True)
class Record:
    key_id: int
    countrycode: str
    recognized: bool
    timestamp: int  # Unix seconds
    strokes: list[tuple[list[int], list[int]]]


class TruncatedRecord(ValueError):
    """A record that runs past the end of the file."""


def encode(record: Record) -> bytes:
    """One record in Google's layout."""
    parts = [
        HEADER.pack(
            record.key_id,
            record.countrycode.encode("ascii"),
            int(record.recognized),
            record.timestamp,
            len(record.strokes),
        )
    ]
    for xs, ys in record.strokes:
        if len(xs) != len(ys):
            raise ValueError("a stroke's x and y lists differ in length")
        parts += [POINTS.pack(len(xs)), bytes(xs), bytes(ys)]
    return b"".join(parts)


def write_binary(path: Path, records: Iterable[Record]) -> None:
    """Our own writer, for tests and the demo data (atomic, like every output)."""
    from pipeline.store.atomic import write_bytes

    write_bytes(path, b"".join(encode(record) for record in records))


def _record_end(data: bytes | memoryview, start: int) -> tuple[int, int, int]:
    """End offset, stroke count and point count of the record at `start`."""
    size = len(data)
    if start + HEADER.size > size:
        raise TruncatedRecord("the record header runs past the end of the file")
    strokes = HEADER.unpack_from(data, start)[4]
    position = start + HEADER.size
    points = 0
    for _ in range(strokes):
        if position + 2 > size:
            raise TruncatedRecord("a stroke header runs past the end of the file")
        count = POINTS.unpack_from(data, position)[0]
        position += 2 + 2 * count
        points += count
    if position > size:
        raise TruncatedRecord("the last stroke runs past the end of the file")
    return position, strokes, points


def spans(data: bytes | memoryview, path: Path, limit: int | None = None) -> Iterator[tuple]:
    """(offset, length, strokes, points) of each record, or one error naming record and offset."""
    position = number = 0
    while position < len(data) and (limit is None or number < limit):
        try:
            end, strokes, points = _record_end(data, position)
        except TruncatedRecord as exc:
            raise PipelineError(
                f"{path}: record {number + 1} (byte offset {position}): {exc}; the file is "
                "truncated or corrupt, download it again"
            ) from None
        yield position, end - position, strokes, points
        position = end
        number += 1


def read_headers(data: bytes | memoryview, offsets: np.ndarray) -> tuple:
    """key_id, countrycode, recognized and timestamp of the records at `offsets`."""
    headers = [HEADER.unpack_from(data, offset) for offset in offsets.tolist()]
    key_ids, codes, recognized, seconds, _ = zip(*headers, strict=True) if headers else ([],) * 5
    return (
        list(key_ids),
        [code.decode("ascii", "replace") for code in codes],
        [bool(flag) for flag in recognized],
        list(seconds),
    )


def first_stroke_areas(
    data: bytes | memoryview, offsets: np.ndarray, strokes: np.ndarray
) -> np.ndarray:
    """The signed area of each record's first stroke (shoelace, closing edge included; y grows
    downward, so positive is clockwise on screen), for all records at once.

    The coordinates are bytes, so every product and sum is exact: the value is the one the
    ndjson scanner and decoder compute for the same strokes. A record without strokes has 0.
    """
    buf = np.frombuffer(data, np.uint8)
    areas = np.zeros(len(offsets), np.float64)
    records = np.flatnonzero(strokes > 0)
    starts = offsets[records] + HEADER.size
    counts = buf[starts].astype(np.int64) | (buf[starts + 1].astype(np.int64) << 8)
    firsts = np.cumsum(counts) - counts  # each stroke's first point in the flat arrays
    owner = np.repeat(np.arange(len(records)), counts)
    flat = np.arange(int(counts.sum()))
    xs_at = starts[owner] + 2 + (flat - firsts[owner])
    xs = buf[xs_at].astype(np.int64)
    ys = buf[xs_at + counts[owner]].astype(np.int64)
    following = flat + 1  # the next point, and the first after the last: the closing edge
    nonempty = counts > 0
    following[(firsts + counts - 1)[nonempty]] = firsts[nonempty]
    terms = xs * ys[following] - xs[following] * ys
    areas[records] = np.bincount(owner, weights=terms, minlength=len(records)) * 0.5
    return areas


def _stroke_spans(data: bytes | memoryview, offset: int) -> Iterator[tuple[int, int]]:
    """(start of the x bytes, point count) of each stroke of the record at `offset`."""
    strokes = HEADER.unpack_from(data, offset)[4]
    position = offset + HEADER.size
    for _ in range(strokes):
        count = POINTS.unpack_from(data, position)[0]
        yield position + 2, count
        position += 2 + 2 * count
    if position > len(data):
        raise TruncatedRecord("the last stroke runs past the end of the record")


def read_strokes(data: bytes | memoryview, offset: int) -> list[list[list[int]]]:
    """The simplified strokes of the record at `offset`, as [[xs, ys], ...]."""
    return [
        [list(data[start : start + count]), list(data[start + count : start + 2 * count])]
        for start, count in _stroke_spans(data, offset)
    ]


def read_points(data: bytes | memoryview, offset: int) -> tuple[bytes, bytes, list[int]]:
    """The record's points as the sample keeps them: all x bytes, all y bytes, and each
    stroke's exclusive end."""
    xs, ys, ends = [], [], []
    end = 0
    for start, count in _stroke_spans(data, offset):
        xs.append(data[start : start + count])
        ys.append(data[start + count : start + 2 * count])
        end += count
        ends.append(end)
    return b"".join(xs), b"".join(ys), ends


def cut(path: Path, limit: int) -> int:
    """Keep the first `limit` records of a .bin file (atomically); return how many are kept."""
    from pipeline.store.atomic import write_bytes

    data = path.read_bytes()
    kept = list(spans(data, path, limit))
    end = kept[-1][0] + kept[-1][1] if kept else 0
    if end < len(data):
        write_bytes(path, data[:end])
    return len(kept)
