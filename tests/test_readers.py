"""The joined store in the data tools users already have: DuckDB, polars, pandas, pyarrow and
Hugging Face `datasets` each read the real heads' store with the categories named as they are
(spaces decoded from the partition folders), key_id unsigned 64-bit and timestamps in UTC.
`datasets` ignores hive partition folders: the README's recipe takes the category from `word`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipeline.stages.join import run_join

CATEGORIES = ("The Eiffel Tower", "The Mona Lisa", "cat")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, rendered_heads: Path) -> Path:
    root = tmp_path_factory.mktemp("readers")
    run_join(rendered_heads, "simplified", CATEGORIES, root / "store", root / "join.json", 0)
    return root / "store"


@pytest.fixture(scope="module")
def expected(store: Path) -> dict[str, dict[int, str]]:
    """Per category, key_id -> country, read without any partition decoding: from `word`."""
    table = ds.dataset(store, format="parquet").to_table(columns=["key_id", "word", "countrycode"])
    rows: dict[str, dict[int, str]] = {}
    for key, word, country in zip(*(table[c].to_pylist() for c in table.column_names), strict=True):
        rows.setdefault(word, {})[key] = country
    assert sorted(rows) == sorted(CATEGORIES)
    return rows


def by_category(categories, keys, countries) -> dict[str, dict[int, str]]:
    rows: dict[str, dict[int, str]] = {}
    for category, key, country in zip(categories, keys, countries, strict=True):
        rows.setdefault(category, {})[int(key)] = country
    return rows


def test_duckdb(store: Path, expected) -> None:
    import duckdb

    relation = duckdb.sql(
        f"SELECT category, key_id, countrycode, timestamp "
        f"FROM read_parquet('{store}/**/*.parquet', hive_partitioning = true)"
    )
    assert dict(zip(relation.columns, relation.types, strict=True)) == {
        "category": "VARCHAR",
        "key_id": "UBIGINT",
        "countrycode": "VARCHAR",
        "timestamp": "TIMESTAMP WITH TIME ZONE",
    }
    rows = relation.fetchall()
    assert by_category(*list(zip(*rows, strict=True))[:3]) == expected


def test_polars(store: Path, expected) -> None:
    import polars as pl

    frame = pl.read_parquet(store, hive_partitioning=True)
    assert frame.schema["key_id"] == pl.UInt64
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert by_category(frame["category"], frame["key_id"], frame["countrycode"]) == expected


def test_pandas(store: Path, expected) -> None:
    import pandas as pd

    frame = pd.read_parquet(store)
    assert str(frame["key_id"].dtype) == "uint64"
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert by_category(frame["category"], frame["key_id"], frame["countrycode"]) == expected


def test_pyarrow(store: Path, expected) -> None:
    table = ds.dataset(store, format="parquet", partitioning="hive").to_table()
    assert table.schema.field("key_id").type == pa.uint64()
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    columns = (table[name].to_pylist() for name in ("category", "key_id", "countrycode"))
    assert by_category(*columns) == expected


def test_hugging_face_datasets(
    store: Path, expected, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    from datasets import load_dataset

    drawings = load_dataset("parquet", data_files=f"{store}/*/*.parquet", split="train")
    assert "category" not in drawings.column_names  # it ignores the partition folders
    # the README's recipe
    drawings = drawings.add_column("category", drawings["word"])
    assert drawings.features["key_id"].dtype == "uint64"
    assert drawings.features["timestamp"].dtype == "timestamp[us, tz=UTC]"
    columns = (drawings[name] for name in ("category", "key_id", "countrycode"))
    assert by_category(*columns) == expected
