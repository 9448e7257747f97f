"""The profile's core: known answers for every column, independent oracles, the real heads."""

from __future__ import annotations

import math

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import read_lines

from pipeline.stages.join import run_join
from pipeline.stats.profile import (
    COLUMNS,
    Z,
    combine,
    group_medians,
    headline,
    profile_category,
    profile_partition,
    recognized_by_country,
    wilson_interval,
)
from pipeline.store import layout, schema


def bitmap(value: int, first: int | None = None) -> bytes:
    """A bitmap of one grey level, its first pixel set apart."""
    pixels = bytearray([value]) * schema.BITMAP_BYTES
    if first is not None:
        pixels[0] = first
    return bytes(pixels)


def store_table(rows: list[tuple], raw: bool = True, chunk: int | None = None) -> pa.Table:
    """Store columns from (country, recognized, strokes, points, duration, area, bitmap) rows;
    `chunk` cuts the columns into chunks of that many rows, as row groups do."""
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        {
            "countrycode": pa.array(columns[0], pa.string()),
            "recognized": pa.array(columns[1], pa.bool_()),
            "strokes": pa.array(columns[2], pa.int32()),
            "points": pa.array(columns[3], pa.int32()),
            "duration_ms": pa.array(columns[4] if raw else [None] * len(rows), pa.int64()),
            "first_stroke_area": pa.array(columns[5], pa.float64()),
            "bitmap": pa.array(columns[6], pa.binary(schema.BITMAP_BYTES)),
        }
    )
    if chunk:
        table = pa.concat_tables(table.slice(i, chunk) for i in range(0, len(table), chunk))
    return table


#: country, recognized, strokes, points, duration_ms, first_stroke_area, bitmap
KNOWN = [
    ("US", True, 2, 10, 1000, 50.0, bitmap(0, 0)),
    ("US", True, 2, 20, 3000, -2.5, bitmap(1, 255)),
    ("US", False, 3, 20, 2000, 7.0, bitmap(0, 254)),
    ("US", True, 3, 40, 9000, 0.0, bitmap(1, 254)),
    ("JP", True, 5, 99, 4321, 10.0, bitmap(200, 17)),  # one drawing
    ("GB", False, 1, 3, 100, 0.0, bitmap(0)),  # no first stroke with a direction
    ("GB", False, 1, 3, 100, 0.0, bitmap(1)),
    ("GB", False, 4, 5, 300, 0.0, bitmap(1)),
    (None, True, 6, 60, 600, -1.0, bitmap(9)),  # no country code
]


@pytest.mark.parametrize("chunk", [None, 1, 2, 4])
def test_known_answers(chunk):
    profile = profile_category("house", store_table(KNOWN, chunk=chunk))
    assert profile.schema == schema.PROFILE
    rows = {row["countrycode"]: row for row in profile.to_pylist()}
    assert profile["countrycode"].to_pylist() == ["GB", "JP", "US", None]
    assert set(profile["category"].to_pylist()) == {"house"}
    us, jp, gb, unknown = rows["US"], rows["JP"], rows["GB"], rows[None]
    assert (us["drawings"], us["recognized"], us["recognized_share"]) == (4, 3, 0.75)
    assert (jp["drawings"], jp["recognized"], jp["recognized_share"]) == (1, 1, 1.0)
    assert (gb["drawings"], gb["recognized"], gb["recognized_share"]) == (3, 0, 0.0)
    assert unknown["drawings"] == 1
    # medians with ties: strokes 2, 2, 3, 3 -> 2.5; points 10, 20, 20, 40 -> 20
    assert (us["strokes_median"], us["points_median"], us["duration_ms_median"]) == (2.5, 20, 2500)
    assert (gb["strokes_median"], gb["points_median"], gb["duration_ms_median"]) == (1, 3, 100)
    assert (jp["strokes_median"], jp["points_median"], jp["duration_ms_median"]) == (5, 99, 4321)
    # clockwise: among non-zero areas; US has 50 and 7 clockwise, -2.5 counterclockwise
    assert us["clockwise_share"] == pytest.approx(2 / 3, abs=0)
    assert jp["clockwise_share"] == 1.0
    assert gb["clockwise_share"] is None
    assert unknown["clockwise_share"] == 0.0
    # mean bitmaps: US rest (0+1+0+1)/4 = 0.5 -> 1 (halves up), first (0+255+254+254)/4 = 190.75
    assert us["mean_bitmap"] == bitmap(1, 191)
    assert jp["mean_bitmap"] == bitmap(200, 17)
    assert gb["mean_bitmap"] == bitmap(1)  # 2/3 -> 1
    # the Wilson interval at 0 and n successes: exactly 0 and 1 at the ends
    assert gb["recognized_low"] == 0.0 and 0 < gb["recognized_high"] < 1
    assert jp["recognized_high"] == 1.0 and 0 < jp["recognized_low"] < 1


