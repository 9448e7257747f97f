"""A full-size category in Google's formats, for the join benchmark.

150,152 drawings (as many as Google's octopus), raw + simplified + numpy_bitmap, aligned line
for line. Drawings come from the real heads in ../shared/quickdraw-heads when present (else
from the demo generator's output), relabelled as one category with unique key_ids; lines are
drawn with weights that give the raw file the real octopus file's mean line length, so the
file is about its real size (731 MB).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from pipeline.formats.render import render_bitmaps, simplify_strokes

DRAWINGS = 150_152
RAW_BYTES = 730_778_530  # Google's raw/octopus.ndjson
HEADS = Path(__file__).resolve().parents[2] / "shared" / "quickdraw-heads"
DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"


@dataclass
class Pool:
    """Distinct source drawings, pre-serialised, with their simplified form and bitmap."""

    meta: list[dict]
    raw: list[bytes]
    simplified: list[bytes]
    bitmaps: np.ndarray


def load_pool() -> tuple[Pool, str]:
    source = HEADS / "raw" if HEADS.is_dir() else DEMO / "raw"
    records = [
        orjson.loads(line)
        for path in sorted(source.glob("*.ndjson"))
        for line in path.read_bytes().splitlines()
    ]
    simplified = [simplify_strokes(r["drawing"]) for r in records]
    return (
        Pool(
            meta=[{k: r[k] for k in ("countrycode", "timestamp", "recognized")} for r in records],
            raw=[orjson.dumps(r["drawing"]) for r in records],
            simplified=[orjson.dumps([s.tolist() for s in strokes]) for strokes in simplified],
            bitmaps=render_bitmaps(simplified).reshape(len(records), -1),
        ),
        str(source),
    )


def tilted_weights(lengths: np.ndarray, target_mean: float) -> np.ndarray:
    """Weights proportional to exp(a * length) whose weighted mean length is `target_mean`."""
    scaled = lengths / lengths.max()
    low, high = -200.0, 200.0
    for _ in range(100):
        a = (low + high) / 2
        w = np.exp(a * (scaled - scaled.max()))
        if (w * lengths).sum() / w.sum() < target_mean:
            low = a
        else:
            high = a
    return w / w.sum()


def line(meta: dict, key_id: int, drawing: bytes) -> bytes:
    head = {"word": "octopus", **meta, "key_id": str(key_id)}
    head = {k: head[k] for k in ("word", "countrycode", "timestamp", "recognized", "key_id")}
    return orjson.dumps(head)[:-1] + b',"drawing":' + drawing + b"}\n"


def write_manifest(root: Path) -> None:
    """What the download stage would record for these files (the join keys its partition on the
    manifest's MD5s, as in the pipeline, rather than hashing 900 MB itself)."""
    files = {}
    for obj in ("numpy_bitmap/octopus.npy", "raw/octopus.ndjson", "simplified/octopus.ndjson"):
        digest = hashlib.md5()
        with (root / obj).open("rb") as handle:
            while block := handle.read(1 << 24):
                digest.update(block)
        files[obj] = {"md5": digest.hexdigest(), "size": (root / obj).stat().st_size}
    (root / "manifest").mkdir(exist_ok=True)
    manifest = {"category": "octopus", "drawings": "raw", "limit": None, "files": files}
    (root / "manifest" / "octopus.json").write_text(json.dumps(manifest, indent=2) + "\n")


def build(root: Path, drawings: int = DRAWINGS) -> Path:
    """Write root/{raw,simplified}/octopus.ndjson and root/numpy_bitmap/octopus.npy (cached)."""
    stamp = root / "spec.json"
    spec = {"drawings": drawings, "version": 3}
    if stamp.exists() and json.loads(stamp.read_text()).get("spec") == spec:
        return root
    pool, source = load_pool()
    header_bytes = 150  # metadata of a line, roughly
    lengths = np.array([len(d) + header_bytes for d in pool.raw], dtype=np.float64)
    rng = np.random.default_rng(150_152)
    picks = rng.choice(
        len(pool.raw), size=drawings, p=tilted_weights(lengths, RAW_BYTES / DRAWINGS)
    )
    for folder in ("raw", "simplified", "numpy_bitmap"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    key_ids = 4_500_000_000_000_000 + np.arange(drawings, dtype=np.int64) * 7_919
    for fmt, bodies in (("raw", pool.raw), ("simplified", pool.simplified)):
        with (root / fmt / "octopus.ndjson").open("wb") as out:
            for index, key_id in zip(picks.tolist(), key_ids.tolist(), strict=True):
                out.write(line(pool.meta[index], key_id, bodies[index]))
    np.save(root / "numpy_bitmap" / "octopus.npy", pool.bitmaps[picks])
    write_manifest(root)
    stamp.write_text(json.dumps({"spec": spec, "source": source}) + "\n")
    return root
