"""Join stage: npy row i + ndjson line i -> one Parquet partition per category, verified."""

from __future__ import annotations

import json
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import atomic, binary, layout, schema
from pipeline.drawings import Columns, LineError, line_number, parse_range, split_ranges
from pipeline.errors import PipelineError
from pipeline.verify import check_alignment

ROW_GROUP = 65536
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}
RANGE_BYTES = 32 << 20  # a worker's share of a file: small enough to balance, large to amortise
PARALLEL_MIN_BYTES = 64 << 20  # below this, starting worker processes costs more than it saves


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


def load_bitmaps(path: Path) -> np.ndarray:
    """Memory-map a numpy_bitmap file, checking it is uint8 rows of 28x28 pixels."""
    try:
        bitmaps = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run the download stage first") from None
    except ValueError as exc:
        raise PipelineError(f"{path}: not a valid .npy file ({exc}); download it again") from None
    if bitmaps.dtype != np.uint8 or bitmaps.ndim != 2 or bitmaps.shape[1] != schema.BITMAP_BYTES:
        raise PipelineError(
            f"{path}: expected uint8 rows of {schema.BITMAP_BYTES} pixels (28x28), "
            f"got {bitmaps.dtype} with shape {bitmaps.shape}"
        )
    return bitmaps


def read_drawings(files: CategoryFiles, pool: Executor | None) -> Columns:
    """Every line's metadata and stroke statistics, parsed in parallel byte ranges."""
    path = files.drawings
    if not path.is_file():
        raise PipelineError(f"{path}: not found; run the download stage first")
    if files.format == "binary":
        return read_binary_columns(path, files.category)
    parts = max(1, path.stat().st_size // RANGE_BYTES) if pool else 1
    ranges = split_ranges(path, parts)
    if pool is None:
        results = [parse_range(path, start, end, files.raw) for start, end in ranges]
    else:
        count = len(ranges)
        results = list(
            pool.map(parse_range, [path] * count, *zip(*ranges, strict=True), [files.raw] * count)
        )
    columns = Columns()
    for result in results:
        if isinstance(result, LineError):
            raise PipelineError(
                f"{path}: line {line_number(path, result.offset)} (byte offset {result.offset}): "
                f"malformed drawing: {result.reason}; the file is corrupt or truncated, "
                "download it again"
            )
        columns.extend(result)
    return columns


def read_binary_columns(path: Path, category: str) -> Columns:
    """Every record of a .bin file: metadata, stroke statistics and byte spans."""
    data = path.read_bytes()
    found = list(binary.spans(data, path))
    offsets = np.array([span[0] for span in found], dtype=np.int64)
    key_ids, codes, recognized, seconds = binary.read_headers(data, offsets)
    return Columns(
        word=[category] * len(found),
        countrycode=codes,
        recognized=recognized,
        key_id=key_ids,
        strokes=[span[2] for span in found],
        points=[span[3] for span in found],
        byte_offset=offsets.tolist(),
        byte_length=[span[1] for span in found],
        timestamp_seconds=seconds,
    )


def _timestamps(columns: Columns, path: Path) -> pa.Array:
    if columns.timestamp_seconds:
        seconds = pa.array(columns.timestamp_seconds, pa.int64())
        return pc.multiply(seconds, 1_000_000).cast(pa.timestamp("us", tz="UTC"))
    return _parse_timestamps(columns.timestamp, path)


def _parse_timestamps(values: list[str], path: Path) -> pa.Array:
    """Google writes `2017-03-05 10:52:22.31485 UTC`; store it as a UTC timestamp."""
    strings = pa.array(values, pa.string())
    utc = pc.ends_with(strings, " UTC")
    if not pc.all(utc).as_py():
        bad = pc.index(utc, False).as_py()
        raise PipelineError(
            f"{path}: line {bad + 1}: timestamp {values[bad]!r} does not end in ' UTC'"
        )
    try:
        parsed = pc.cast(pc.utf8_slice_codeunits(strings, 0, -4), pa.timestamp("us"))
    except pa.ArrowInvalid as exc:
        raise PipelineError(f"{path}: unreadable timestamp: {exc}") from None
    return parsed.cast(pa.timestamp("us", tz="UTC"))


def metadata_table(files: CategoryFiles, columns: Columns) -> pa.Table:
    """The per-drawing columns from the ndjson, in the store's schema (bitmap left out)."""
    count = len(columns.key_id)
    return pa.table(
        {
            "key_id": pa.array(columns.key_id, pa.uint64()),
            "word": pa.array(columns.word, pa.string()),
            "countrycode": pa.array(columns.countrycode, pa.string()),
            "recognized": pa.array(columns.recognized, pa.bool_()),
            "timestamp": _timestamps(columns, files.drawings),
            "position": pa.array(np.arange(count, dtype=np.int64)),
            "byte_offset": pa.array(columns.byte_offset, pa.int64()),
            "byte_length": pa.array(columns.byte_length, pa.int32()),
            "strokes": pa.array(columns.strokes, pa.int32()),
            "points": pa.array(columns.points, pa.int32()),
            "duration_ms": pa.array(
                columns.duration_ms if files.raw else [None] * count, pa.int64()
            ),
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


def write_partition(target: Path, bitmaps: np.ndarray, meta: pa.Table) -> None:
    """Write row groups one at a time, so only one group's bitmaps are in memory at once."""
    target.parent.mkdir(parents=True, exist_ok=True)
    bitmap_type = pa.binary(schema.BITMAP_BYTES)
    with pq.ParquetWriter(target, schema.DRAWINGS, **PARQUET_OPTIONS) as writer:
        for start in range(0, max(meta.num_rows, 1), ROW_GROUP):
            rows = meta.slice(start, ROW_GROUP)
            block = np.ascontiguousarray(bitmaps[start : start + rows.num_rows])
            column = pa.FixedSizeBinaryArray.from_buffers(
                bitmap_type, rows.num_rows, [None, pa.py_buffer(block)]
            )
            writer.write_table(
                rows.append_column("bitmap", column)
                .select(schema.DRAWINGS.names)
                .cast(schema.DRAWINGS),
                row_group_size=ROW_GROUP,
            )


def join_category(
    files: CategoryFiles, out_root: Path, pool: Executor | None, verify_sample: int
) -> dict:
    """Join one category into its partition; return its summary for join.json."""
    bitmaps = load_bitmaps(files.bitmaps)
    meta = metadata_table(files, read_drawings(files, pool))
    check_pairing(files, bitmaps, meta)
    alignment = check_alignment(
        files.category,
        bitmaps,
        files.drawings,
        meta["byte_offset"].to_numpy(),
        meta["byte_length"].to_numpy(),
        files.format,
        verify_sample,
    )
    write_partition(
        layout.partition_dir(out_root, files.category) / "part-0.parquet", bitmaps, meta
    )
    return {
        "drawings": meta.num_rows,
        "recognized": int(pc.sum(meta["recognized"]).as_py() or 0),
        "countries": len(pc.unique(meta["countrycode"])),
        "alignment": alignment.as_dict() if alignment else None,
    }


def worker_count(files: list[CategoryFiles]) -> int:
    """Worker processes worth starting: one per core when there is enough data to share."""
    size = sum(item.drawings.stat().st_size for item in files if item.drawings.exists())
    return 1 if size < PARALLEL_MIN_BYTES else os.cpu_count() or 1


def run_join(
    raw_dir: Path,
    drawings: str,
    categories: tuple[str, ...],
    out_dir: Path,
    summary_path: Path,
    verify_sample: int = 300,
) -> dict:
    """Join every category into `out_dir` (replaced atomically) and write the summary JSON."""
    files = [category_files(raw_dir, drawings, category) for category in categories]
    workers = worker_count(files)
    pool_context = ProcessPoolExecutor(workers) if workers > 1 else nullcontext(None)
    with atomic.atomic_path(out_dir) as staging, pool_context as pool:
        staging.mkdir(parents=True)
        results = {
            item.category: join_category(item, staging, pool, verify_sample) for item in files
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
