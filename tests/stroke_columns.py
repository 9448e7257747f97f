"""Stroke columns for a sample, read from its ndjson lines: the sample stage's contract
(`xs`, `ys`, `stroke_ends`, `ts`; pipeline/schema.py), for tests and benchmarks of the report
on samples written without them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa


def _lines(path: Path, wanted: set[int]) -> dict[int, bytes]:
    found = {}
    with path.open("rb") as handle:
        for number, line in enumerate(handle):
            if number in wanted:
                found[number] = line
    return found


def drawing_columns(
    strokes: list, raw: bool
) -> tuple[list[int], list[int], list[int], list | None]:
    """One drawing's xs, ys, stroke_ends and ts. Raw strokes are scaled into 0..255 as
    Google's simplification does (min to 0, uniformly), every point and its time kept."""
    points = [np.asarray(stroke[:2], dtype=np.float64) for stroke in strokes]
    if raw:
        low = np.concatenate(points, axis=1).min(axis=1, keepdims=True)
        extent = float((np.concatenate(points, axis=1) - low).max()) or 1.0
        points = [np.clip(np.rint((p - low) * 255.0 / extent), 0, 255) for p in points]
    xs = [int(v) for p in points for v in p[0]]
    ys = [int(v) for p in points for v in p[1]]
    ends = np.cumsum([p.shape[1] for p in points]).tolist()
    ts = None
    if raw:
        first = strokes[0][2][0]
        ts = [int(t - first) for stroke in strokes for t in stroke[2]]
    return xs, ys, ends, ts


def add_strokes(sample: pa.Table, root: Path, drawings: str) -> pa.Table:
    """The sample with its drawings' strokes, from `<root>/<drawings>/<category>.ndjson`."""
    raw = drawings == "raw"
    rows = list(zip(sample["category"].to_pylist(), sample["position"].to_pylist(), strict=True))
    lines = {}
    for category in {c for c, _ in rows}:
        wanted = {p for c, p in rows if c == category}
        lines[category] = _lines(root / drawings / f"{category}.ndjson", wanted)
    columns = [drawing_columns(orjson.loads(lines[c][p])["drawing"], raw) for c, p in rows]
    xs, ys, ends, ts = zip(*columns, strict=True) if columns else ([], [], [], [])
    return (
        sample.append_column("xs", pa.array(xs, pa.list_(pa.uint8())))
        .append_column("ys", pa.array(ys, pa.list_(pa.uint8())))
        .append_column("stroke_ends", pa.array(ends, pa.list_(pa.int32())))
        .append_column("ts", pa.array(ts, pa.list_(pa.int32())))
    )
