"""The sampled drawings' strokes as the page carries them: a few flat typed arrays.

The sample holds, per drawing, `xs`/`ys` (uint8, all strokes concatenated, 0..255, y down),
`stroke_ends` (exclusive end of each stroke) and `ts` (ms since the first point; raw data
only). The page gets one array per quantity for the whole sample, so that Bokeh ships each as
one gzip-compressed buffer: coordinates as byte deltas from the previous point of the same
stroke (a stroke's first point as itself), which compress better than the coordinates; the
number of points per stroke and of strokes per drawing; and for raw data the ms between
consecutive points. The browser rebuilds the offsets once, on the first hover.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.errors import PipelineError
from pipeline.store import schema

STROKE_COLUMNS = ("xs", "ys", "stroke_ends")
MAX_GAP_MS = 65_535  # the page keeps gaps in uint16; the replay shortens long pauses anyway


@dataclass(frozen=True)
class Strokes:
    dx: np.ndarray  # uint8 per point: x minus the previous x of its stroke, mod 256
    dy: np.ndarray  # uint8 per point, likewise
    dt: np.ndarray | None  # uint16 per point: ms since the previous point (None: no timing)
    stroke_points: np.ndarray  # uint8/uint16 per stroke: its number of points
    drawing_strokes: np.ndarray  # uint8/uint16 per drawing: its number of strokes


def _smallest(values: np.ndarray) -> np.ndarray:
    return values.astype(np.uint8 if values.max(initial=0) < 256 else np.uint16)


def has_strokes(sample: pa.Table) -> bool:
    return all(name in sample.column_names for name in STROKE_COLUMNS)


def strokes_of(sample: pa.Table) -> Strokes:
    """The page's stroke arrays for every drawing of the sample, in sample order."""
    if not has_strokes(sample):
        missing = [name for name in STROKE_COLUMNS if name not in sample.column_names]
        raise PipelineError(
            f"the sample has no {', '.join(missing)} column: it predates strokes in the sample; "
            "re-run the sample stage (dvc repro)"
        )
    xs, point_offsets = schema.list_values(sample["xs"])
    ys, _ = schema.list_values(sample["ys"])
    ends, stroke_offsets = schema.list_values(sample["stroke_ends"])
    counts = np.diff(stroke_offsets)
    owner = np.repeat(np.arange(len(counts)), counts)
    global_ends = ends.astype(np.int64) + point_offsets[:-1][owner]
    last = stroke_offsets[1:][counts > 0] - 1
    if not np.array_equal(global_ends[last], point_offsets[1:][counts > 0]) or np.any(
        np.diff(global_ends) <= 0
    ):
        raise PipelineError(
            "the sample's stroke_ends do not partition its xs/ys; re-run the sample stage"
        )
    starts = np.concatenate([[0], global_ends[:-1]]).astype(np.int64)[: len(global_ends)]
    if np.any(np.diff(point_offsets)[counts == 0] > 0):
        raise PipelineError("the sample has points outside any stroke; re-run the sample stage")

    def deltas(values: np.ndarray) -> np.ndarray:
        out = np.diff(values.astype(np.int16), prepend=np.int16(0))
        out[starts] = values[starts]
        return out.astype(np.uint8)  # mod 256: the page adds them up mod 256

    dt = None
    if "ts" in sample.column_names and sample["ts"].null_count < sample.num_rows:
        times = sample["ts"].combine_chunks()
        if times.null_count:
            raise PipelineError("the sample's ts is null for some drawings only")
        ts, _ = schema.list_values(sample["ts"])
        gaps = np.diff(ts.astype(np.int64), prepend=0)
        gaps[point_offsets[:-1][counts > 0]] = 0  # each drawing starts at its first point
        dt = np.clip(gaps, 0, MAX_GAP_MS).astype(np.uint16)
    return Strokes(
        dx=deltas(xs),
        dy=deltas(ys),
        dt=dt,
        stroke_points=_smallest(global_ends - starts),
        drawing_strokes=_smallest(counts),
    )
