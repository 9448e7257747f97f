"""Large report inputs built from the real heads (../shared/quickdraw-heads): a many-category
bucket sample, and a category drawn in 100+ countries in Google's layout. Shared by
test_report_scale.py and the screenshots; the heads are never copied into the repository.

Drawings are the about 2,500 distinct simplified heads, each used many times with a fresh
key_id. A category label follows the drawing's real category (copy j of real category c is
labelled with category (c + 100 j) mod the names), so that a label's drawings lie together on
the map as real categories do; category sizes fall off as in a real bucket with a size limit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

from pipeline.formats.render import render_bitmaps
from pipeline.reportkit import embedding
from pipeline.store.schema import SAMPLE

ROOT = Path(__file__).resolve().parents[1]
NAMES = tuple((ROOT / "pipeline" / "categories.txt").read_text().splitlines())


def heads_pool(heads: Path) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """The distinct simplified heads, their bitmaps, and each one's real category index."""
    records, origin = [], []
    for index, path in enumerate(sorted((heads / "simplified").glob("*.ndjson"))):
        for line in path.read_bytes().splitlines():
            records.append(orjson.loads(line))
            origin.append(index)
    bitmaps = render_bitmaps([r["drawing"] for r in records]).reshape(len(records), -1)
    return records, bitmaps, np.array(origin)


def jittered(bitmaps: np.ndarray, count: int, seed: int = 1) -> np.ndarray:
    """(count, 784) uint8: copies of the bitmaps, each shifted by -1..1 px per axis, its ink
    scaled to 76..100% in integers (so that the input itself is the same on every CPU)."""
    rng = np.random.default_rng(seed)
    images = bitmaps.reshape(len(bitmaps), 28, 28)[rng.integers(0, len(bitmaps), count)]
    shifts = rng.integers(-1, 2, (count, 2))
    out = np.empty_like(images)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            out[rows] = np.roll(images[rows], (dy, dx), axis=(1, 2))
    scale = rng.integers(76, 101, (count, 1, 1))
    return ((out.astype(np.int64) * scale + 50) // 100).astype(np.uint8).reshape(count, -1)


def sample_table(
    records: list[dict], bitmaps: np.ndarray, rows: np.ndarray, category: list[str], country=None
) -> pa.Table:
    """A sample (schema.SAMPLE) of `records[rows]`, with the given labels and unique key_ids;
    `country`, when given, replaces the drawings' country codes."""
    picked = [records[i] for i in rows.tolist()]
    strokes = [
        (
            [x for stroke in r["drawing"] for x in stroke[0]],
            [y for stroke in r["drawing"] for y in stroke[1]],
            np.cumsum([len(stroke[0]) for stroke in r["drawing"]]).tolist(),
        )
        for r in picked
    ]
    moments = [datetime.strptime(r["timestamp"][:19], "%Y-%m-%d %H:%M:%S") for r in picked]
    return pa.table(
        {
            "key_id": pa.array(5_000_000_000_000_000 + np.arange(len(rows)), pa.uint64()),
            "category": category,
            "countrycode": country if country is not None else [r["countrycode"] for r in picked],
            "recognized": [r["recognized"] for r in picked],
            "timestamp": pa.array([m.replace(tzinfo=UTC) for m in moments], SAMPLE.field(4).type),
            "bitmap": pa.array([bitmaps[i].tobytes() for i in rows.tolist()], pa.binary(784)),
            "position": np.arange(len(rows)),
            "xs": pa.array([s[0] for s in strokes], pa.list_(pa.uint8())),
            "ys": pa.array([s[1] for s in strokes], pa.list_(pa.uint8())),
            "stroke_ends": pa.array([s[2] for s in strokes], pa.list_(pa.int32())),
            "ts": pa.array([None] * len(rows), pa.list_(pa.int32())),
        }
    )


def bucket_sample(heads: Path, drawings: int, categories: int = 344, seed: int = 0):
    """`drawings` drawings over `categories` of Google's names, largest category first, and
    cheap map positions: the t-SNE of the distinct drawings, each copy beside its original.
    Returns (sample, names, coords)."""
    records, bitmaps, origin = heads_pool(heads)
    rng = np.random.default_rng(seed)
    names = NAMES[:categories]
    copies = -(-categories // (origin.max() + 1))
    label_of = (origin[:, None] + (origin.max() + 1) * np.arange(copies)[None, :]) % categories
    weights = 1.0 / (1 + np.arange(categories)) ** 0.6  # category k's share of the bucket
    pair = np.stack([np.repeat(np.arange(len(records)), copies), label_of.reshape(-1)], axis=1)
    chance = weights[pair[:, 1]] / weights[pair[:, 1]].sum()
    chosen = pair[rng.choice(len(pair), drawings, p=chance)]
    base = embedding.embed(bitmaps, "tsne", seed)
    coords = base[chosen[:, 0]] + rng.normal(scale=0.4, size=(drawings, 2)).astype(np.float32)
    sample = sample_table(records, bitmaps, chosen[:, 0], [names[k] for k in chosen[:, 1]])
    return sample, names, coords.astype(np.float32)


def many_countries(heads: Path, root: Path, drawings: int = 9_000, countries: int = 110) -> Path:
    """Google's layout (simplified) under `root`: `octopus` drawn in `countries` countries,
    at least 40 drawings each, and `cat` in its heads' own countries. Returns the folder."""
    from conftest import write_category

    records, bitmaps, _ = heads_pool(heads)
    rng = np.random.default_rng(7)
    codes = sorted({r["countrycode"] for r in records if r["countrycode"]})
    extra = [f"{a}{b}" for a in "QX" for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
    codes = (codes + [c for c in extra if c not in codes])[:countries]
    shares = 1.0 / (1 + np.arange(len(codes)))
    counts = 40 + np.floor(shares / shares.sum() * (drawings - 40 * len(codes))).astype(int)
    country = np.repeat(np.array(codes), counts)
    rows = rng.choice(len(records), len(country))
    lines = []
    for key, (i, code) in enumerate(zip(rows.tolist(), country.tolist(), strict=True)):
        record = dict(records[i], word="octopus", countrycode=code, key_id=str(6 * 10**18 + key))
        lines.append(orjson.dumps(record))
    raw = root / "raw"
    write_category(raw, "simplified", "octopus", lines, bitmaps[rows])
    cats = rng.choice(len(records), 600)
    cat_lines = [
        orjson.dumps(dict(records[i], word="cat", key_id=str(7 * 10**18 + k)))
        for k, i in enumerate(cats.tolist())
    ]
    write_category(raw, "simplified", "cat", cat_lines, bitmaps[cats])
    return raw
