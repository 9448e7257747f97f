"""A large file as concurrent byte ranges, written with pwrite into one `.part`, hashed in
order behind them: a cloud endpoint caps each connection, not the link, and MD5 cannot be
split. The sidecar `.part.json` records how far each range got, so a killed run resumes
every range.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipeline.download.context import SlicePolicy, _bar, _Context
from pipeline.download.digest import _Hashes
from pipeline.download.plan import _Plan
from pipeline.download.retry import (
    _Changed,
    _DiskFull,
    _NoRanges,
    _Pace,
    _Stop,
    _Transient,
    _worst,
)
from pipeline.download.stream import WRITEBACK, _discard, _mismatch, _Result, _staging
from pipeline.download.transport import CHUNK, READ1, Transport
from pipeline.errors import PipelineError

CHECKPOINT = 4 << 20  # a sliced download records its progress at least every 4 MiB
AHEAD = 16 << 20  # how far one connection alone may run ahead of the hasher (as one stream)


class _Slices:
    """The byte ranges of one sliced download, who fetches each, what of each is on disk.

    Progress is recorded in the sidecar after the bytes are written (pwrite), so a killed run
    never claims bytes it did not write; the hasher reads the `.part` up to the `frontier`,
    the end of the bytes complete from the start, and the time it waits for them tells
    whether more connections would help.
    """

    def __init__(
        self, fd: int, ranges: list[list[int]], sidecar: Path, key: dict[str, Any], bar: tqdm
    ) -> None:
        self.fd = fd
        self.ranges = ranges  # [start, end, done]
        self.taken = [False] * len(ranges)  # claimed by a connection
        self.size = ranges[-1][1]
        self.sidecar = sidecar
        self.key = key
        self.bar = bar
        self.cond = threading.Condition()
        self.written = 0  # bytes written by this run
        self.pieces = 0  # in that many writes
        self.hashed = 0  # where the hasher is
        self.paced = True  # a connection alone keeps within AHEAD of the hasher
        self._pacing = False  # a connection waits for the hasher
        self._unsaved = 0
        self._saving = threading.Lock()  # one sidecar write at a time
        self._dropped = 0  # hashed bytes dropped from the page cache
        self._waited = 0.0  # seconds the hasher waited for bytes
        self._waiting_since: float | None = None

    def received(self) -> int:
        """Bytes of the file on disk, all ranges together."""
        with self.cond:
            return sum(done for *_, done in self.ranges)

    def position(self, i: int) -> int:
        with self.cond:
            return self.ranges[i][0] + self.ranges[i][2]

    def claim(self) -> int | None:
        """The first range nobody fetches and not complete; None when none is left."""
        with self.cond:
            for i in range(len(self.ranges)):
                start, end, done = self.ranges[i]
                if not self.taken[i] and start + done < end:
                    self.taken[i] = True
                    return i
            return None

    def seeds(self, count: int) -> list[int]:
        """Claim `count` untouched ranges spread evenly over those left, one per new
        connection: each reads on from its own up to the next claimed one, in one request."""
        with self.cond:
            free = [i for i in range(len(self.ranges)) if self._untouched(i)]
            if len(free) > count:
                free = [free[k * len(free) // (count + 1)] for k in range(1, count + 1)]
            for i in free:
                self.taken[i] = True
            return free

    def _untouched(self, i: int) -> bool:
        return i < len(self.ranges) and not self.taken[i] and self.ranges[i][2] == 0

    def claim_next(self, i: int) -> int | None:
        """Range i + 1 for the connection that just finished range i, if nobody touched it."""
        with self.cond:
            if self._untouched(i + 1):
                self.taken[i + 1] = True
                return i + 1
            return None

    def run_end(self, i: int) -> int:
        """The end of range i and of the untouched ranges right after it (one request)."""
        with self.cond:
            while self._untouched(i + 1):
                i += 1
            return self.ranges[i][1]

    def advance(self, i: int, n: int) -> None:
        """Count `n` bytes written to range `i`; the disk work it brings happens outside the
        lock, so the hasher never waits for it."""
        with self.cond:
            start, end, done = self.ranges[i]
            self.ranges[i][2] = done + n
            self.written += n
            self.pieces += 1
            self._unsaved += n
            finished = start + done + n == end
            save = self._unsaved >= CHECKPOINT or finished
            drop = self.hashed - self._dropped >= WRITEBACK
            if drop:
                self._dropped = self.hashed
            self.bar.update(n)
            if self._waiting_since is not None:  # only a waiting hasher needs waking
                self.cond.notify_all()
        if save:
            self.save()
        if finished:
            _start_writeback(self.fd, start, end - start)
        if drop and hasattr(os, "posix_fadvise"):
            # hashed bytes are not read again: start their writeback, drop them from cache
            os.posix_fadvise(self.fd, 0, self._dropped, os.POSIX_FADV_DONTNEED)

    def save(self) -> None:
        """Record the progress (write and rename: a kill leaves the old record or the new)."""
        with self._saving:
            with self.cond:
                record = json.dumps({**self.key, "slices": self.ranges}, sort_keys=True) + "\n"
                self._unsaved = 0
            tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
            tmp.write_text(record)
            os.replace(tmp, self.sidecar)

    def hashed_to(self, pos: int) -> None:
        with self.cond:
            self.hashed = pos
            if self._pacing:
                self.cond.notify_all()

    def pace(self, pos: int, stop: _Stop) -> None:
        """Wait while one connection alone is far ahead of the hasher: like one stream, it then
        reads big chunks instead of racing it for the CPU with small ones."""
        with self.cond:
            while self.paced and pos - self.hashed > AHEAD:
                stop.check()
                self._pacing = True
                self.cond.wait(0.25)  # woken by the hasher; the timeout only rechecks `stop`
                self._pacing = False

    def unpace(self) -> None:
        with self.cond:
            self.paced = False
            self.cond.notify_all()

    def frontier(self) -> int:
        with self.cond:
            for start, end, done in self.ranges:
                if start + done < end:
                    return start + done
            return self.size

    def wait_beyond(self, pos: int, stop: _Stop) -> int:
        """The frontier, once it is past `pos` (the bytes before it may be hashed)."""
        with self.cond:
            while (frontier := self.frontier()) <= pos:
                stop.check()
                self._waiting_since = time.monotonic()
                self.cond.wait(0.25)  # woken by every write; the timeout only rechecks `stop`
                self._waited += time.monotonic() - self._waiting_since
                self._waiting_since = None
            return frontier

    def _waited_now(self) -> float:
        since = self._waiting_since
        return self._waited + (time.monotonic() - since if since is not None else 0.0)

    def link_bound(self, window: float, stop: _Stop) -> bool:
        """Whether, over `window` seconds from the first byte on, the link held the download
        back: the hasher waited for bytes more than half the time, and the socket handed them
        over in small pieces (a busy CPU instead leaves big ones waiting in it)."""
        with self.cond:
            t0 = w0 = 0.0
            while True:
                if stop.is_set() or self.frontier() >= self.size:
                    return False
                now = time.monotonic()
                if self.written and not t0:
                    t0, w0, b0, p0 = now, self._waited_now(), self.written, self.pieces
                if t0 and now >= t0 + window:
                    idle = (self._waited_now() - w0) / (now - t0)
                    piece = (self.written - b0) / max(1, self.pieces - p0)
                    return idle > 0.5 and piece < READ1 / 4
                self.cond.wait(min(0.02, t0 + window - now) if t0 else 0.02)  # not notified


def _recorded(target: Path, key: dict[str, Any], size: int) -> tuple[bool, list[list[int]] | None]:
    """Whether the `.part` beside `target` is of this object version, and its slices if any."""
    part, sidecar, _ = _staging(target)
    try:
        record = json.loads(sidecar.read_text(encoding="utf-8"))
        slices = record.pop("slices", None)
        if record != key or not part.exists():
            return False, None
        if slices is None:
            return True, None
        pos = 0
        for start, end, done in slices:
            if start != pos or end <= start or not 0 <= done <= end - start:
                return False, None
            pos = end
        return (True, slices) if pos == size == part.stat().st_size else (False, None)
    except (OSError, ValueError, TypeError, AttributeError):
        return False, None


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):  # not Linux
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return call


_SYNC_FILE_RANGE = _sync_file_range()


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a finished range to disk, so the final fsync is short; unlike
    posix_fadvise(DONTNEED) this drops no page the hasher has still to read."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, length, 2)  # SYNC_FILE_RANGE_WRITE: start, do not wait


def _pwrite(fd: int, data: bytes | memoryview, pos: int) -> None:
    view = memoryview(data)
    try:
        while view:
            written = os.pwrite(fd, view, pos)
            view, pos = view[written:], pos + written
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise _DiskFull() from None
        raise


def _fetch_run(
    transport: Transport,
    plan: _Plan,
    fd: int,
    table: _Slices,
    i: int,
    ctx: _Context,
    stop: _Stop,
    handoff: _Handoff | None,
) -> None:
    """Fill range `i` from where it stands and read on into the untouched ranges after it, in
    one request as one stream would; a drop resumes alone, from its byte, with backoff."""
    url = transport.url(plan.obj)
    attempt = 0
    while (pos := table.position(i)) < (end := table.ranges[i][1]):
        stop.check()
        last = table.run_end(i)
        pace = _Pace(ctx.retry, table.received(), plan.remote.size)
        try:
            with transport.open(plan.obj, plan.remote, pos, last) as body:
                if not body.partial and (pos, last) != (0, plan.remote.size):
                    raise _NoRanges()
                if body.offset != pos or body.end != last:
                    raise _Changed(f"{url}: asked for bytes {pos}-{last - 1}, got another range")
                for data in body.chunks:
                    stop.check()
                    view = memoryview(data)
                    while view:
                        piece = view[: end - pos]
                        _pwrite(fd, piece, pos)
                        if handoff is not None:  # before the frontier moves past it
                            handoff.offer(pos, data if len(piece) == len(data) else bytes(piece))
                        pos += len(piece)
                        table.advance(i, len(piece))
                        ctx.received(len(piece))
                        view = view[len(piece) :]
                        if handoff is not None:
                            table.pace(pos, stop)
                        if pos == end:
                            nxt = table.claim_next(i) if pos < last else None
                            if nxt is None:
                                return  # the rest is another connection's (or there is none)
                            i, end = nxt, table.ranges[nxt][1]
                    pace.add(len(data))  # after the writes: a stall loses no byte received
            raise _Transient(f"connection closed at byte {pos} of {plan.remote.size}")
        except _Transient as failure:
            exc = pace.failed(failure)
            attempt = 1 if pace.earned() else attempt + 1  # progress earns a fresh set of tries
            if attempt >= ctx.retry.tries:
                raise PipelineError(
                    f"{url}: {exc}; gave up after {attempt} tries in a row; rerun to resume "
                    "(each range's progress is kept)"
                ) from None
            stop.sleep(ctx.retry.delay(attempt, exc.retry_after))


class _Handoff:
    """Chunks the first connection wrote, offered to the hasher so it need not read them back.

    Never blocks the writer: when the hasher is behind, chunks are dropped and it reads them
    from the `.part` instead.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[int, bytes]] = queue.Queue(maxsize=32)

    def offer(self, pos: int, data: bytes) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait((pos, data))

    def take(self, pos: int, frontier: int) -> bytes | None:
        """The chunk that starts at `pos` and ends by `frontier`, if one was offered."""
        while True:
            try:
                start, data = self._queue.get_nowait()
            except queue.Empty:
                return None
            if start == pos and start + len(data) <= frontier:
                return data
            if start > pos:  # the hasher is behind it: it will read these bytes itself
                return None


