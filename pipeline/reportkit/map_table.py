"""The report's map as data: data/report/map.parquet, one row per sampled drawing with the map
coordinates the page places it at and its drawing as a small PNG, for pandas, notebooks and
tools built for many points (Embedding Atlas reads x, y and an image column), without
recomputing the layout.

The PNG is the contact sheet's cell (drawn from the strokes, same bytes for same strokes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.formats.strokes import Strokes
from pipeline.reportkit import contact_sheet
from pipeline.store import atomic

IMAGE_SIZE = 64  # pixels; about 1 kB a drawing

SCHEMA = pa.schema(
    [
        pa.field("key_id", pa.uint64(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("countrycode", pa.string()),
        pa.field("x", pa.float32(), nullable=False),
        pa.field("y", pa.float32(), nullable=False),
        pa.field("image", pa.binary(), nullable=False),  # PNG, dark strokes on white
    ]
)


def map_table(sample: pa.Table, coords: np.ndarray) -> pa.Table:
    """The sample's rows (in sample order, as the page lists them) with their map position."""
    strokes = Strokes.from_sample(sample)
    images = [
        contact_sheet.png_bytes(contact_sheet.draw_cell(strokes.of(i), IMAGE_SIZE))
        for i in range(sample.num_rows)
    ]
    coords = np.asarray(coords, dtype=np.float32)
    return pa.table(
        [
            sample["key_id"],
            sample["category"],
            sample["countrycode"],
            pa.array(coords[:, 0], pa.float32()),
            pa.array(coords[:, 1], pa.float32()),
            pa.array(images, pa.binary()),
        ],
        schema=SCHEMA,
    )


def write_map_table(path: Path, sample: pa.Table, coords: np.ndarray) -> None:
    with atomic.atomic_path(path) as staging:
        pq.write_table(map_table(sample, coords), staging, compression="zstd")
