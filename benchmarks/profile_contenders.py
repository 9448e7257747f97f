"""One contender of the profile benchmark, run in a fresh process (imports count):

- `read`: pyarrow reads the store columns the profile uses, bitmaps included (the floor; it
  imports nothing of ours);
- `ours`: the profile stage on the category, from an empty profile folder (nothing kept).

Usage: profile_contenders.py NAME STORE SCRATCH COLUMN,COLUMN,...
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main() -> None:
    name, store, scratch = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if name == "read":
        import pyarrow.parquet as pq

        path = store / "category=octopus" / "part-0.parquet"
        table = pq.ParquetFile(path).read(columns=sys.argv[4].split(","))
        assert table.num_rows > 0
    elif name == "ours":
        from pipeline.stages.profile import run_profile

        shutil.rmtree(scratch, ignore_errors=True)
        run_profile(
            store, ("octopus",), scratch / "profile", scratch / "m.json", scratch / "p.json", 30
        )
    else:
        raise SystemExit(f"unknown contender {name!r}")


if __name__ == "__main__":
    main()
