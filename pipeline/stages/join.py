"""Join stage: npy row i + ndjson line i -> one Parquet partition per category, verified."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import select
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import (
    Executor,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import cpus
from pipeline.errors import PipelineError
from pipeline.formats import binary
from pipeline.formats.bitmaps import open_bitmaps, read_block
from pipeline.formats.drawings import LineError, line_number, parse_range, split_ranges
from pipeline.formats.verify import check_alignment
from pipeline.store import atomic, incremental, layout, schema

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
#: Longest drawing (ndjson line or .bin record) the join accepts: Google's longest raw lines
#: are tens of KB; rendering one drawing for the alignment check costs hundreds of times its
#: size, so the limit bounds the join's memory whatever the data.
LINE_LIMIT = 1 << 20
RANGE_BYTES = 32 << 20  # a thread's share of a file: small enough to balance, large to amortise
#: The code a partition is made with, as dvc.yaml's join deps list it (a test checks they
#: agree): a change to any of it re-joins every category.
JOIN_CODE = (
    "pipeline/stages/join.py",
    "pipeline/formats/drawings.py",
    "pipeline/native/_native.c",
    "pipeline/formats/verify.py",
    "pipeline/formats/strokes.py",
    "pipeline/formats/binary.py",
    "pipeline/formats/render.py",
    "pipeline/store/schema.py",
    "pipeline/formats/bitmaps.py",
)


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


def invalidate_download(files: CategoryFiles) -> None:
    """Forget the download's record of a category whose files the join found wrong, so that
    the advice 'download it again' works: the next download fetches it instead of keeping it."""
    (files.bitmaps.parent.parent / layout.manifest_object(files.category)).unlink(missing_ok=True)


def check_pairing(files: CategoryFiles, bitmaps: np.ndarray, meta: pa.Table) -> None:
    """The two files must describe the same drawings: same count, same category, not none."""
    if meta.num_rows == 0 and len(bitmaps) == 0:
        raise PipelineError(
            f"{files.category}: {files.drawings} and {files.bitmaps} hold no drawings; an empty "
            "category cannot be joined: download it again or remove it from dataset.categories"
        )
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
    target: Path,
    bitmaps: np.memmap,
    meta: pa.Table,
    record: str,
    summarise: Callable[[], dict],
    row_group: int = ROW_GROUP,
) -> dict:
    """Write row groups one at a time (only one group's bitmaps in memory), atomically.

    The footer carries the partition's record and the summary `summarise` returns once the
    rows are written (the alignment check runs meanwhile); returns that summary.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    stored = schema.DRAWINGS.with_metadata({schema.RECORD_KEY: record.encode()})
    bitmap_type = pa.binary(schema.BITMAP_BYTES)
    try:
        with (
            atomic.atomic_path(target) as staging,
            pq.ParquetWriter(staging, stored, **PARQUET_OPTIONS) as writer,
        ):
            for start in range(0, max(meta.num_rows, 1), row_group):
                rows = meta.slice(start, row_group)
                block = read_block(bitmaps, start, start + rows.num_rows)
                column = pa.FixedSizeBinaryArray.from_buffers(
                    bitmap_type, rows.num_rows, [None, pa.py_buffer(block)]
                )
                writer.write_table(
                    rows.append_column("bitmap", column).select(stored.names).cast(stored),
                    row_group_size=row_group,
                )
            summary = summarise()
            writer.add_key_value_metadata({schema.SUMMARY_KEY: json.dumps(summary, sort_keys=True)})
    except OSError as exc:
        raise PipelineError(
            f"{target}: cannot write the partition ({exc.strerror or exc}); free space under "
            f"{target.parent} and rerun (no partial file was left)"
        ) from None
    return summary


def check_line_lengths(files: CategoryFiles, meta: pa.Table) -> None:
    """Refuse a drawing longer than LINE_LIMIT: the stages' memory grows with one drawing's
    size (rendering it, decoding it), so a longer one is damage or an attack, named by line."""
    lengths = meta["byte_length"]
    if not len(lengths) or pc.max(lengths).as_py() <= LINE_LIMIT:
        return
    row = pc.index(pc.greater(lengths, LINE_LIMIT), True).as_py()
    unit = "record" if files.format == "binary" else "line"
    raise PipelineError(
        f"{files.drawings}: {unit} {row + 1}: a drawing of {lengths[row].as_py():,} bytes; the "
        f"join accepts drawings up to {LINE_LIMIT:,} bytes (Google's largest are under 100 KB): "
        "the file is damaged or not Google's, download it again"
    )


def check_countries(files: CategoryFiles, meta: pa.Table) -> None:
    """Every real countrycode is two ASCII capitals; anything else is damage, named by line."""
    codes = meta["countrycode"]
    valid = pc.match_substring_regex(codes, r"^[A-Z]{2}\z")
    if valid.null_count == 0 and pc.all(valid).as_py():  # no scalar argument: no pandas import
        return
    row = pc.index(pc.fill_null(valid, False), False).as_py()
    unit = "record" if files.format == "binary" else "line"
    raise PipelineError(
        f"{files.drawings}: {unit} {row + 1}: countrycode {codes[row].as_py()!r} is not two "
        "ASCII capital letters (an ISO 3166-1 alpha-2 code); the file is damaged or not "
        "Google's: download it again"
    )


def join_category(
    files: CategoryFiles,
    out_root: Path,
    pool: Executor,
    verify_sample: int,
    record: str = "",
    compiled: bool = True,
) -> dict:
    """Join one category into its partition (written atomically); return its summary."""
    try:
        bitmaps = open_bitmaps(files.bitmaps)
        meta = metadata_table(files, read_drawings(files, pool, compiled))
        check_pairing(files, bitmaps, meta)
        check_line_lengths(files, meta)
        check_countries(files, meta)
    except PipelineError:
        invalidate_download(files)
        raise
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

    def summarise() -> dict:
        try:
            alignment = checking.result()
        except PipelineError:
            invalidate_download(files)
            raise
        return {
            "drawings": meta.num_rows,
            "recognized": int(pc.sum(meta["recognized"]).as_py() or 0),
            "countries": len(pc.unique(meta["countrycode"])),
            "alignment": alignment.as_dict() if alignment else None,
        }

    target = layout.partition_path(out_root, files.category)
    try:
        return write_partition(target, bitmaps, meta, record, summarise)
    finally:
        checking.cancel()


def join_record(raw_dir: Path, drawings: str, category: str, verify_sample: int) -> str:
    """What a partition is made from: its inputs' hashes, the join's code and parameters.
    Equal records, equal partitions.

    The inputs' hashes come from the download's manifest; files placed by hand without one
    are hashed here.
    """
    files = category_files(raw_dir, drawings, category)
    objects = {
        layout.bitmap_object(category): files.bitmaps,
        layout.drawings_object(drawings, category): files.drawings,
    }
    path = raw_dir / layout.manifest_object(category)
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))["files"]
        inputs = {obj: {"md5": listed[obj]["md5"], "size": listed[obj]["size"]} for obj in objects}
    except (OSError, ValueError, KeyError, TypeError):
        inputs = {obj: _file_identity(file) for obj, file in objects.items()}
    code = incremental.code_fingerprint(JOIN_CODE)
    return incremental.canonical(
        {
            "category": category,
            "code": code,
            "format": drawings,
            "inputs": inputs,
            "verify_sample": verify_sample,
        }
    )


