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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from pipeline import binary
from pipeline.errors import PipelineError
from pipeline.render import simplify_flat
from pipeline.schema import SAMPLE, from_numpy

COLUMNS = ("xs", "ys", "stroke_ends", "ts")


class BadDrawing(ValueError):
    """A chosen line or record that does not hold the drawing the store says it does."""


@dataclass
class _Flat:
    """Every drawing's points and stroke ends, appended in order."""

    timed: bool
    xs: list = field(default_factory=list)
    ys: list = field(default_factory=list)
    ts: list = field(default_factory=list)
    stroke_ends: list[int] = field(default_factory=list)
    point_ends: list[int] = field(default_factory=list)  # per drawing, into xs/ys
    ends_ends: list[int] = field(default_factory=list)  # per drawing, into stroke_ends
    points: int = 0

    def add_lists(self, drawing: list) -> None:
        """A simplified drawing as decoded: [[xs, ys], ...] of integers in 0..255."""
        for stroke in drawing:
            xs, ys = stroke[0], stroke[1]
            if len(xs) != len(ys):
                raise BadDrawing("a stroke's x and y lists differ in length")
            self.xs.extend(xs)
            self.ys.extend(ys)
            self.points += len(xs)
            self.stroke_ends.append(self.points - self._start())
        self._close()

    def add_simplified(self, xs: np.ndarray, ys: np.ndarray, ts: np.ndarray, ends: np.ndarray):
        """A raw drawing simplified by render.simplify_flat."""
        self.xs.append(xs)
        self.ys.append(ys)
        self.ts.append(ts)
        self.stroke_ends.extend(ends.tolist())
        self.points += len(xs)
        self._close()

    def _start(self) -> int:
        return self.point_ends[-1] if self.point_ends else 0

    def _close(self) -> None:
        self.point_ends.append(self.points)
        self.ends_ends.append(len(self.stroke_ends))

    def table(self) -> pa.Table:
        def values(parts: list, dtype: type) -> np.ndarray:
            if self.timed:
                return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)
            return np.asarray(parts, dtype=dtype)

        point_offsets = from_numpy(np.array([0, *self.point_ends], np.int32))
        end_offsets = from_numpy(np.array([0, *self.ends_ends], np.int32))
        count = len(self.point_ends)

        def listed(offsets: pa.Array, data: np.ndarray, name: str) -> pa.Array:
            return pa.ListArray.from_arrays(offsets, from_numpy(data), type=SAMPLE.field(name).type)

        if self.timed:
            ts = listed(point_offsets, values(self.ts, np.int32), "ts")
        else:
            ts = pa.nulls(count, SAMPLE.field("ts").type)
        return pa.table(
            [
                listed(point_offsets, values(self.xs, np.uint8), "xs"),
                listed(point_offsets, values(self.ys, np.uint8), "ys"),
                listed(end_offsets, np.array(self.stroke_ends, np.int32), "stroke_ends"),
                ts,
            ],
            schema=pa.schema([SAMPLE.field(name) for name in COLUMNS]),
        )


def _bad_coordinates(flat: _Flat) -> int | None:
    """The first drawing whose simplified coordinates are not integers in 0..255 (uint8 would
    wrap them), or None."""
    for name in ("xs", "ys"):
        values = np.asarray(getattr(flat, name))
        if values.dtype.kind in "iu" and (
            not len(values) or 0 <= values.min() <= values.max() <= 255
        ):
            continue
        bad = np.flatnonzero((values != np.rint(values)) | (values < 0) | (values > 255))
        return int(np.searchsorted(flat.point_ends, bad[0], side="right"))
    return None


def _decode_line(chunk: bytes, key_id: int, timed: bool) -> list:
    try:
        line = orjson.loads(chunk)
    except orjson.JSONDecodeError as exc:
        raise BadDrawing(f"not JSON ({exc})") from None
    if not isinstance(line, dict) or not isinstance(line.get("drawing"), list):
        raise BadDrawing("not a drawing (no 'drawing' list)")
    if str(line.get("key_id")) != str(key_id):
        raise BadDrawing(f"holds key_id {line.get('key_id')}, the store says {key_id}")
    drawing = line["drawing"]
    lists = 3 if timed else 2
    for stroke in drawing:
        if not isinstance(stroke, list) or len(stroke) != lists:
            raise BadDrawing(f"a stroke must hold {lists} lists")
    return drawing


def read_strokes(
    path: Path,
    fmt: str,
    key_ids: np.ndarray,
    positions: np.ndarray,
    offsets: np.ndarray,
    lengths: np.ndarray,
) -> pa.Table:
    """The strokes of the drawings at these byte spans of `path` (`fmt`: raw, simplified or
    binary), as the four list columns, one row per span in the order given."""
    order = np.argsort(offsets, kind="stable")  # file order: the disk reads forward
    timed = fmt == "raw"
    flat = _Flat(timed)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise PipelineError(
            f"{path}: not found; the sample reads the chosen drawings' strokes from the "
            "downloaded drawings file: run the download stage (dvc repro download)"
        ) from None
    try:
        for row in order.tolist():
            offset, length = int(offsets[row]), int(lengths[row])
            chunk = os.pread(fd, length, offset)
            try:
                if len(chunk) != length:
                    raise BadDrawing("the file ends before the drawing does")
                if fmt == "binary":
                    stored = binary.HEADER.unpack_from(chunk, 0)[0]
                    if stored != int(key_ids[row]):
                        raise BadDrawing(f"holds key_id {stored}, the store says {key_ids[row]}")
                    flat.add_lists(binary.read_strokes(chunk, 0))
                elif timed:
                    flat.add_simplified(
                        *simplify_flat(_decode_line(chunk, key_ids[row], True), True)
                    )
                else:
                    flat.add_lists(_decode_line(chunk, key_ids[row], False))
            except (BadDrawing, ValueError, TypeError, IndexError, struct.error) as exc:
                unit = "record" if fmt == "binary" else "line"
                raise PipelineError(
                    f"{path}: {unit} {int(positions[row]) + 1} (byte offset {offset}): {exc}; "
                    "the file does not match the joined store: re-run the join "
                    "(dvc repro -f join)"
                ) from None
    finally:
        os.close(fd)
    bad = None if timed else _bad_coordinates(flat)
    if bad is not None:
        row = int(order[bad])
        raise PipelineError(
            f"{path}: line {int(positions[row]) + 1} (byte offset {int(offsets[row])}): "
            "simplified coordinates must be integers in 0..255; the file does not match the "
            "joined store: re-run the join (dvc repro -f join)"
        )
    table = flat.table()
    if np.array_equal(order, np.arange(len(order))):
        return table
    return table.take(pa.array(np.argsort(order)))