@pytest.mark.parametrize("row_group", [1, 2, 4, 100])
def test_a_file_read_row_group_by_row_group_gives_the_same_profile(tmp_path, row_group):
    table = store_table(KNOWN)
    path = tmp_path / "part-0.parquet"
    pq.write_table(table, path, row_group_size=row_group)
    assert pq.ParquetFile(path).num_row_groups == -(-len(KNOWN) // row_group)
    assert profile_partition("house", path).equals(profile_category("house", table))


def test_simplified_drawings_have_no_duration():
    profile = profile_category("house", store_table(KNOWN, raw=False))
    assert profile["duration_ms_median"].null_count == profile.num_rows


def wilson_reference(k: int, n: int) -> tuple[float, float]:
    """The score interval in its textbook form (Wilson 1927), solved for p."""
    centre = (k + Z * Z / 2) / (n + Z * Z)
    half = Z * math.sqrt(n) / (n + Z * Z) * math.sqrt(k / n * (1 - k / n) + Z * Z / (4 * n))
    return centre - half, centre + half


def test_wilson_interval():
    ks = np.array([0, 1, 8, 50, 119, 3, 0, 1])
    ns = np.array([1, 1, 10, 100, 120, 3, 40, 2])
    low, high = wilson_interval(ks, ns)
    for k, n, lo, hi in zip(ks.tolist(), ns.tolist(), low, high, strict=True):
        ref_low, ref_high = wilson_reference(k, n)
        assert lo == pytest.approx(max(ref_low, 0), abs=1e-12)
        assert hi == pytest.approx(min(ref_high, 1), abs=1e-12)
    # the figures statistics texts give for 8 of 10: 0.490 to 0.943
    assert (round(low[2], 3), round(high[2], 3)) == (0.49, 0.943)
    assert low[0] == 0.0 and high[4] < 1.0 and high[5] == 1.0


def test_group_medians_are_numpy_medians():
    rng = np.random.default_rng(7)
    for values in (
        rng.integers(1, 6, 5000),  # many ties
        rng.integers(-(10**6), 10**9, 5000),  # wide: one key still fits
        rng.integers(-(2**62), 2**62, 5000),  # too wide for one key: lexsort
    ):
        groups = np.sort(rng.integers(0, 40, len(values)))
        groups = np.unique(groups, return_inverse=True)[1]  # 0..k-1, all present
        counts = np.bincount(groups)
        got = group_medians(groups, values.astype(np.int64), np.cumsum(counts) - counts)
        want = [np.median(values[groups == g]) for g in range(len(counts))]
        assert got.tolist() == want


def test_mean_bitmaps_and_every_column_on_random_data():
    """Against a direct per-country computation (np.mean, np.median, Python counts)."""
    rng = np.random.default_rng(11)
    n = 3000
    codes = rng.choice(["US", "GB", "DE", "BR", "JP", "ZW"], n, p=[0.5, 0.2, 0.1, 0.1, 0.09, 0.01])
    bitmaps = rng.integers(0, 256, (n, schema.BITMAP_BYTES), dtype=np.uint8)
    areas = rng.choice([-3.5, 0.0, 12.0], n)
    rows = [
        (
            str(codes[i]),
            bool(rng.integers(2)),
            int(rng.integers(1, 9)),
            int(rng.integers(1, 300)),
            int(rng.integers(0, 20000)),
            float(areas[i]),
            bitmaps[i].tobytes(),
        )
        for i in range(n)
    ]
    profile = profile_category("cat", store_table(rows, chunk=700))
    for row in profile.to_pylist():
        mine = [i for i in range(n) if codes[i] == row["countrycode"]]
        assert row["drawings"] == len(mine)
        assert row["recognized"] == sum(rows[i][1] for i in mine)
        for column, index in (("strokes", 2), ("points", 3), ("duration_ms", 4)):
            assert row[f"{column}_median"] == np.median([rows[i][index] for i in mine])
        directed = [areas[i] for i in mine if areas[i] != 0]
        assert row["clockwise_share"] == sum(a > 0 for a in directed) / len(directed)
        mean = bitmaps[mine].astype(np.float64).mean(axis=0)
        assert (
            np.frombuffer(row["mean_bitmap"], np.uint8).tolist()
            == np.floor(mean + 0.5).astype(np.uint8).tolist()
        )


def test_real_heads(tmp_path, heads_layout, heads):
    """The profile of real joined categories equals the same figures counted from the lines."""
    out = tmp_path / "processed"
    categories = ("circle", "The Eiffel Tower", "cat")
    run_join(heads_layout, "simplified", categories, out, tmp_path / "join.json", 0)
    profiles = []
    for category in categories:
        profile = profile_partition(
            category, layout.partition_dir(out, category) / "part-0.parquet"
        )
        profiles.append(profile)
        records = [
            orjson.loads(line) for line in read_lines(heads / "simplified" / f"{category}.ndjson")
        ]
        assert sum(profile["drawings"].to_pylist()) == len(records)
        for row in profile.to_pylist():
            mine = [r for r in records if r["countrycode"] == row["countrycode"]]
            assert row["drawings"] == len(mine)
            assert row["recognized"] == sum(r["recognized"] for r in mine)
            assert row["strokes_median"] == np.median([len(r["drawing"]) for r in mine])
            assert row["duration_ms_median"] is None
    everything = combine(profiles)
    assert everything["category"].unique().to_pylist() == list(categories)
    figures = headline(everything, min_drawings=2)
    circle = figures["categories"]["circle"]
    assert circle["drawings"] == 25 and circle["countries"] >= 1
    assert set(circle["clockwise_share"]) <= set(everything["countrycode"].to_pylist())
    plot = recognized_by_country(everything, min_drawings=2)
    assert all(row["drawings"] >= 2 for row in plot)
    shares = [row["recognized_share"] for row in plot]
    assert shares == sorted(shares, reverse=True)


def test_headline_ignores_small_countries():
    rows = [("US", True, 1, 1, 1, 1.0, bitmap(0))] * 30 + [("US", False, 1, 1, 1, -1.0, bitmap(0))]
    rows += [("JP", True, 1, 1, 1, 1.0, bitmap(0))] * 2  # share 1.0, but only 2 drawings
    rows += [("GB", False, 1, 1, 1, 1.0, bitmap(0))] * 40
    figures = headline(profile_category("cup", store_table(rows)), min_drawings=30)["categories"]
    cup = figures["cup"]
    assert cup["countries"] == 3 and cup["countries_shown"] == 2
    assert cup["recognized_highest"] == {"country": "US", "share": round(30 / 31, 4)}
    assert cup["recognized_lowest"] == {"country": "GB", "share": 0.0}
    assert cup["clockwise_share"] == {"GB": 1.0, "US": round(30 / 31, 4), "JP": 1.0}


def test_columns_are_the_stores():
    assert set(COLUMNS) <= set(schema.DRAWINGS.names)


def test_group_sums_refuses_a_group_out_of_range():
    from pipeline.native import _native

    rows = np.ones((3, 4), np.uint8)
    sums = np.zeros((2, 4), np.int64)
    _native.group_sums(rows, np.array([0, 1, 1], np.int64), sums, 4)
    assert sums.tolist() == [[1] * 4, [2] * 4]
    with pytest.raises(ValueError, match="group_sums"):
        _native.group_sums(rows, np.array([0, 2, 1], np.int64), sums, 4)
    with pytest.raises(ValueError, match="group_sums"):
        _native.group_sums(rows, np.array([0, 1], np.int64), sums, 4)
