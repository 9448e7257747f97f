"""Join stage: npy row i + ndjson line i -> one Parquet partition per category, verified."""

from __future__ import annotations

import json
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import atomic, binary, layout, schema
from pipeline.bitmaps import open_bitmaps, read_block
from pipeline.drawings import LineError, line_number, parse_range, split_ranges
from pipeline.errors import PipelineError
from pipeline.verify import check_alignment

#: Rows per row group: 12.5 MB of bitmaps, the unit the writer holds in memory and the sample
#: stage reads for the rows it picks.
ROW_GROUP = 16384
#: Dictionaries only where values repeat: a bitmap, key_id or timestamp is (nearly) unique, so a
#: dictionary for them is built only to be thrown away.
PARQUET_OPTIONS = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": ["word", "countrycode"],
}
RANGE_BYTES = 32 << 20  # a thread's share of a file: small enough to balance, large to amortise


@dataclass(frozen=True)
class CategoryFiles:
    category: str
    bitmaps: Path
    drawings: Path
    format: str  # raw, simplified or binary

    @property
    def raw(self) -> bool:
        return self.format == "raw"


def category_files(raw_dir: Path, drawings: str, category: str) -> CategoryFiles:
    return CategoryFiles(
        category,
        raw_dir / layout.bitmap_object(category),
        raw_dir / layout.drawings_object(drawings, category),
        drawings,
    )


