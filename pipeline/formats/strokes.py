"""The chosen drawings' strokes, read from the downloaded drawings file through the byte spans
the join recorded: only the chosen lines (or `.bin` records) are read, in file order, and raw
strokes are simplified the way Google did, keeping each kept point's time.

The result is four list columns in Google's 0..255 simplified space (y down): `xs`, `ys` (every
point of every stroke, concatenated), `stroke_ends` (exclusive end of each stroke within them)
and `ts` (ms since the drawing's first point; raw drawings only, else null).
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from pipeline import cpus
from pipeline.errors import PipelineError
from pipeline.formats import binary
from pipeline.formats.render import simplify_flat
from pipeline.native import _native
from pipeline.store.schema import SAMPLE, from_numpy, list_values

COLUMNS = ("xs", "ys", "stroke_ends", "ts")
BATCH = 256  # drawings per task of the thread pool


class BadDrawing(ValueError):
    """A chosen line or record that does not hold the drawing the store says it does."""


@dataclass
class _Flat:
    """Every drawing's points and stroke ends (bytes or arrays), appended in order."""

    timed: bool
    xs: list = field(default_factory=list)
    ys: list = field(default_factory=list)
    ts: list = field(default_factory=list)
    ends: list = field(default_factory=list)
    point_ends: list[int] = field(default_factory=list)  # per drawing, into xs/ys
    ends_ends: list[int] = field(default_factory=list)  # per drawing, into stroke_ends
    points: int = 0
    strokes: int = 0

    def add(self, xs, ys, ts, ends) -> None:
        """One drawing: x and y (uint8), times (int32, raw only), each stroke's end (int32)."""
        self.xs.append(xs)
        self.ys.append(ys)
        if self.timed:
            self.ts.append(ts)
        self.ends.append(ends)
        self.points += len(xs)
        self.strokes += len(ends) // 4 if isinstance(ends, bytes) else len(ends)
        self.point_ends.append(self.points)
        self.ends_ends.append(self.strokes)

    def table(self) -> pa.Table:
        def values(parts: list, dtype: type) -> np.ndarray:
            arrays = [np.frombuffer(part, dtype) for part in parts]
            return np.concatenate(arrays) if arrays else np.zeros(0, dtype)

        def listed(ends: list[int], data: np.ndarray, name: str) -> pa.Array:
            offsets = from_numpy(np.array([0, *ends], np.int32))
            return pa.ListArray.from_arrays(offsets, from_numpy(data), type=SAMPLE.field(name).type)

        if self.timed:
            ts = listed(self.point_ends, values(self.ts, np.int32), "ts")
        else:
            ts = pa.nulls(len(self.point_ends), SAMPLE.field("ts").type)
        return pa.table(
            [
                listed(self.point_ends, values(self.xs, np.uint8), "xs"),
                listed(self.point_ends, values(self.ys, np.uint8), "ys"),
                listed(self.ends_ends, values(self.ends, np.int32), "stroke_ends"),
                ts,
            ],
            schema=pa.schema([SAMPLE.field(name) for name in COLUMNS]),
        )


def _decode_line(chunk: bytes, key_id: int | None) -> list:
    """The drawing of a line (the compiled readers check its strokes)."""
    try:
        line = orjson.loads(chunk)
    except orjson.JSONDecodeError as exc:
        raise BadDrawing(f"not JSON ({exc})") from None
    if not isinstance(line, dict) or not isinstance(line.get("drawing"), list):
        raise BadDrawing("not a drawing (no 'drawing' list)")
    if key_id is not None and str(line.get("key_id")) != str(key_id):
        raise BadDrawing(f"holds key_id {line.get('key_id')}, the store says {key_id}")
    return line["drawing"]


