"""Join benchmark: the floor, the blog post's naive join and ours, alternating, on a full-size
category (150,152 drawings), for the raw and the simplified formats. Prints medians, ratios and
peak memory (the whole process tree's resident set)."""

from __future__ import annotations

import argparse
import json
import shutil

from common import OUT, alternate, python
from join_data import DRAWINGS, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--drawings", type=int, default=DRAWINGS)
    args = parser.parse_args()
    data = build(OUT / f"join-data-{args.drawings}", args.drawings)
    scratch = OUT / "join-scratch"
    results = {}
    for fmt in ("raw", "simplified"):
        size = (data / fmt / "octopus.ndjson").stat().st_size
        contenders = {
            name: [python(), "benchmarks/join_contenders.py", name, str(data), fmt, str(scratch)]
            for name in ("floor", "naive", "ours")
        }
        figures = alternate(contenders, args.repetitions)
        shutil.rmtree(scratch, ignore_errors=True)
        floor, naive, ours = (figures[n] for n in ("floor", "naive", "ours"))
        print(
            f"\njoin, {fmt}: {args.drawings:,} drawings, ndjson {size / 1e6:,.0f} MB, "
            f"median of {args.repetitions}"
        )
        for name, figure in figures.items():
            print(f"  {name:6s} {figure['seconds']:7.2f} s   peak {figure['peak_mib']:6.0f} MiB")
        print(f"  ours / floor = {ours['seconds'] / floor['seconds']:.2f}x (target <= 3x)")
        print(f"  naive / ours = {naive['seconds'] / ours['seconds']:.2f}x faster (target >= 4x)")
        results[fmt] = figures
    (OUT / "bench_join.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
