"""When a download retries, gives up or stops: the policy, the kinds of failure, the stop.

Transports and fetches raise these kinds; the fetches retry `_Transient` ones with backoff,
a full disk (`_disk_full`) stops the whole category, and `_worst` picks the one to report
when several threads failed. `_Stop` is how one failed part, or the caller, ends the others.
"""

from __future__ import annotations

import errno
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import PipelineError


def _env_rate(name: str, default: float) -> float:
    """A positive number from the environment (how tests shorten the stall detector)."""
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise PipelineError(f"{name}={text!r}: must be a positive number; unset it or fix it")
    return value


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up: transient failures get exponential backoff.

    A request that receives less than `min_rate` bytes a second over `stall_seconds` (from
    its start, window after window) is a stall: retried like a drop, but it never earns a
    fresh set of tries, so a trickling server is given up after `tries` windows and the
    backoffs (2.5 minutes at most by default) while a steady 1 MB/s link never is. The
    defaults come from QUICKDRAW_MIN_RATE (bytes/s) and QUICKDRAW_STALL_SECONDS.
    """

    tries: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    min_rate: float = field(default_factory=lambda: _env_rate("QUICKDRAW_MIN_RATE", 1024.0))
    stall_seconds: float = field(default_factory=lambda: _env_rate("QUICKDRAW_STALL_SECONDS", 20.0))

    @property
    def socket_timeout(self) -> float:
        """A silent socket is a stall once a window has passed: no need to wait longer."""
        return min(self.read_timeout, self.stall_seconds)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Backoff before try `attempt + 1` (jittered so parallel runs do not retry in step)."""
        wait = self.base_delay * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay)


class Interrupted(PipelineError):
    """The download was stopped (the caller's `stop` event, or Ctrl-C); the `.part` stays."""


class _Transient(Exception):
    """A failure worth retrying: timeouts, resets, 429, 5xx, early end of body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Stall(_Transient):
    """Less than the minimum rate over a whole window."""


class _Pace:
    """The bytes of one request, window by window, against the policy's minimum rate.

    `add` raises `_Stall` at the end of the first window below the rate; `failed` turns a
    failure after a whole window of silence (the socket timeout) into a stall; `earned` says
    whether the request brought enough to reset the tries: a window's worth at the minimum
    rate, and no stall (else 1,000 bytes then silence, on every request, would go on forever).
    """

    def __init__(self, retry: RetryPolicy, have: int, size: int) -> None:
        self.retry = retry
        self.have, self.size = have, size  # bytes of the file on disk before, and its size
        self.total = self.bytes = 0
        self.start = self.last = time.monotonic()
        self.stalled = False

    def add(self, n: int) -> None:
        self.total += n
        self.bytes += n
        self.last = now = time.monotonic()
        if now - self.start >= self.retry.stall_seconds:
            if self.bytes / (now - self.start) < self.retry.min_rate:
                raise self._stall(self.bytes, now - self.start)
            self.start, self.bytes = now, 0

    def _stall(self, got: int, seconds: float) -> _Stall:
        self.stalled = True
        return _Stall(
            f"stalled: {self.have + self.total:,} of {self.size:,} bytes received, "
            f"{got / seconds:,.0f} B/s over the last {seconds:.3g} s (below the minimum "
            f"{self.retry.min_rate:,.0f} B/s, QUICKDRAW_MIN_RATE)"
        )

    def failed(self, exc: _Transient) -> _Transient:
        silence = time.monotonic() - self.last
        if isinstance(exc, _Stall) or silence < self.retry.stall_seconds * 0.99:
            return exc
        return self._stall(0, silence)

    def earned(self) -> bool:
        return not self.stalled and self.total >= self.retry.min_rate * self.retry.stall_seconds


class _Changed(Exception):
    """The object changed under us (ETag/generation/size): the .part is worthless."""


class _NotFound(Exception):
    """The object does not exist at the source (the message is the URL or path)."""


class _NoRanges(Exception):
    """A server answered a byte-range request with the whole object: slicing cannot work."""


class _Stopped(Exception):
    """Another part of the same download failed, or the caller asked to stop."""


class _DiskFull(Exception):
    pass


class _DiskFullError(PipelineError):
    """Disk full: the category's partial files were removed (they are what filled it)."""


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, _DiskFull) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    )


def _worst(errors: dict[int, BaseException]) -> BaseException:
    """The error to report when several threads failed: the most telling kind (a stop is only
    a consequence), then the first file, so the message does not depend on timing."""

    def rank(item: tuple[int, BaseException]) -> tuple[int, int]:
        order = (_DiskFull, _NoRanges, _Changed, _NotFound, PipelineError, _Stopped)
        n, exc = item
        if _disk_full(exc):
            return 0, n
        kind = next((k for k, kind in enumerate(order) if isinstance(exc, kind)), len(order) - 1)
        return kind, n

    return min(errors.items(), key=rank)[1]


class _Stop:
    """Set when a download must end early: the caller's event, Ctrl-C, or a failed sibling.

    A child is set by its parent too: a failed file stops its category, a failed slice its file.
    """

    def __init__(self, outer: threading.Event | None = None, parent: _Stop | None = None) -> None:
        self.event = threading.Event()
        self.outer = outer
        self.parent = parent

    def is_set(self) -> bool:
        return (
            self.event.is_set()
            or (self.outer is not None and self.outer.is_set())
            or (self.parent is not None and self.parent.is_set())
        )

    def set(self) -> None:
        self.event.set()

    def check(self) -> None:
        if self.is_set():
            raise _Stopped()

    def child(self) -> _Stop:
        return _Stop(parent=self)

    def sleep(self, seconds: float) -> None:
        """A backoff that ends early when the download is stopped."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0 and not self.is_set():
            self.event.wait(min(left, 0.1))
        self.check()


def _retrying(retry: RetryPolicy, stop: _Stop, url: str, call: Any) -> Any:
    """Run `call()` again on transient failures, with backoff; give up after `retry.tries`."""
    for attempt in range(1, retry.tries + 1):
        stop.check()
        try:
            return call()
        except _Transient as exc:
            if attempt == retry.tries:
                raise PipelineError(f"{url}: {exc}; gave up after {attempt} tries") from None
            stop.sleep(retry.delay(attempt, exc.retry_after))
    raise AssertionError("unreachable")
