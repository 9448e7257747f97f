"""Profile benchmark: the profile stage on a full-size category (150,152 raw drawings joined
into the store) against pyarrow reading the store columns it uses (bitmaps included), in fresh
processes (imports count), alternating. Prints the medians of wall time and of CPU time (user +
system: steadier than wall time on a shared machine), peak memory, and the ratios (target:
at most 2x)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import time

from common import OUT, ROOT, python
from join_data import DRAWINGS, build

from pipeline.stages.join import run_join
from pipeline.stats.profile import COLUMNS
from pipeline.store.layout import partition_path


def store_of(drawings: int):
    """The benchmark category joined once (raw, so that durations are profiled too)."""
    store = OUT / f"profile-store-{drawings}"
    if not partition_path(store, "octopus").is_file():
        data = build(OUT / f"join-data-{drawings}", drawings)
        run_join(data, "raw", ("octopus",), store, OUT / "profile-join.json", 0)
    return store


def run_once(command: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident MiB of one run (from the kernel's rusage)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"benchmark command failed ({status}): {' '.join(command)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def alternate(contenders: dict[str, list[str]], repetitions: int) -> dict[str, dict]:
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
    for _ in range(repetitions):
        for name, command in contenders.items():
            runs[name].append(run_once(command))
    return {
        name: {
            "seconds": statistics.median(r[0] for r in results),
            "cpu_seconds": statistics.median(r[1] for r in results),
            "peak_mib": max(r[2] for r in results),
        }
        for name, results in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--drawings", type=int, default=DRAWINGS)
    args = parser.parse_args()
    store = store_of(args.drawings)
    scratch = OUT / "profile-scratch"
    contenders = {
        name: [
            python(),
            "benchmarks/profile_contenders.py",
            name,
            str(store),
            str(scratch),
            ",".join(COLUMNS),
        ]
        for name in ("read", "ours")
    }
    figures = alternate(contenders, args.repetitions)
    shutil.rmtree(scratch, ignore_errors=True)
    size = partition_path(store, "octopus").stat().st_size
    print(
        f"\nprofile: {args.drawings:,} raw drawings, partition {size / 1e6:,.0f} MB, fresh "
        f"processes, median of {args.repetitions}"
    )
    for name, figure in figures.items():
        print(
            f"  {name:5s} {figure['seconds']:6.2f} s wall, {figure['cpu_seconds']:6.2f} s CPU,"
            f"   peak {figure['peak_mib']:6.0f} MiB"
        )
    ours, read = figures["ours"], figures["read"]
    print(
        f"  ours / read = {ours['seconds'] / read['seconds']:.2f}x wall, "
        f"{ours['cpu_seconds'] / read['cpu_seconds']:.2f}x CPU (target <= 2x)"
    )
    (OUT / "bench_profile.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
