"""Profile: how each country draws each category, over every drawing of the store.

`profile_category` turns one category's partition into one row per country (schema.PROFILE):
counts, the recognized share with its Wilson interval, medians, the clockwise share of first
strokes and the mean bitmap. Everything is computed with numpy over whole columns (group codes
from Arrow's dictionary encoding, counts by bincount, medians from one sort per column). The
bitmaps are summed one row group at a time (the next ones are read meanwhile), so memory holds
a few row groups of them, by a small C kernel (_native.group_sums: one pass over the rows, 73 ms
for 150,152 bitmaps where numpy, which needs a gather per country, took 267 ms).

The engine was chosen by measurement (benchmarks/profile_engines.py, a full-size category of
150,152 drawings and 94 countries, the counts and medians without the bitmaps, two runs on the
shared 2-core machine): pyarrow + numpy 14 to 28 ms, DuckDB 18 to 40 ms, polars 6 to 15 ms; but
after numpy and pyarrow, importing polars takes 0.3 to 0.4 s and DuckDB 0.1 to 0.17 s (pyarrow's
compute module 0.03 to 0.05 s), so polars would pay for its import only after some 25
full-size categories, saving about 2% of a whole-dataset run: not worth a dependency.
benchmarks/bench_profile.py measures the stage against pyarrow reading its columns.

`combine`, `headline` and `recognized_by_country` turn the per-category rows into the store's
profile, the DVC metrics (reports/profile.json) and the data of the DVC plot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.native import _native
from pipeline.store import schema
from pipeline.store.schema import BITMAP_BYTES, PROFILE, from_numpy

#: The two-sided 95% normal quantile, to the precision of a double.
Z = 1.959963984540054
#: The store columns the profile reads.
COLUMNS = (
    "countrycode",
    "recognized",
    "strokes",
    "points",
    "duration_ms",
    "first_stroke_area",
    "bitmap",
)
#: Row groups of bitmaps read ahead while one is summed (each 12.8 MB).
READ_AHEAD = 2
#: Countries whose clockwise share reports/profile.json lists, per category (most drawings).
HEADLINE_COUNTRIES = 5


def _read_bitmaps(path: Path, row_group: int) -> pa.Table:
    """One row group's bitmaps, through a reader of its own: a ParquetFile is not safe to read
    from two threads at once (its read cache mixes their ranges up)."""
    return pq.ParquetFile(path).read_row_group(row_group, ["bitmap"])


def _row_group_bitmaps(path: Path, groups: int) -> Iterator[np.ndarray]:
    """The file's bitmaps one row group at a time, the next ones read (decompressed, on every
    core) while this one is summed: at most READ_AHEAD + 1 row groups in memory."""
    with ThreadPoolExecutor(READ_AHEAD) as pool:
        pending = deque(pool.submit(_read_bitmaps, path, i) for i in range(min(READ_AHEAD, groups)))
        for number in range(groups):
            table = pending.popleft().result()
            if number + READ_AHEAD < groups:
                pending.append(pool.submit(_read_bitmaps, path, number + READ_AHEAD))
            yield from bitmap_blocks(table["bitmap"])


def wilson_interval(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 95% Wilson score interval of successes / trials (trials > 0).

    Unlike the normal approximation it stays inside [0, 1] and is not zero-width at 0 or n
    successes, which matters for the many small countries of a category. Its bounds are
    exactly 0 at 0 successes and 1 at n (where rounding would leave 1e-17 or 1 - 1e-16).
    """
    n = trials.astype(np.float64)
    share = successes / n
    z2 = Z * Z
    centre = (share + z2 / (2 * n)) / (1 + z2 / n)
    half = Z * np.sqrt(share * (1 - share) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = np.where(successes == 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(successes == trials, 1.0, np.clip(centre + half, 0.0, 1.0))
    return low, high


def group_medians(groups: np.ndarray, values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """np.median of integer `values` within each group (groups sorted from 0, the first row of
    each at `starts`), for all groups at once.

    One sort by (group, value), as a single int64 key when group and value fit in one (5x
    faster than np.lexsort); each group's median is then its middle element, or the mean of its
    two middle elements, exactly as np.median computes it.
    """
    smallest, largest = (int(values.min()), int(values.max())) if len(values) else (0, 0)
    span = largest - smallest + 1
    if (int(groups.max(initial=0)) + 1) * span < 1 << 62:
        keys = groups * span + (values.astype(np.int64) - smallest)
        keys.sort()
        ordered = (keys % span + smallest).astype(np.float64)
    else:
        ordered = values[np.lexsort((values, groups))].astype(np.float64)
    counts = np.diff(np.append(starts, len(values)))
    return (ordered[starts + (counts - 1) // 2] + ordered[starts + counts // 2]) / 2


def bitmap_blocks(column: pa.ChunkedArray) -> Iterable[np.ndarray]:
    """The bitmaps, one (rows, 784) uint8 view per chunk (a row group), without copying."""
    for chunk in column.chunks:
        data = np.frombuffer(chunk.buffers()[1], np.uint8)
        start = chunk.offset * BITMAP_BYTES
        yield data[start : start + len(chunk) * BITMAP_BYTES].reshape(-1, BITMAP_BYTES)


def mean_bitmaps(groups: np.ndarray, count: int, blocks: Iterable[np.ndarray]) -> np.ndarray:
    """The per-pixel mean bitmap of each group, rounded to the nearest integer (halves up).

    Summed block by block (rows in the order of `groups`). Sums are exact integers, and so is
    the rounding: floor((2 * sum + n) / (2 * n)).
    """
    sums = np.zeros((count, BITMAP_BYTES), np.int64)
    position = 0
    for block in blocks:
        codes = np.ascontiguousarray(groups[position : position + len(block)], np.int64)
        _native.group_sums(np.ascontiguousarray(block), codes, sums, BITMAP_BYTES)
        position += len(block)
    if position != len(groups):
        raise ValueError(f"mean_bitmaps: {position} bitmaps for {len(groups)} drawings")
    sizes = np.bincount(groups, minlength=count).astype(np.int64)[:, None]
    return ((2 * sums + sizes) // (2 * sizes)).astype(np.uint8)


def _country_groups(countrycode: pa.ChunkedArray) -> tuple[np.ndarray, list[str | None]]:
    """Each drawing's group and the groups' country codes: the codes in sorted order, then
    the drawings without a code (if any)."""
    encoded = pc.dictionary_encode(countrycode.combine_chunks())
    names = encoded.dictionary.to_pylist()
    countries = sorted(names)
    rank = {name: group for group, name in enumerate(countries)}
    ranks = np.array([rank[name] for name in names] + [len(names)], np.int64)
    indices = encoded.indices
    codes = np.frombuffer(indices.buffers()[1], np.int32)[
        indices.offset : indices.offset + len(indices)
    ]
    if indices.null_count:  # (fill_null would import pandas, for its scalar)
        codes = np.where(_bits(indices, 0), codes, len(names))
    return ranks[codes], countries + [None] * (indices.null_count > 0)


def _bits(array: pa.Array, buffer: int) -> np.ndarray:
    """One of an array's bit buffers (0: validity, 1: a bool array's values) as bools."""
    bits = np.unpackbits(np.frombuffer(array.buffers()[buffer], np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(bool)


def _flags(column: pa.ChunkedArray) -> np.ndarray:
    """A bool column without nulls as a numpy array (no pandas import, unlike to_numpy)."""
    return _bits(column.combine_chunks(), 1)


def _nullable(values: np.ndarray, valid: np.ndarray) -> pa.Array:
    """A float64 column that is null where `valid` is False."""
    bits = np.packbits(valid, bitorder="little")
    return pa.Array.from_buffers(
        pa.float64(),
        len(values),
        [pa.py_buffer(bits), pa.py_buffer(np.ascontiguousarray(values, np.float64))],
        null_count=int((~valid).sum()),
    )


def profile_category(
    category: str, table: pa.Table, bitmaps: Iterable[np.ndarray] | None = None
) -> pa.Table:
    """One row per country of the category (schema.PROFILE), from its store columns; the
    bitmaps from `table` or, one block at a time, from `bitmaps`."""
    groups, countries = _country_groups(table["countrycode"])
    count = len(countries)
    drawings = np.bincount(groups, minlength=count).astype(np.int64)
    starts = np.cumsum(drawings) - drawings
    recognized = np.bincount(groups[_flags(table["recognized"])], minlength=count)
    low, high = wilson_interval(recognized, drawings)
    area = schema.to_numpy(table["first_stroke_area"])
    directed = np.bincount(groups[area != 0], minlength=count)
    clockwise = np.bincount(groups[area > 0], minlength=count)
    clockwise_low, clockwise_high = wilson_interval(clockwise, np.maximum(directed, 1))
    duration = table["duration_ms"]
    timed = duration.null_count == 0 and len(duration) > 0  # only raw drawings have times
    duration_median = (
        group_medians(groups, schema.to_numpy(duration), starts) if timed else np.zeros(count)
    )

    def median(name: str) -> pa.Array:
        return from_numpy(group_medians(groups, schema.to_numpy(table[name]), starts))

    blocks = bitmap_blocks(table["bitmap"]) if bitmaps is None else bitmaps
    means = mean_bitmaps(groups, count, blocks)
    columns = {
        "category": schema.strings([category] * count),
        "countrycode": schema.strings(countries),
        "drawings": from_numpy(drawings),
        "recognized": from_numpy(recognized.astype(np.int64)),
        "recognized_share": from_numpy(recognized / drawings),
        "recognized_low": from_numpy(low),
        "recognized_high": from_numpy(high),
        "strokes_median": median("strokes"),
        "points_median": median("points"),
        "duration_ms_median": _nullable(duration_median, np.full(count, timed)),
        "directed": from_numpy(directed.astype(np.int64)),
        "clockwise_share": _nullable(
            np.divide(clockwise, directed, out=np.zeros(count), where=directed > 0),
            directed > 0,
        ),
        "clockwise_low": _nullable(clockwise_low, directed > 0),
        "clockwise_high": _nullable(clockwise_high, directed > 0),
        "mean_bitmap": pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(BITMAP_BYTES), count, [None, pa.py_buffer(means)]
        ),
    }
    return pa.table(columns, schema=PROFILE)


def profile_partition(category: str, path: Path) -> pa.Table:
    """A partition file's profile, its bitmaps read one row group at a time."""
    file = pq.ParquetFile(path)
    scalars = file.read(columns=[name for name in COLUMNS if name != "bitmap"])
    return profile_category(category, scalars, _row_group_bitmaps(path, file.num_row_groups))


def combine(profiles: Iterable[pa.Table]) -> pa.Table:
    """The store's profile: the categories' rows, one after another (each sorted by country)."""
    return pa.concat_tables(list(profiles))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def headline(profile: pa.Table, min_drawings: int) -> dict:
    """reports/profile.json: per category, what `dvc metrics diff` should show when the data or
    the method changes it. Highest and lowest recognized shares are over the countries with at
    least `min_drawings` drawings (a country with one drawing has a share of 0 or 1)."""
    figures = {}
    by_category: dict[str, list[dict]] = {}  # one pass: a filter per category costs 345 scans
    for row in profile.to_pylist():
        row["countrycode"] = row["countrycode"] or "??"
        by_category.setdefault(row["category"], []).append(row)
    for category, rows in by_category.items():
        shown = [row for row in rows if row["drawings"] >= min_drawings]
        by_share = sorted(shown, key=lambda r: (-r["recognized_share"], -r["drawings"]))
        top = sorted(rows, key=lambda r: (-r["drawings"], r["countrycode"]))
        drawings = sum(row["drawings"] for row in rows)

        def share(row: dict | None) -> dict | None:
            if row is None:
                return None
            return {"country": row["countrycode"], "share": _rounded(row["recognized_share"])}

        figures[category] = {
            "drawings": drawings,
            "countries": len(rows),
            "countries_shown": len(shown),
            "recognized_share": _rounded(sum(r["recognized"] for r in rows) / max(drawings, 1)),
            "recognized_highest": share(by_share[0] if by_share else None),
            "recognized_lowest": share(by_share[-1] if by_share else None),
            "clockwise_share": {
                row["countrycode"]: _rounded(row["clockwise_share"])
                for row in top[:HEADLINE_COUNTRIES]
            },
        }
    return {"min_drawings": min_drawings, "categories": figures}


def recognized_by_country(profile: pa.Table, min_drawings: int) -> list[dict]:
    """The data of the DVC plot: recognized share per country over all categories, for the
    countries with at least `min_drawings` drawings, highest first."""
    totals: dict[str, list[int]] = {}
    for code, drawings, recognized in zip(
        profile["countrycode"].to_pylist(),
        profile["drawings"].to_pylist(),
        profile["recognized"].to_pylist(),
        strict=True,
    ):
        total = totals.setdefault(code or "??", [0, 0])
        total[0] += drawings
        total[1] += recognized
    rows = [
        {"country": code, "drawings": n, "recognized_share": round(k / n, 4)}
        for code, (n, k) in totals.items()
        if n >= min_drawings
    ]
    return sorted(rows, key=lambda row: (-row["recognized_share"], row["country"]))