@dataclass(frozen=True)
class Strokes:
    """The stroke columns (of the sample, or of read_strokes) as flat arrays: drawing i's points are
    xs[points[i]:points[i + 1]], its strokes end at ends[strokes[i]:strokes[i + 1]]."""

    xs: np.ndarray
    ys: np.ndarray
    points: np.ndarray
    ends: np.ndarray
    strokes: np.ndarray

    @classmethod
    def from_sample(cls, sample: pa.Table) -> Strokes:
        xs, points = list_values(sample["xs"])
        ys, _ = list_values(sample["ys"])
        ends, strokes = list_values(sample["stroke_ends"])
        return cls(xs, ys, points, ends, strokes)

    def __len__(self) -> int:
        return len(self.points) - 1

    def of(self, index: int) -> list[np.ndarray]:
        """Drawing `index`'s strokes, each an int64 array of shape (2, k): x, y in 0..255 (y
        down), as render.simplify_strokes gives them and render.render_bitmaps takes them."""
        start, stop = self.points[index], self.points[index + 1]
        points = np.vstack((self.xs[start:stop], self.ys[start:stop])).astype(np.int64)
        ends = self.ends[self.strokes[index] : self.strokes[index + 1]]
        return [s for s in np.split(points, ends[:-1], axis=1) if s.shape[1]]


def _points(chunk: bytes, length: int, fmt: str, key_id: int | None) -> tuple:
    """One drawing's (xs, ys, ts, ends) from its bytes."""
    if len(chunk) != length:
        raise BadDrawing("the file ends before the drawing does")
    if fmt == "binary":
        stored = binary.HEADER.unpack_from(chunk, 0)[0]
        if key_id is not None and stored != key_id:
            raise BadDrawing(f"holds key_id {stored}, the store says {key_id}")
        xs, ys, ends = binary.read_points(chunk, 0)
        return xs, ys, None, np.array(ends, np.int32)
    if fmt == "raw":
        return simplify_flat(_decode_line(chunk, key_id), True)
    xs, ys, ends = _native.flatten(_decode_line(chunk, key_id))
    return xs, ys, None, ends


class _RowError(Exception):
    def __init__(self, row: int, reason: Exception) -> None:
        self.row, self.reason = row, reason


def _read_rows(fd: int, fmt: str, rows: list[int], spans: tuple) -> list[tuple]:
    keys, offsets, lengths = spans
    out = []
    for row in rows:
        try:
            out.append(
                _points(os.pread(fd, lengths[row], offsets[row]), lengths[row], fmt, keys[row])
            )
        except (BadDrawing, ValueError, TypeError, IndexError, struct.error) as exc:
            raise _RowError(row, exc) from None
    return out


def read_strokes(
    path: Path,
    fmt: str,
    key_ids: np.ndarray | None,
    positions: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
) -> pa.Table:
    """The strokes of the drawings at these byte spans of `path` (`fmt`: raw, simplified or
    binary), as the four list columns, one row per span in the order given. Each drawing
    must hold its key_id (unless `key_ids` is None); `positions` (0-based lines or records)
    name it in errors.

    Raw drawings are simplified on every core (the C simplification releases the GIL), in
    batches whose results are put back in file order: the output does not depend on it.
    """
    order = np.argsort(offsets, kind="stable").tolist()  # file order: the disk reads forward
    keys = key_ids.tolist() if key_ids is not None else [None] * len(offsets)
    spans = (keys, offsets.tolist(), lengths.tolist())
    batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
    workers = min(cpus(), len(batches)) if fmt == "raw" else 1
    flat = _Flat(fmt == "raw")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise PipelineError(
            f"{path}: not found; the sample reads the chosen drawings' strokes from the "
            f"downloaded drawings file: run the download stage (dvc repro)"
        ) from None
    try:
        with ThreadPoolExecutor(max(workers, 1)) as pool:
            for drawings in pool.map(lambda rows: _read_rows(fd, fmt, rows, spans), batches):
                for drawing in drawings:
                    flat.add(*drawing)
    except _RowError as error:
        unit = "record" if fmt == "binary" else "line"
        raise PipelineError(
            f"{path}: {unit} {int(positions[error.row]) + 1} (byte offset "
            f"{int(offsets[error.row])}): {error.reason}; the file does not match the joined "
            "store: re-run the join (dvc repro -f join)"
        ) from None
    finally:
        os.close(fd)
    table = flat.table()
    if order == list(range(len(order))):
        return table
    return table.take(pa.array(np.argsort(order)))
