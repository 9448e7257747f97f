"""One category's two files: stat, plan, fetch (sliced or one stream), verify, rename, manifest."""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.download.context import SlicePolicy, _Context
from pipeline.download.plan import _binary_records, _Plan, _plan_for
from pipeline.download.retry import (
    Interrupted,
    RetryPolicy,
    _Changed,
    _disk_full,
    _DiskFull,
    _DiskFullError,
    _NoRanges,
    _NotFound,
    _retrying,
    _Stop,
    _Stopped,
    _worst,
)
from pipeline.download.sliced import _fetch_sliced, _recorded, _sliced
from pipeline.download.stream import _discard, _fetch_stream, _staging
from pipeline.download.transport import Transport, make_transport
from pipeline.errors import PipelineError
from pipeline.store.atomic import fsync_dir, write_text
from pipeline.store.layout import RAW_DIR, bitmap_object, drawings_object, manifest_object


def _fetch(transport: Transport, plan: _Plan, target: Path, ctx: _Context) -> dict[str, Any]:
    """Fetch `plan` into `<target>.part` (resuming it if it is ours), verify, rename into place."""
    url = transport.url(plan.obj)
    part, sidecar, tmp = _staging(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    resume, slices = _recorded(target, plan.key(url), plan.remote.size)
    if not resume:  # absent, or left by an older version of the object or another limit
        _discard(part, sidecar, tmp)
    try:
        result = None
        if slices is not None or (not resume and _sliced(transport, plan, ctx.slicing)):
            try:
                result = _fetch_sliced(transport, plan, target, slices, ctx)
            except _NoRanges:  # the server ignores Range after all: one stream, from zero
                _discard(part, sidecar, tmp)
                resume = False
        if result is None:
            result = _fetch_stream(transport, plan, target, resume, ctx)
    except (_DiskFull, OSError) as exc:
        if not _disk_full(exc):
            raise
        _discard(part, sidecar, tmp)
        raise _DiskFullError(
            f"disk full while writing {part} ({plan.remote.size:,} bytes from {url}): free "
            f"space under {part.parent} and rerun (the partial file was removed)"
        ) from None
    lines = _npy_rows(part, url, sidecar) if target.suffix == ".npy" else result.lines
    os.replace(part, target)
    fsync_dir(target.parent)
    sidecar.unlink(missing_ok=True)
    entry: dict[str, Any] = {"url": url, "size": result.size, "md5": result.md5}
    optional = {"crc32c": result.crc32c, "etag": plan.remote.etag}
    optional["generation"] = plan.remote.generation
    entry.update({k: v for k, v in optional.items() if v is not None})
    entry["drawings"] = lines
    return entry


def _npy_rows(part: Path, url: str, sidecar: Path) -> int:
    """Row count from the header; a file that is no .npy, or whose header disagrees with its
    size (a short body from a server that sends no hash), never reaches the target path."""
    try:
        with open(part, "rb") as fp:
            version = np.lib.format.read_magic(fp)
            read = np.lib.format.read_array_header_1_0
            if version != (1, 0):
                read = np.lib.format.read_array_header_2_0
            shape, _, dtype = read(fp)
            expected = fp.tell() + math.prod(shape) * dtype.itemsize
    except ValueError as exc:
        _discard(part, sidecar)
        raise PipelineError(f"{url}: not a valid .npy file ({exc})") from None
    size = part.stat().st_size
    if size != expected:
        _discard(part, sidecar)
        raise PipelineError(
            f"{url}: its header describes {shape} {dtype} ({expected:,} bytes) but it holds "
            f"{size:,} bytes; the file is damaged at the source or was cut short: removed, "
            "rerun to fetch it again"
        )
    return int(shape[0]) if shape else 1


def _download(
    transport: Transport, obj: str, target: Path, category: str, limit: int | None, ctx: _Context
) -> dict[str, Any]:
    """Stat, plan and fetch one object; start over once if it changes on the server meanwhile."""
    for attempt in (1, 2):
        try:
            url = transport.url(obj)
            remote = _retrying(ctx.retry, ctx.stop, url, lambda: transport.stat(obj))
            entry = _fetch(transport, _plan_for(transport, obj, remote, limit, ctx), target, ctx)
            if obj.endswith(".bin"):
                entry.update(_binary_records(target, limit))
            return entry
        except _NotFound as exc:
            raise PipelineError(
                f"{exc}: not found: unknown category {category!r}? The name must match "
                "Google's exactly (case and spaces); check dataset.categories in params.yaml"
            ) from None
        except _Changed as exc:
            _discard(*_staging(target))
            if attempt == 2:
                raise PipelineError(f"{exc}; it keeps changing, rerun later") from None
    raise AssertionError("unreachable")


def _all(calls: list[Callable[[], Any]], stop: _Stop) -> list[Any]:
    """Run `calls` concurrently (daemon threads, so Ctrl-C ends the process); results in order.

    A full disk stops the others (they would only fill it further); any other failure lets
    them finish, so their progress is kept. The error reported is the most telling one.
    """
    results: list[Any] = [None] * len(calls)
    errors: dict[int, BaseException] = {}

    def run(n: int) -> None:
        try:
            results[n] = calls[n]()
        except BaseException as exc:
            errors[n] = exc
            if isinstance(exc, _DiskFullError):
                stop.set()

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in range(len(calls))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        raise
    if errors:
        raise _worst(errors)
    return results


def download_category(
    base_url: str,
    drawings: str,
    category: str,
    dest: Path = RAW_DIR,
    limit: int | None = None,
    *,
    progress: bool | None = None,
    retry: RetryPolicy | None = None,
    slicing: SlicePolicy | None = None,
    on_bytes: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Fetch a category's `.npy` bitmaps and `.ndjson` drawings into `dest`; write its manifest.

    Files land at `dest/numpy_bitmap/<cat>.npy` and `dest/<drawings>/<cat>.ndjson` only once
    verified (size, MD5 and CRC32C where the source gives them); `limit` keeps the first N
    drawings of each. The manifest `dest/manifest/<cat>.json` is deterministic (no times), so
    DVC sees a change only when the data changes. Returns the manifest.

    Thread-safe: several categories may download at once. The two files download
    concurrently, a large one as several byte ranges (`slicing`; `ONE_STREAM` for one request
    a file). `on_bytes(n)` is called, from download threads, with each chunk's size as it
    arrives (for one bytes bar over concurrent downloads); `progress` draws this call's own
    bars. Setting `stop` ends the download at its next chunk with `Interrupted` (the `.part`
    files stay, and the next call resumes them).
    """
    if drawings not in ("raw", "simplified", "binary"):
        raise PipelineError(
            f"dataset.drawings: must be raw, simplified or binary, got {drawings!r}"
        )
    if limit is not None and limit < 1:
        raise PipelineError(f"dataset.limit: must be at least 1, got {limit}")
    retry = retry or RetryPolicy()
    transport = make_transport(base_url, retry)
    show = sys.stderr.isatty() if progress is None else progress
    ctx = _Context(retry, slicing or SlicePolicy(), show, on_bytes, _Stop(stop))
    dest = Path(dest)
    objs = [bitmap_object(category), drawings_object(drawings, category)]
    calls = [
        lambda obj=obj: _download(transport, obj, dest / obj, category, limit, ctx) for obj in objs
    ]
    try:
        entries = _all(calls, ctx.stop)
    except _Stopped:
        raise Interrupted(
            f"download of {category!r} stopped; rerun to resume its partial files"
        ) from None
    except _DiskFullError:
        for obj in objs:  # the other file was stopped: its part is on the full disk too
            _discard(*_staging(dest / obj))
        raise
    finally:
        transport.close()
    empty = [entry["url"] for entry in entries if entry["drawings"] == 0]
    if empty:
        for obj in objs:  # not recorded: the next run fetches the category again
            (dest / obj).unlink(missing_ok=True)
        raise PipelineError(
            f"{empty[0]}: holds no drawings; an empty category cannot be joined: check "
            f"{category!r} in dataset.categories (its files were removed)"
        )
    manifest = {
        "category": category,
        "drawings": drawings,
        "limit": limit,
        "files": dict(zip(objs, entries, strict=True)),
    }
    path = dest / manifest_object(category)
    try:
        write_text(path, json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    except OSError as exc:
        if not _disk_full(exc):
            raise
        raise _DiskFullError(f"disk full while writing {path}: free space and rerun") from None
    return manifest
