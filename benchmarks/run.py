"""`make bench`: every benchmark, one after another; each prints its figures and ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "bench_parsers.py",
    "bench_join.py",
    "bench_sample.py",
    "bench_profile.py",
    "bench_download.py",
    "bench_report.py",
    "bench_scale.py",
    "bench_rebuild.py",
    "bench_layout.py",
]


def main() -> int:
    for script in BENCHMARKS:
        print(f"\n=== {script} ===", flush=True)
        subprocess.run([sys.executable, str(HERE / script)], check=True, cwd=HERE.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
