"""One join contender per process run: `floor`, `naive` or `ours`, on a Google-layout folder."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

CHUNK = 16 << 20


def floor(root: Path, fmt: str, out: Path) -> None:
    """Read both input files once and count the lines: no join can be faster."""
    lines = 0
    with (root / fmt / "octopus.ndjson").open("rb") as handle:
        while chunk := handle.read(CHUNK):
            lines += chunk.count(b"\n")
    with (root / "numpy_bitmap" / "octopus.npy").open("rb") as handle:
        while handle.read(CHUNK):
            pass
    assert lines > 0


def naive(root: Path, fmt: str, out: Path) -> None:
    """The 2017 blog post's way: np.load, jsonlines for each country, a pandas frame, Parquet."""
    import jsonlines
    import pandas as pd

    images = np.load(root / "numpy_bitmap" / "octopus.npy")
    countries, key_ids, recognized, timestamps = [], [], [], []
    with jsonlines.open(root / fmt / "octopus.ndjson") as reader:
        for drawing in reader:
            countries.append(drawing["countrycode"])
            key_ids.append(int(drawing["key_id"]))
            recognized.append(drawing["recognized"])
            timestamps.append(drawing["timestamp"])
    frame = pd.DataFrame(
        {
            "key_id": np.array(key_ids, dtype=np.uint64),
            "countrycode": countries,
            "recognized": recognized,
            "timestamp": pd.to_datetime([t[:-4] for t in timestamps], utc=True),
            "bitmap": [row.tobytes() for row in images],
        }
    )
    frame.to_parquet(out / "naive.parquet")


def ours(root: Path, fmt: str, out: Path) -> None:
    import shutil

    from pipeline.stages.join import run_join

    # the join keeps a partition it already holds: every run must start from nothing
    shutil.rmtree(out / "ours", ignore_errors=True)
    run_join(root, fmt, ("octopus",), out / "ours", out / "ours.json")


if __name__ == "__main__":
    name, root, fmt, out = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    out.mkdir(parents=True, exist_ok=True)
    {"floor": floor, "naive": naive, "ours": ours}[name](root, fmt, out)
