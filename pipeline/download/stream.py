"""One request a file (resumed after drops) into `<target>.part`: `limit`, small files, local
sources, and servers that ignore Range.
"""

from __future__ import annotations

import errno
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from pipeline.download.context import _bar, _Context
from pipeline.download.digest import _Digest
from pipeline.download.plan import _Plan, _take
from pipeline.download.retry import _Changed, _DiskFull, _Pace, _Transient
from pipeline.download.transport import CHUNK, Remote, Transport
from pipeline.errors import PipelineError
from pipeline.store.atomic import write_text

WRITEBACK = 32 << 20  # start the disk writeback every so often, so the final fsync is short


def _staging(target: Path) -> tuple[Path, Path, Path]:
    """`<target>.part`, its sidecar `<target>.part.json`, and the sidecar's temporary file."""
    part = target.with_name(target.name + ".part")
    sidecar = target.with_name(target.name + ".part.json")
    return part, sidecar, sidecar.with_name(sidecar.name + ".tmp")


def _discard(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _write(f: io.RawIOBase, data: bytes, digest: _Digest) -> None:
    try:
        view = memoryview(data)
        while view:
            view = view[f.write(view) :]
        end = digest.size + len(data)
        if end // WRITEBACK != digest.size // WRITEBACK and hasattr(os, "posix_fadvise"):
            # on Linux DONTNEED starts writing the dirty pages back without waiting for it:
            # the disk works while we download, instead of all at once in the final fsync
            os.posix_fadvise(f.fileno(), 0, end, os.POSIX_FADV_DONTNEED)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _DiskFull() from None
        raise
    digest.update(data)


def _stream(
    transport: Transport,
    plan: _Plan,
    f: io.RawIOBase,
    digest: _Digest,
    bar: tqdm,
    ctx: _Context,
) -> None:
    """Fill `f` with prefix + wanted remote bytes, resuming after drops; bounded retries."""
    url = transport.url(plan.obj)
    have = f.seek(0, io.SEEK_END)
    if have < len(plan.prefix) or have > len(plan.prefix) + plan.length:
        f.truncate(0)
        have = 0
    f.seek(0)
    while data := f.read(CHUNK):  # hash what an earlier run left, so verification is end to end
        digest.update(data)
    if have == 0:
        _write(f, plan.prefix, digest)
    bar.update(f.tell())
    pos = f.tell() - len(plan.prefix)  # remote bytes already on disk
    lines = digest.lines() if plan.max_lines is not None else 0
    done = pos >= plan.length or (plan.max_lines is not None and lines >= plan.max_lines)
    attempt = 0
    while not done:
        ctx.stop.check()
        pace = _Pace(ctx.retry, len(plan.prefix) + pos, len(plan.prefix) + plan.length)
        try:
            end = None if plan.max_lines is not None else plan.start + plan.length
            with transport.open(plan.obj, plan.remote, plan.start + pos, end) as body:
                skip = 0
                if body.offset != plan.start + pos:
                    if body.offset != 0:
                        raise _Changed(f"{url}: served from byte {body.offset}")
                    # the server ignored Range and sends the whole object: start over cleanly
                    f.truncate(0)
                    f.seek(0)
                    digest.reset()
                    _write(f, plan.prefix, digest)
                    bar.reset()
                    bar.update(len(plan.prefix))
                    pos = lines = 0
                    skip = plan.start
                for data in body.chunks:
                    ctx.stop.check()
                    got = len(data)
                    ctx.received(got)
                    if skip:
                        data, skip = data[skip:], max(0, skip - len(data))
                    data, done = _take(data[: plan.length - pos], lines, plan.max_lines)
                    _write(f, data, digest)
                    pos += len(data)
                    if plan.max_lines is not None:
                        lines += data.count(b"\n")
                    bar.update(len(data))
                    pace.add(got)  # after the write: a stall loses no byte received
                    if done or pos >= plan.length:
                        done = True
                        break
            if not done:
                raise _Transient(
                    f"connection closed at byte {plan.start + pos} of {plan.remote.size}"
                )
        except _Transient as failure:
            exc = pace.failed(failure)
            attempt = 1 if pace.earned() else attempt + 1  # progress earns a fresh set of tries
            if attempt >= ctx.retry.tries:
                raise PipelineError(
                    f"{url}: {exc}; gave up after {attempt} tries in a row; rerun to resume "
                    f"from byte {plan.start + pos}"
                ) from None
            ctx.stop.sleep(ctx.retry.delay(attempt, exc.retry_after))


def _mismatch(url: str, remote: Remote, md5: str, crc: str | None) -> str | None:
    """Why the whole-file hashes differ from the source's, or None when they agree."""
    for name, expected, got in (("md5", remote.md5, md5), ("crc32c", remote.crc32c, crc)):
        if expected is not None and got is not None and expected != got:
            return (
                f"{url}: {name} mismatch: expected {expected}, got {got}; the download was "
                "corrupted and removed, rerun to fetch it again"
            )
    return None


@dataclass(frozen=True)
class _Result:
    """What was written to the `.part`, verified."""

    size: int
    md5: str
    crc32c: str | None
    lines: int


def _fetch_stream(
    transport: Transport, plan: _Plan, target: Path, resume: bool, ctx: _Context
) -> _Result:
    """One request (and resumes) into `<target>.part`; the path of `limit` and small files."""
    url = transport.url(plan.obj)
    part, sidecar, _ = _staging(target)
    if not resume:
        write_text(sidecar, json.dumps(plan.key(url), sort_keys=True) + "\n")
    digest = _Digest(count_lines=target.suffix == ".ndjson")
    bar = _bar(ctx, len(plan.prefix) + plan.length, target.name)
    try:
        with open(part, "r+b" if resume else "w+b", buffering=0) as f:
            _stream(transport, plan, f, digest, bar, ctx)
            got = digest.size - len(plan.prefix)
            lines = digest.lines()
            if plan.whole and got == plan.remote.size:
                error = _mismatch(url, plan.remote, *digest.snapshot())
            elif got == plan.length or (plan.max_lines is not None and lines >= plan.max_lines):
                error = None
            else:
                error = f"{url}: got {got} bytes, expected {plan.length}; removed, rerun"
            if error:
                f.close()
                _discard(part, sidecar)
                raise PipelineError(error)
            if plan.max_lines is not None and digest.size and digest.last != b"\n":
                _write(f, b"\n", digest)  # complete a last line the source left open
                lines += 1
            md5, crc = digest.snapshot()
            os.fsync(f.fileno())
    finally:
        digest.close()
        bar.close()
    return _Result(digest.size, md5, crc, lines)