def _hash_behind(fd: int, table: _Slices, hashes: _Hashes, handoff: _Handoff, stop: _Stop) -> None:
    """Hash the `.part` in order up to the frontier: the first connection's chunks from
    memory, the rest read back (from the page cache)."""
    pos = 0
    while pos < table.size:
        frontier = table.wait_beyond(pos, stop)
        while pos < frontier:
            data = handoff.take(pos, frontier) or os.pread(fd, min(CHUNK, frontier - pos), pos)
            if not data:
                raise PipelineError(f"{table.sidecar}: the .part ends before byte {pos}")
            hashes.update(data)
            pos += len(data)
            table.hashed_to(pos)


def _fetch_sliced(
    transport: Transport,
    plan: _Plan,
    target: Path,
    recorded: list[list[int]] | None,
    ctx: _Context,
) -> _Result:
    """Concurrent ranges, written with pwrite into one `.part`, hashed in order behind them."""
    url = transport.url(plan.obj)
    part, sidecar, _ = _staging(target)
    size = plan.remote.size
    ranges = recorded or [[a, b, 0] for a, b in ctx.slicing.ranges(size)]
    stop = ctx.stop.child()
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
    bar = _bar(ctx, size, target.name, initial=sum(done for *_, done in ranges))
    threads: list[threading.Thread] = []
    try:
        if recorded is None:
            os.ftruncate(fd, size)  # sparse: slices write where they belong
        table = _Slices(fd, ranges, sidecar, plan.key(url), bar)
        table.save()
        hashes = _Hashes(count_lines=target.suffix == ".ndjson")
        errors: dict[int, BaseException] = {}

        def start(n: int, work: Callable[[], None]) -> None:
            def run() -> None:
                try:
                    work()
                except BaseException as exc:  # reported by the caller's thread
                    errors[n] = exc
                    stop.set()

            threads.append(threading.Thread(target=run, daemon=True))
            threads[-1].start()

        def connection(first: int | None, handoff: _Handoff | None) -> Callable[[], None]:
            """One connection: from its first range on, then from the lowest one left."""

            def work() -> None:
                i = first
                while i is not None and not stop.is_set():
                    _fetch_run(transport, plan, fd, table, i, ctx, stop, handoff)
                    i = table.claim()

            return work

        policy = ctx.slicing
        others = max(0, min(policy.connections, sum(a + d < b for a, b, d in ranges)) - 1)
        # first ranges are claimed here, before any request: which connection fetches what
        # does not depend on thread timing
        first = table.claim()
        helpers = table.seeds(others) if others and not policy.probe else []
        handoff = _Handoff()  # the first connection writes where the hasher reads next
        start(0, lambda: _hash_behind(fd, table, hashes, handoff, stop))
        start(1, connection(first, handoff))
        if others and policy.probe and table.link_bound(policy.probe, stop):
            helpers = table.seeds(others)  # the link holds it back: more connections help
        if helpers:
            table.unpace()
        for n, i in enumerate(helpers):
            start(2 + n, connection(i, None))
        for thread in list(threads):
            thread.join()
        if errors:
            with contextlib.suppress(OSError):
                table.save()
            raise _worst(errors)
        md5, crc = hashes.digests()
        error = _mismatch(url, plan.remote, md5, crc)
        if hashes.size != size:
            error = f"{url}: hashed {hashes.size} bytes, expected {size}; removed, rerun"
        if error:
            _discard(*_staging(target))
            raise PipelineError(error)
        os.fsync(fd)
    finally:
        bar.close()
        if not any(thread.is_alive() for thread in threads):
            os.close(fd)  # never under a live writer: its fd number could be reused
    return _Result(size, md5, crc, hashes.newlines)


def _sliced(transport: Transport, plan: _Plan, policy: SlicePolicy) -> bool:
    return (
        transport.sliceable
        and plan.whole
        and plan.max_lines is None
        and plan.remote.accepts_ranges
        and policy.connections > 1
        and plan.remote.size >= policy.threshold
    )
