"""Profile stage: every category's profile, each kept while its partition and the profile's code
are unchanged, then the store's profile, its headline metrics and the data of its DVC plot.

Like download and join, one stage for all categories (docs, "Why one stage per step"): each
category's rows are a file of their own in `data/profile/categories/`, keyed on the join's record
of the partition (`quickdraw.record` in its footer) and the fingerprint of the profile's code;
pipeline.store.incremental keeps, restores or sets them aside, so adding a category
profiles only it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import PipelineError
from pipeline.stats.profile import combine, headline, profile_partition, recognized_by_country
from pipeline.store import atomic, incremental
from pipeline.store.incremental import Piece
from pipeline.store.layout import partition_path
from pipeline.store.schema import PROFILE, RECORD_KEY

#: Parquet key-value metadata of each category's profile file: the key it was made from.
KEY = b"quickdraw.profile"
#: The code a category's rows are made with, as dvc.yaml's profile deps list it.
PROFILE_CODE = (
    "pipeline/stats/profile.py",
    "pipeline/store/schema.py",
    "pipeline/native/_native.c",
)
PIECES = "categories"
PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": ["category", "countrycode"]}


def piece_path(profile_dir: Path, category: str) -> Path:
    return profile_dir / PIECES / f"{quote(category, safe='')}.parquet"


def category_key(processed: Path, category: str, code: str) -> str:
    """What a category's rows are made from: its partition's record and the profile's code."""
    partition = partition_path(processed, category)
    try:
        metadata = pq.read_schema(partition).metadata or {}
    except FileNotFoundError:
        raise PipelineError(
            f"{partition}: not found; category {category!r} was not joined (run the join stage)"
        ) from None
    record = metadata.get(RECORD_KEY)
    if record is None:
        raise PipelineError(
            f"{partition}: has no join record ({RECORD_KEY.decode()}); it was written by an "
            "older join: run `dvc repro -f join`"
        )
    return incremental.canonical({"code": code, "partition": record.decode()})


def held_pieces(profile_dir: Path) -> dict[str, Piece]:
    """The category files the stage holds now, by the keys in their footers (an unreadable
    file holds no key, so it is made again)."""
    held = {}
    for path in sorted((profile_dir / PIECES).glob("*.parquet")):
        try:
            key = (pq.read_schema(path).metadata or {}).get(KEY, b"").decode()
        except (OSError, pa.ArrowException):
            key = ""
        category = unquote(path.name.removesuffix(".parquet"))
        held[category] = Piece(category, key, (path,))
    return held


def write_piece(path: Path, rows: pa.Table, key: str) -> None:
    with atomic.atomic_path(path) as staging:
        pq.write_table(
            rows.replace_schema_metadata({KEY: key.encode()}), staging, **PARQUET_OPTIONS
        )


def read_piece(path: Path) -> pa.Table:
    return pq.ParquetFile(path).read().replace_schema_metadata(None).cast(PROFILE)


def run_profile(
    processed: Path,
    categories: tuple[str, ...],
    profile_dir: Path,
    metrics_path: Path,
    plot_path: Path,
    min_drawings: int,
) -> pa.Table:
    """Profile the categories whose partition (or the profile's code) changed, keep or restore
    the others; write profile.parquet, the headline metrics and the plot data; return the
    profile."""
    (profile_dir / PIECES).mkdir(parents=True, exist_ok=True)
    atomic.remove_stale(profile_dir)
    code = incremental.code_fingerprint(PROFILE_CODE)
    wanted = [
        Piece(c, category_key(processed, c, code), (piece_path(profile_dir, c),))
        for c in categories
    ]
    shelf = incremental.Shelf("profile", profile_dir.parent / ".stash", base=profile_dir)
    plan = incremental.plan(wanted, held_pieces(profile_dir), shelf)
    print(plan.summary("profile"))
    keys = {piece.category: piece.key for piece in wanted}
    width = len(str(len(plan.todo)))
    for number, category in enumerate(plan.todo, 1):
        rows = profile_partition(category, partition_path(processed, category))
        write_piece(piece_path(profile_dir, category), rows, keys[category])
        print(
            f"profile [{number:>{width}}/{len(plan.todo)}] {category}: "
            f"{sum(rows['drawings'].to_pylist()):,} drawings, {rows.num_rows} countries"
        )
        sys.stdout.flush()
    profile = combine(read_piece(piece_path(profile_dir, c)) for c in categories)
    with atomic.atomic_path(profile_dir / "profile.parquet") as staging:
        pq.write_table(profile, staging, **PARQUET_OPTIONS)
    figures = json.dumps(headline(profile, min_drawings), indent=2, sort_keys=True)
    atomic.write_text(metrics_path, figures + "\n")
    plot = json.dumps(recognized_by_country(profile, min_drawings), indent=2)
    atomic.write_text(plot_path, plot + "\n")
    return profile