def _file_identity(path: Path) -> dict:
    if not path.is_file():
        raise PipelineError(f"{path}: not found; run the download stage first")
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return {"md5": digest.hexdigest(), "size": path.stat().st_size}


def read_footer(path: Path) -> tuple[str, dict | None]:
    """A partition's record and summary ('' and None when it has none or is unreadable)."""
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except (OSError, pa.ArrowException):
        return "", None
    summary = metadata.get(schema.SUMMARY_KEY)
    return metadata.get(schema.RECORD_KEY, b"").decode(), json.loads(summary) if summary else None


def held_partitions(out_dir: Path) -> tuple[dict[str, incremental.Piece], dict[str, dict]]:
    """The partitions the store holds now, by their footers' records, and their summaries."""
    held, summaries = {}, {}
    for folder in sorted(out_dir.glob("category=*")):
        category = unquote(folder.name[len("category=") :])
        path = folder / layout.PARTITION_FILE
        if path.is_file():
            record, summaries[category] = read_footer(path)
            held[category] = incremental.Piece(category, record, (path,), folder)
        elif not any(folder.iterdir()):
            folder.rmdir()
    return held, summaries


def run_join(
    raw_dir: Path,
    drawings: str,
    categories: tuple[str, ...],
    out_dir: Path,
    summary_path: Path,
    verify_sample: int = 300,
    compiled: bool = True,
    workers: int = 1,
) -> dict:
    """Join the categories whose inputs or recipe changed; keep, restore or set aside the rest;
    write the summary JSON of all of them.

    Each partition is written atomically and recorded in its own footer, so a run that fails
    or is killed keeps every category it finished. `compiled=False` decodes every ndjson line
    with orjson instead of taking the compiled scanner's fast path (the tests compare them).
    `workers` > 1 joins categories in that many worker processes (the command line uses every
    core; as with any multiprocessing, a calling script needs its `if __name__` guard).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale(out_dir.parent)
    records = {c: join_record(raw_dir, drawings, c, verify_sample) for c in categories}
    wanted = [
        incremental.Piece(c, records[c], (layout.partition_path(out_dir, c),)) for c in categories
    ]
    shelf = incremental.Shelf("join", out_dir.parent.parent / ".stash", base=out_dir.parent)
    held, summaries = held_partitions(out_dir)
    plan = incremental.plan(wanted, held, shelf)
    print(plan.summary("join"))
    jobs = [
        (category_files(raw_dir, drawings, c), out_dir, verify_sample, records[c], compiled)
        for c in plan.todo
    ]
    width = len(str(len(jobs)))
    for number, (category, result) in enumerate(_join_all(jobs, workers), 1):
        print(
            f"join [{number:>{width}}/{len(jobs)}] {category}: {result['drawings']:,} drawings"
            + _agreement(result)
        )
        sys.stdout.flush()
        summaries[category] = result
    for category in plan.restored:
        summaries[category] = read_footer(layout.partition_path(out_dir, category))[1]
    results = {c: summaries[c] for c in categories}
    checked = [r["alignment"]["agreement"] for r in results.values() if r["alignment"]]
    summary = {
        "drawings": sum(result["drawings"] for result in results.values()),
        "format": drawings,
        "alignment_agreement": min(checked) if checked else None,
        "categories": results,
    }
    atomic.write_text(summary_path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


#: Below this many categories to join, one process does them all (a worker costs its start-up).
PROCESS_POOL_FROM = 4


def _join_one(files: CategoryFiles, out_dir: Path, verify: int, record: str, compiled: bool):
    with ThreadPoolExecutor(cpus()) as pool:
        return files.category, join_category(files, out_dir, pool, verify, record, compiled)


def _join_all(jobs: list[tuple], workers: int) -> Iterator[tuple[str, dict]]:
    """Join categories in turn, or on every core in worker processes when there are many (small
    categories leave a core idle otherwise: the alignment check holds the GIL). On a failure
    no new category starts and those in flight finish: each partition is complete or absent.
    """
    if len(jobs) < PROCESS_POOL_FROM or workers < 2:
        for job in jobs:
            yield _join_one(*job)
        return
    context = multiprocessing.get_context("forkserver")
    parent = os.getpid()
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_end_with, initargs=(parent,)
    ) as pool:
        futures = [pool.submit(_join_one, *job) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _end_with(parent: int) -> None:
    """In a worker: end at once when the joining process ends, even by SIGKILL (its queues
    would keep the worker waiting, or joining, for ever). A worker's parent is the forkserver,
    so PR_SET_PDEATHSIG cannot see the join end: a pidfd of the join can."""
    try:
        watched = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)

    def watch() -> None:
        select.select([watched], [], [])
        os._exit(1)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def _agreement(result: dict) -> str:
    alignment = result["alignment"]
    return f", alignment {alignment['agreement']:.0%}" if alignment else ""
