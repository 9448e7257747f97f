"""Sample stage: choose N drawings by params (seed, filters, stratification), reproducibly, and
bring their strokes from the downloaded drawings file (pipeline/formats/strokes.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.errors import ParamError, PipelineError
from pipeline.formats import strokes
from pipeline.formats.bitmaps import open_bitmaps, read_rows
from pipeline.params import SampleParams
from pipeline.store import atomic, layout, schema

SELECT_COLUMNS = ["countrycode", "recognized"]
#: Read from the store for the chosen rows (whole row groups of these small columns); the
#: bitmaps come from the npy by position (784 bytes a drawing, not a row group's 12.5 MB) and
#: the strokes from the drawings file by byte span.
FETCH_COLUMNS = ["key_id", "countrycode", "recognized", "timestamp", "position"]
SPAN_COLUMNS = ["byte_offset", "byte_length"]


def partitions(processed: Path, categories: tuple[str, ...]) -> list[pq.ParquetFile]:
    """Each category's partition, opened once (its footer read) for both passes of the sample."""
    files = []
    for category in categories:
        path = layout.partition_dir(processed, category) / "part-0.parquet"
        if not path.exists():
            raise PipelineError(
                f"{path}: not found; category {category!r} was not joined (run join)"
            )
        files.append(pq.ParquetFile(path))
    return files


def candidates(files: list[pq.ParquetFile]) -> pa.Table:
    """The columns the selection needs, for every drawing: category index, position, filters."""
    parts = []
    for index, parquet in enumerate(files):
        table = parquet.read(columns=SELECT_COLUMNS, use_threads=False)
        parts.append(
            table.append_column(
                "category_index", schema.from_numpy(np.full(len(table), index, np.int32))
            ).append_column("position", schema.from_numpy(np.arange(len(table), dtype=np.int64)))
        )
    return pa.concat_tables(parts)


def apply_filters(table: pa.Table, params: SampleParams, categories: tuple[str, ...]) -> pa.Table:
    """Keep the drawings the filters allow; name the parameter when nothing is left."""
    if params.countries:
        present = set(pc.unique(table["countrycode"]).to_pylist())
        for code in params.countries:
            if code not in present:
                raise ParamError(
                    "sample.countries",
                    f"no drawing from {code!r} in {', '.join(categories)}; "
                    f"remove it or pick from {', '.join(sorted(c for c in present if c))}",
                )
        table = table.filter(pc.is_in(table["countrycode"], pa.array(params.countries)))
    if params.recognized != "any":
        wanted = params.recognized == "true"
        table = table.filter(pc.equal(table["recognized"], wanted))
        if len(table) == 0:
            raise ParamError(
                "sample.recognized",
                f"no drawing has recognized={params.recognized} under the other filters",
            )
    if len(table) < params.n:
        raise ParamError(
            "sample.n",
            f"asks for {params.n} drawings but {', '.join(categories)} with these filters "
            f"hold only {len(table)}; lower sample.n or widen the filters",
        )
    return table


def stratified_quotas(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Equal shares per group; a group smaller than its share gives all it has to the others."""
    quotas = np.zeros(len(sizes), dtype=np.int64)
    open_groups = np.ones(len(sizes), dtype=bool)
    remaining = n
    while remaining and open_groups.any():
        share = remaining // open_groups.sum()
        if share == 0:  # fewer drawings left than groups: a seeded draw decides who gets one
            lucky = rng.permutation(np.flatnonzero(open_groups))[:remaining]
            quotas[lucky] += 1
            break
        room = sizes - quotas
        give = np.where(open_groups, np.minimum(share, room), 0)
        quotas += give
        remaining -= int(give.sum())
        open_groups &= quotas < sizes
    return quotas


def choose(table: pa.Table, params: SampleParams) -> np.ndarray:
    """Row indices into `table` of the sampled drawings, in a canonical order."""
    rng = np.random.default_rng(params.seed)
    if params.stratify == "none":
        picked = rng.choice(len(table), size=params.n, replace=False)
    else:
        countries = table["countrycode"].fill_null("")
        present = pc.unique(countries)
        codes = present.take(pc.array_sort_indices(present))  # as np.unique orders them
        groups = schema.to_numpy(pc.index_in(countries, value_set=codes))
        quotas = stratified_quotas(np.bincount(groups, minlength=len(codes)), params.n, rng)
        picked = np.concatenate(
            [
                rng.choice(np.flatnonzero(groups == group), size=quota, replace=False)
                for group, quota in enumerate(quotas)
                if quota
            ]
        )
    return np.sort(picked)


def _bitmaps(raw: Path, category: str, positions: np.ndarray) -> pa.Array:
    """The chosen rows of the category's npy (the join checked it pairs with the store)."""
    rows = read_rows(open_bitmaps(raw / layout.bitmap_object(category)), positions)
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(schema.BITMAP_BYTES), len(rows), [None, pa.py_buffer(rows)]
    )


def fetch_rows(
    files: list[pq.ParquetFile],
    categories: tuple[str, ...],
    chosen: pa.Table,
    raw: Path,
    drawings: str,
) -> pa.Table:
    """Read the chosen drawings' columns, touching only the row groups that hold them, and
    their strokes, reading only their lines of the drawings file."""
    parts = []
    indices = schema.to_numpy(chosen["category_index"])
    chosen_positions = schema.to_numpy(chosen["position"])
    for index, category in enumerate(categories):
        positions = chosen_positions[indices == index]
        if not len(positions):
            continue
        parquet = files[index]
        group_starts = np.cumsum(
            [0] + [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)]
        )
        groups = np.unique(np.searchsorted(group_starts, positions, side="right") - 1)
        table = parquet.read_row_groups(
            groups.tolist(), columns=FETCH_COLUMNS + SPAN_COLUMNS, use_threads=False
        )
        offsets = np.concatenate([np.arange(group_starts[g], group_starts[g + 1]) for g in groups])
        local = np.searchsorted(offsets, positions)
        table = table.take(schema.from_numpy(local))
        table = table.append_column("bitmap", _bitmaps(raw, category, positions))
        drawn = strokes.read_strokes(
            raw / layout.drawings_object(drawings, category),
            drawings,
            schema.to_numpy(table["key_id"]),
            schema.to_numpy(table["position"]),
            schema.to_numpy(table["byte_offset"]),
            schema.to_numpy(table["byte_length"]),
        )
        table = table.append_column("category", schema.repeat_text(category, len(table)))
        for name in strokes.COLUMNS:
            table = table.append_column(drawn.schema.field(name), drawn[name])
        parts.append(table)
    return pa.concat_tables(parts).select(schema.SAMPLE.names).cast(schema.SAMPLE)


def run_sample(
    processed: Path,
    categories: tuple[str, ...],
    params: SampleParams,
    out: Path,
    raw: Path,
    drawings: str,
) -> pa.Table:
    """Choose the sample, bring its strokes from `raw`/<drawings>/, write it to `out` atomically."""
    files = partitions(processed, categories)
    table = apply_filters(candidates(files), params, categories)
    chosen = table.take(schema.from_numpy(choose(table, params)))
    sample = fetch_rows(files, categories, chosen, raw, drawings)
    with atomic.atomic_path(out) as staging:
        pq.write_table(sample, staging, compression="zstd")
    return sample
