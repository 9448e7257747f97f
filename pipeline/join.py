"""Join stage: npy row i + ndjson line i -> one Parquet partition per category, verified."""

from __future__ import annotations

import json
import mmap
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import atomic, layout, schema
from pipeline.errors import PipelineError

METADATA_KEYS = ("word", "countrycode", "timestamp", "recognized", "key_id")
_DRAWING_KEY = b',"drawing":'
_NEWLINE_CHUNK = 64 << 20
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "row_group_size": 65536}


@dataclass(frozen=True)
class CategoryFiles:
    category: str
    bitmaps: Path
    drawings: Path


def category_files(raw_dir: Path, drawings: str, category: str) -> CategoryFiles:
    return CategoryFiles(
        category,
        raw_dir / layout.bitmap_object(category),
        raw_dir / layout.drawings_object(drawings, category),
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


def line_spans(buffer: memoryview | bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets and lengths (without the newline) of every line; the last may lack one."""
    data = np.frombuffer(buffer, dtype=np.uint8)
    ends = [
        np.flatnonzero(data[start : start + _NEWLINE_CHUNK] == 0x0A) + start
        for start in range(0, len(data), _NEWLINE_CHUNK)
    ]
    newlines = np.concatenate(ends) if ends else np.empty(0, dtype=np.int64)
    if len(data) and (not len(newlines) or newlines[-1] != len(data) - 1):
        newlines = np.append(newlines, len(data))  # a final line without a newline
    starts = np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64)
    return starts, (newlines - starts).astype(np.int64)


def parse_metadata(line: bytes) -> dict:
    """A drawing line's metadata; skips decoding the strokes when `drawing` is the last key."""
    cut = line.rfind(_DRAWING_KEY)
    if cut > 0 and line.endswith(b"]}"):
        try:
            record = orjson.loads(line[:cut] + b"}")
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict) and all(key in record for key in METADATA_KEYS):
            return record
    record = orjson.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    missing = [key for key in (*METADATA_KEYS, "drawing") if key not in record]
    if missing:
        raise ValueError(f"missing key {missing[0]!r}")
    return record


def read_metadata(path: Path) -> tuple[dict[str, list], np.ndarray, np.ndarray]:
    """Parse every line's metadata into columns, with each line's byte offset and length."""
    columns: dict[str, list] = {key: [] for key in METADATA_KEYS}
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run the download stage first") from None
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return columns, np.empty(0, np.int64), np.empty(0, np.int64)
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
            starts, lengths = line_spans(buffer)
            for number, (start, length) in enumerate(
                zip(starts.tolist(), lengths.tolist(), strict=False)
            ):
                line = buffer[start : start + length]
                try:
                    record = parse_metadata(line)
                    _check_types(record)
                except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                    raise PipelineError(
                        f"{path}: line {number + 1} (byte offset {start}): malformed drawing: "
                        f"{exc}; the file is corrupt or truncated, download it again"
                    ) from None
                for key in METADATA_KEYS:
                    columns[key].append(record[key])
    return columns, starts, lengths


def _check_types(record: dict) -> None:
    for key in ("word", "timestamp", "key_id"):
        if not isinstance(record[key], str):
            raise ValueError(f"{key} must be a string, got {record[key]!r}")
    if not isinstance(record["recognized"], bool):
        raise ValueError(f"recognized must be true or false, got {record['recognized']!r}")
    if record["countrycode"] is not None and not isinstance(record["countrycode"], str):
        raise ValueError(f"countrycode must be a string, got {record['countrycode']!r}")
    if not record["key_id"].isdigit():
        raise ValueError(f"key_id must be a decimal number, got {record['key_id']!r}")


def _timestamps(values: list[str], path: Path) -> pa.Array:
    """Google writes `2017-03-05 10:52:22.31485 UTC`; store it as a UTC timestamp."""
    strings = pa.array(values, pa.string())
    if not pc.all(pc.ends_with(strings, " UTC")).as_py():
        bad = pc.index(pc.ends_with(strings, " UTC"), False).as_py()
        raise PipelineError(
            f"{path}: line {bad + 1}: timestamp {values[bad]!r} does not end in ' UTC'"
        )
    try:
        parsed = pc.cast(pc.utf8_slice_codeunits(strings, 0, -4), pa.timestamp("us"))
    except pa.ArrowInvalid as exc:
        raise PipelineError(f"{path}: unreadable timestamp: {exc}") from None
    return parsed.cast(pa.timestamp("us", tz="UTC"))


def build_table(files: CategoryFiles) -> pa.Table:
    """Join one category's bitmaps with its drawings' metadata, row i with line i."""
    bitmaps = load_bitmaps(files.bitmaps)
    columns, starts, lengths = read_metadata(files.drawings)
    if len(starts) != len(bitmaps):
        raise PipelineError(
            f"{files.category}: {files.bitmaps} has {len(bitmaps)} bitmaps but "
            f"{files.drawings} has {len(starts)} drawings; the files must list the same "
            "drawings in the same order (download both again)"
        )
    words = set(columns["word"])
    if words and words != {files.category}:
        other = sorted(words - {files.category})[0]
        raise PipelineError(
            f"{files.drawings}: holds drawings of {other!r}, not {files.category!r}"
        )
    key_ids = (
        np.array(columns["key_id"], dtype=np.uint64) if len(starts) else np.empty(0, np.uint64)
    )
    bitmap_buffer = pa.py_buffer(np.ascontiguousarray(bitmaps))
    arrays = [
        pa.array(key_ids, pa.uint64()),
        pa.array(columns["word"], pa.string()),
        pa.array(columns["countrycode"], pa.string()),
        pa.array(columns["recognized"], pa.bool_()),
        _timestamps(columns["timestamp"], files.drawings),
        pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(schema.BITMAP_BYTES), len(bitmaps), [None, bitmap_buffer]
        ),
        pa.array(np.arange(len(starts), dtype=np.int64)),
        pa.array(starts, pa.int64()),
        pa.array(lengths, pa.int64()).cast(pa.int32()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema.DRAWINGS)


def join_category(files: CategoryFiles, out_root: Path) -> dict:
    """Write one category's partition; return its summary for join.json."""
    table = build_table(files)
    target = layout.partition_dir(out_root, files.category) / "part-0.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target, **PARQUET_OPTIONS)
    return {
        "drawings": table.num_rows,
        "recognized": int(pc.sum(table["recognized"]).as_py() or 0),
        "countries": len(pc.unique(table["countrycode"])),
    }


PARALLEL_MIN_BYTES = 64 << 20  # below this, starting worker processes costs more than it saves


def _jobs(files: list[CategoryFiles]) -> int:
    """Worker processes worth starting: one per core when there is enough data to share."""
    size = sum(item.drawings.stat().st_size for item in files if item.drawings.exists())
    if len(files) < 2 or size < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(len(files), os.cpu_count() or 1))


def run_join(
    raw_dir: Path, drawings: str, categories: tuple[str, ...], out_dir: Path, summary_path: Path
) -> dict:
    """Join every category into `out_dir` (replaced atomically) and write the summary JSON."""
    files = [category_files(raw_dir, drawings, category) for category in categories]
    with atomic.atomic_path(out_dir) as staging:
        staging.mkdir(parents=True)
        jobs = _jobs(files)
        if jobs == 1:
            results = [join_category(item, staging) for item in files]
        else:
            with ProcessPoolExecutor(jobs) as pool:
                results = list(pool.map(join_category, files, [staging] * len(files)))
        summary = {
            "drawings": sum(result["drawings"] for result in results),
            "format": drawings,
            "categories": dict(zip(categories, results, strict=False)),
        }
        atomic.write_text(summary_path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary
