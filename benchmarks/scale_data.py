"""A many-category bucket in Google's layout, for the scale benchmark.

Every category gets `drawings` real drawings (the simplified heads of the 100 categories in
../shared/quickdraw-heads, about 2,500 distinct ones, each used many times with a fresh
key_id and the category's name), so that 344 categories x 2,000 drawings have the shape of
`dataset.limit: 2000` on Google's bucket. Bitmaps are rendered once per distinct drawing, as
Google rendered numpy_bitmap. Falls back to the demo data without the heads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson

from pipeline.formats.render import render_bitmaps
from pipeline.store.layout import google_categories

HEADS = Path(__file__).resolve().parents[2] / "shared" / "quickdraw-heads"
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
KEYS = ("word", "countrycode", "timestamp", "recognized", "key_id")


def _pool() -> tuple[list[dict], list[bytes], np.ndarray]:
    source = HEADS / "simplified" if HEADS.is_dir() else DEMO / "simplified"
    records = [
        orjson.loads(line)
        for path in sorted(source.glob("*.ndjson"))
        for line in path.read_bytes().splitlines()
    ]
    drawings = [record["drawing"] for record in records]
    meta = [{k: r[k] for k in ("countrycode", "timestamp", "recognized")} for r in records]
    bodies = [orjson.dumps(drawing) for drawing in drawings]
    return meta, bodies, render_bitmaps(drawings).reshape(len(records), -1)


def build(root: Path, categories: list[str], drawings: int) -> Path:
    """Write simplified/<cat>.ndjson and numpy_bitmap/<cat>.npy for each category (cached)."""
    stamp = root / "spec.json"
    spec = {"categories": categories, "drawings": drawings, "version": 1}
    if stamp.exists() and json.loads(stamp.read_text()) == spec:
        return root
    meta, bodies, bitmaps = _pool()
    for folder in ("simplified", "numpy_bitmap"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(344)
    for number, category in enumerate(categories):
        picks = rng.integers(0, len(bodies), drawings)
        first_key = 5_000_000_000_000_000 + number * 10_000_000
        with (root / "simplified" / f"{category}.ndjson").open("wb") as out:
            for offset, index in enumerate(picks.tolist()):
                head = {"word": category, **meta[index], "key_id": str(first_key + offset)}
                line = orjson.dumps({k: head[k] for k in KEYS})[:-1]
                out.write(line + b',"drawing":' + bodies[index] + b"}\n")
        np.save(root / "numpy_bitmap" / f"{category}.npy", bitmaps[picks])
    stamp.write_text(json.dumps(spec))
    return root


def all_categories() -> list[str]:
    return sorted(google_categories())
