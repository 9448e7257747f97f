"""Join stage: npy row i + ndjson line i -> one Parquet partition per category, verified."""

from __future__ import annotations

import json
import os
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import atomic, binary, layout, schema
from pipeline.drawings import LineError, line_number, parse_range, split_ranges
from pipeline.errors import PipelineError
from pipeline.verify import check_alignment, check_alignment_in_file

ROW_GROUP = 65536
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3}
RANGE_BYTES = 32 << 20  # a thread's share of a file: small enough to balance, large to amortise
#: From this much ndjson on, the compiled scanner (on every core) repays its start-up cost of
#: about a second; below it (the demo data, tests), decoding each line with orjson is sooner.
#: Real categories are 26 MB and more even simplified.
COMPILED_MIN_BYTES = 16 << 20


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


def read_drawings(files: CategoryFiles, pool: Executor | None) -> pa.Table:
    """Every drawing's metadata, stroke statistics and byte span.

    With a pool: the compiled scanner on byte ranges in parallel; without: the decoder.
    """
    path = files.drawings
    if not path.is_file():
        raise PipelineError(f"{path}: not found; run the download stage first")
    if files.format == "binary":
        return read_binary(path, files.category)
    parts = max(1, path.stat().st_size // RANGE_BYTES) if pool else 1
    ranges = split_ranges(path, parts)
    count = len(ranges)
    arguments = (
        [path] * count,
        [r[0] for r in ranges],
        [r[1] for r in ranges],
        [files.raw] * count,
    )
    results = list(pool.map(parse_range, *arguments) if pool else map(parse_range, *arguments))
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
    """Every record of a .bin file: metadata, stroke statistics and byte spans."""
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
    files: CategoryFiles,
    out_root: Path,
    pool: Executor | None,
    verify_sample: int,
    checking: Future | None = None,
) -> dict:
    """Join one category into its partition; return its summary for join.json.

    `checking` is the alignment check already running beside the parse, if any.
    """
    bitmaps = load_bitmaps(files.bitmaps)
    meta = metadata_table(files, read_drawings(files, pool))
    check_pairing(files, bitmaps, meta)
    if checking is not None:
        alignment = checking.result()
    else:
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


def use_compiled(files: list[CategoryFiles]) -> bool:
    size = sum(item.drawings.stat().st_size for item in files if item.drawings.exists())
    return size >= COMPILED_MIN_BYTES


def run_join(
    raw_dir: Path,
    drawings: str,
    categories: tuple[str, ...],
    out_dir: Path,
    summary_path: Path,
    verify_sample: int = 300,
    compiled: bool | None = None,
) -> dict:
    """Join every category into `out_dir` (replaced atomically) and write the summary JSON.

    `compiled` picks the ndjson parser: the compiled scanner on every core, or the orjson
    decoder on one; None picks by the total size (see COMPILED_MIN_BYTES). Both are exact.
    """
    files = [category_files(raw_dir, drawings, category) for category in categories]
    if compiled is None:
        compiled = use_compiled(files)
    with atomic.atomic_path(out_dir) as staging, ExitStack() as stack:
        staging.mkdir(parents=True)
        checks = {}
        if compiled and verify_sample and drawings != "binary":
            # The alignment check finds the lines it needs by itself, so it runs beside the
            # parse instead of after it (the compiled scanner does not hold the GIL).
            checker = stack.enter_context(ThreadPoolExecutor(1))
            checks = {
                item.category: checker.submit(
                    check_alignment_in_file,
                    item.category,
                    item.bitmaps,
                    item.drawings,
                    drawings,
                    verify_sample,
                )
                for item in files
            }
        # Threads suffice: the compiled scanner and Arrow's kernels release the GIL.
        pool = stack.enter_context(ThreadPoolExecutor(os.cpu_count() or 1)) if compiled else None
        results = {
            item.category: join_category(
                item, staging, pool, verify_sample, checks.get(item.category)
            )
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
