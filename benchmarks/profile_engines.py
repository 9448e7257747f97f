"""Which engine for the profile's counts and medians (the bitmaps are summed by our C kernel
whatever the engine): pyarrow + numpy (ours), DuckDB and polars, on the profile benchmark's
full-size category, alternating, median of 7; then each engine's import time in a fresh process.

Not part of `make bench`: DuckDB and polars are not dependencies of the project. Run it with a
Python that has them, e.g. `uv venv /tmp/engines && uv pip install --python /tmp/engines
duckdb polars numpy pyarrow`, then
`PYTHONPATH=. /tmp/engines/bin/python benchmarks/profile_engines.py` (after `make bench`, which
builds the store).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from pipeline.stats import profile
from pipeline.store import schema

OUT = Path(__file__).resolve().parent / "out"  # as common.OUT (which needs psutil)
SCALARS = ["countrycode", "recognized", "strokes", "points", "duration_ms", "first_stroke_area"]
SQL = """
select countrycode, count(*), sum(recognized::int), median(strokes), median(points),
  median(duration_ms), count(*) filter (where first_stroke_area <> 0),
  count(*) filter (where first_stroke_area > 0)
from drawings group by countrycode order by countrycode
"""


def main() -> None:
    import duckdb
    import polars as pl

    path = OUT / "profile-store-150152" / "category=octopus" / "part-0.parquet"
    table = pq.ParquetFile(path).read(columns=SCALARS)

    def ours():
        groups, countries = profile._country_groups(table["countrycode"])
        count = len(countries)
        drawings = np.bincount(groups, minlength=count)
        starts = np.cumsum(drawings) - drawings
        np.bincount(groups[profile._flags(table["recognized"])], minlength=count)
        area = schema.to_numpy(table["first_stroke_area"])
        np.bincount(groups[area != 0], minlength=count)
        np.bincount(groups[area > 0], minlength=count)
        for name in ("strokes", "points", "duration_ms"):
            profile.group_medians(groups, schema.to_numpy(table[name]), starts)

    connection = duckdb.connect()
    connection.register("drawings", table)
    frame = pl.from_arrow(table)

    def polars():
        area = pl.col("first_stroke_area")
        frame.group_by("countrycode").agg(
            pl.len(),
            pl.col("recognized").sum(),
            pl.col("strokes").median(),
            pl.col("points").median(),
            pl.col("duration_ms").median(),
            (area != 0).sum().alias("directed"),
            (area > 0).sum().alias("clockwise"),
        ).sort("countrycode")

    contenders = {
        "pyarrow + numpy": ours,
        "duckdb": lambda: connection.sql(SQL).to_arrow_table(),
        "polars": polars,
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(7):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"counts and medians of {table.num_rows:,} drawings, median of 7:")
    for name, values in times.items():
        print(f"  {name:16s} {statistics.median(values) * 1000:6.1f} ms")
    for module in ("pyarrow.compute", "duckdb", "polars"):
        code = (  # after what every contender imports anyway
            "import time, numpy, pyarrow.parquet; t = time.perf_counter(); "
            f"import {module}; print(time.perf_counter() - t)"
        )
        seconds = float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        print(f"  import {module}: {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