def read_drawings(files: CategoryFiles, pool: Executor, compiled: bool = True) -> pa.Table:
    """Every drawing's metadata, stroke statistics and byte span, parsed in byte ranges on
    every core (the compiled scanner releases the GIL); `compiled=False` decodes every line."""
    path = files.drawings
    if not path.is_file():
        raise PipelineError(f"{path}: not found; run the download stage first")
    if files.format == "binary":
        return read_binary(path, files.category)
    ranges = split_ranges(path, max(1, path.stat().st_size // RANGE_BYTES))
    count = len(ranges)
    results = list(
        pool.map(
            parse_range,
            [path] * count,
            [r[0] for r in ranges],
            [r[1] for r in ranges],
            [files.raw] * count,
            [compiled] * count,
        )
    )
    for result in results:
        if isinstance(result, LineError):
            raise PipelineError(
                f"{path}: line {line_number(path, result.offset)} (byte offset {result.offset}): "
                f"malformed drawing: {result.reason}; the file is corrupt or truncated, "
                "download it again"
            )
    if not results:
        return parse_range(path, 0, 0, files.raw)
    table = pa.concat_tables(results)
    return table.set_column(
        table.schema.get_field_index("timestamp"),
        "timestamp",
        _parse_timestamps(table["timestamp"], path),
    )


def read_binary(path: Path, category: str) -> pa.Table:
    """Every record of a .bin file: metadata, stroke statistics, first strokes' areas and byte
    spans."""
    data = path.read_bytes()
    found = np.array(list(binary.spans(data, path)), dtype=np.int64).reshape(-1, 4)
    key_ids, codes, recognized, seconds = binary.read_headers(data, found[:, 0])
    return pa.table(
        {
            "word": pa.array([category] * len(found), pa.string()),
            "countrycode": pa.array(codes, pa.string()),
            "timestamp": pc.multiply(pa.array(seconds, pa.int64()), 1_000_000).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "recognized": pa.array(recognized, pa.bool_()),
            "key_id": pa.array(key_ids, pa.uint64()),
            "strokes": schema.from_numpy(found[:, 2].astype(np.int32)),
            "points": schema.from_numpy(found[:, 3].astype(np.int32)),
            "duration_ms": pa.nulls(len(found), pa.int64()),
            "first_stroke_area": schema.from_numpy(
                binary.first_stroke_areas(data, found[:, 0], found[:, 2])
            ),
            "byte_offset": schema.from_numpy(found[:, 0]),
            "byte_length": schema.from_numpy(found[:, 1].astype(np.int32)),
        }
    )


def _parse_timestamps(strings: pa.ChunkedArray, path: Path) -> pa.Array:
    """Google writes `2017-03-05 10:52:22.31485 UTC`; store it as a UTC timestamp."""
    utc = pc.ends_with(strings, " UTC")
    if not pc.all(utc).as_py() and len(strings):
        bad = pc.index(utc, False).as_py()
        raise PipelineError(
            f"{path}: line {bad + 1}: timestamp {strings[bad].as_py()!r} does not end in ' UTC'"
        )
    try:
        parsed = pc.cast(pc.utf8_slice_codeunits(strings, 0, -4), pa.timestamp("us"))
    except pa.ArrowInvalid as exc:
        raise PipelineError(f"{path}: unreadable timestamp: {exc}") from None
    return parsed.cast(pa.timestamp("us", tz="UTC"))


def metadata_table(files: CategoryFiles, parsed: pa.Table) -> pa.Table:
    """The per-drawing columns, in the store's schema (bitmap left out)."""
    count = parsed.num_rows
    duration = parsed["duration_ms"] if files.raw else pa.nulls(count, pa.int64())
    return pa.table(
        {
            "key_id": parsed["key_id"],
            "word": parsed["word"],
            "countrycode": parsed["countrycode"],
            "recognized": parsed["recognized"],
            "timestamp": parsed["timestamp"],
            "position": schema.from_numpy(np.arange(count, dtype=np.int64)),
            "byte_offset": parsed["byte_offset"],
            "byte_length": parsed["byte_length"],
            "strokes": parsed["strokes"],
            "points": parsed["points"],
            "duration_ms": duration,
            "first_stroke_area": parsed["first_stroke_area"],
        }
    )


def check_pairing(files: CategoryFiles, bitmaps: np.ndarray, meta: pa.Table) -> None:
    """The two files must describe the same drawings: same count, same category."""
    if meta.num_rows != len(bitmaps):
        raise PipelineError(
            f"{files.category}: {files.bitmaps} has {len(bitmaps)} bitmaps but "
            f"{files.drawings} has {meta.num_rows} drawings; the files must list the same "
            "drawings in the same order (download both again)"
        )
    words = pc.unique(meta["word"]).to_pylist()
    if words and words != [files.category]:
        other = sorted(set(words) - {files.category})[0]
        raise PipelineError(
            f"{files.drawings}: holds drawings of {other!r}, not {files.category!r}"
        )


def write_partition(
    target: Path, bitmaps: np.memmap, meta: pa.Table, row_group: int = ROW_GROUP
) -> None:
    """Write row groups one at a time, so only one group's bitmaps are in memory at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    bitmap_type = pa.binary(schema.BITMAP_BYTES)
    with pq.ParquetWriter(target, schema.DRAWINGS, **PARQUET_OPTIONS) as writer:
        for start in range(0, max(meta.num_rows, 1), row_group):
            rows = meta.slice(start, row_group)
            block = read_block(bitmaps, start, start + rows.num_rows)
            column = pa.FixedSizeBinaryArray.from_buffers(
                bitmap_type, rows.num_rows, [None, pa.py_buffer(block)]
            )
            writer.write_table(
                rows.append_column("bitmap", column)
                .select(schema.DRAWINGS.names)
                .cast(schema.DRAWINGS),
                row_group_size=row_group,
            )


def join_category(
    files: CategoryFiles,
    out_root: Path,
    pool: Executor,
    verify_sample: int,
    compiled: bool = True,
) -> dict:
    """Join one category into its partition; return its summary for join.json."""
    bitmaps = open_bitmaps(files.bitmaps)
    meta = metadata_table(files, read_drawings(files, pool, compiled))
    check_pairing(files, bitmaps, meta)
    # The check (mostly Python) runs while the Parquet writer (native, no GIL) works.
    checking = pool.submit(
        check_alignment,
        files.category,
        bitmaps,
        files.drawings,
        schema.to_numpy(meta["byte_offset"]),
        schema.to_numpy(meta["byte_length"]),
        files.format,
        verify_sample,
    )
    write_partition(
        layout.partition_dir(out_root, files.category) / "part-0.parquet", bitmaps, meta
    )
    alignment = checking.result()
    return {
        "drawings": meta.num_rows,
        "recognized": int(pc.sum(meta["recognized"]).as_py() or 0),
        "countries": len(pc.unique(meta["countrycode"])),
        "alignment": alignment.as_dict() if alignment else None,
    }


def run_join(
    raw_dir: Path,
    drawings: str,
    categories: tuple[str, ...],
    out_dir: Path,
    summary_path: Path,
    verify_sample: int = 300,
    compiled: bool = True,
) -> dict:
    """Join every category into `out_dir` (replaced atomically) and write the summary JSON.

    `compiled=False` decodes every ndjson line with orjson instead of taking the compiled
    scanner's fast path; both are exact (the tests compare them).
    """
    files = [category_files(raw_dir, drawings, category) for category in categories]
    with (
        atomic.atomic_path(out_dir) as staging,
        ThreadPoolExecutor(os.cpu_count() or 1) as pool,
    ):
        staging.mkdir(parents=True)
        results = {
            item.category: join_category(item, staging, pool, verify_sample, compiled)
            for item in files
        }
        checked = [r["alignment"]["agreement"] for r in results.values() if r["alignment"]]
        summary = {
            "drawings": sum(result["drawings"] for result in results.values()),
            "format": drawings,
            "alignment_agreement": min(checked) if checked else None,
            "categories": results,
        }
        atomic.write_text(summary_path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
