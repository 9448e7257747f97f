"""Sampling: reproducible, filtered, stratified, and clear about impossible requests."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.errors import ParamError
from pipeline.params import SampleParams
from pipeline.stages.join import run_join
from pipeline.stages.sample import run_sample, stratified_quotas

CATEGORIES = ("octopus", "cat", "fish", "The Eiffel Tower", "house")


@pytest.fixture
def store(heads_layout: Path, tmp_path: Path) -> Path:
    out = tmp_path / "processed"
    run_join(heads_layout, "simplified", CATEGORIES, out, tmp_path / "join.json")
    return out


def sample(store: Path, tmp_path: Path, **overrides):
    params = SampleParams(**{"n": 40, "seed": 7, **overrides})
    return run_sample(
        store,
        CATEGORIES,
        params,
        tmp_path / "sample" / "sample.parquet",
        store.parent / "raw",  # heads_layout: the drawings the store was joined from
        "simplified",
    )


def test_same_params_same_sample_different_seed_differs(store, tmp_path):
    first = sample(store, tmp_path)
    second = sample(store, tmp_path)
    assert first.equals(second)
    assert len(first) == 40
    assert len(set(first["key_id"].to_pylist())) == 40
    other = sample(store, tmp_path, seed=8)
    assert set(other["key_id"].to_pylist()) != set(first["key_id"].to_pylist())


def test_sample_rows_match_the_store(store, tmp_path):
    table = sample(store, tmp_path)
    assert pq.read_table(tmp_path / "sample" / "sample.parquet").equals(table)
    for row in table.to_pylist()[:10]:
        category_dir = next(store.glob(f"category={row['category'].replace(' ', '%20')}"))
        source = pq.read_table(category_dir / "part-0.parquet").slice(row["position"], 1)
        assert source["key_id"][0].as_py() == row["key_id"]
        assert source["bitmap"][0].as_py() == row["bitmap"]


def test_country_and_recognized_filters(store, tmp_path):
    table = sample(store, tmp_path, n=10, countries=("US", "GB"), recognized="true")
    assert set(table["countrycode"].to_pylist()) <= {"US", "GB"}
    assert all(table["recognized"].to_pylist())


def test_stratify_by_country_gives_equal_shares(store, tmp_path):
    table = sample(store, tmp_path, n=12, countries=("US", "GB", "DE"), stratify="country")
    assert Counter(table["countrycode"].to_pylist()) == {"US": 4, "GB": 4, "DE": 4}


def test_stratified_quotas_fill_from_larger_groups():
    rng = np.random.default_rng(0)
    assert stratified_quotas(np.array([1, 50, 50]), 21, rng).tolist() == [1, 10, 10]
    assert stratified_quotas(np.array([5, 5]), 10, rng).tolist() == [5, 5]
    quotas = stratified_quotas(np.array([9, 9, 9]), 4, rng)
    assert sorted(quotas.tolist()) == [1, 1, 2]


def test_n_larger_than_the_selection(store, tmp_path):
    with pytest.raises(ParamError, match=r"sample\.n: asks for 100000 drawings .* hold only"):
        sample(store, tmp_path, n=100_000)
    assert not (tmp_path / "sample").exists()


def test_unknown_country(store, tmp_path):
    with pytest.raises(ParamError, match=r"sample\.countries: no drawing from 'ZZ'"):
        sample(store, tmp_path, countries=("ZZ",))


def test_empty_selection(store, tmp_path):
    # One rare country, and only the drawings the game did not recognise: nothing is left.
    table = pq.read_table(store)
    unrecognized = set(table.filter(pc.invert(table["recognized"]))["countrycode"].to_pylist())
    rare = sorted(set(table["countrycode"].to_pylist()) - unrecognized)[0]
    with pytest.raises(ParamError, match=r"sample\.recognized: no drawing has recognized=false"):
        sample(store, tmp_path, n=1, countries=(rare,), recognized="false")
