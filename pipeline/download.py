"""Download stage: fetch one category's bitmaps and drawings, verified, resumable and atomic.

Every source (Google's bucket over HTTP(S), a mirror folder, a `file://` URL, the bundled demo
data) goes through one transport interface, `stat` + `open(offset)`, so streaming,
verification, resume, `limit` and the atomic rename are one code path, tested once. A large
file from an HTTP source that honours Range is fetched as several concurrent byte ranges
(slices) written into the one `.part`, while one hasher thread reads it back in order behind
them: a cloud endpoint caps each connection, not the link, and MD5 cannot be split.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import itertools
import json
import os
import queue
import random
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import numpy as np
import requests
import urllib3
from tqdm import tqdm

from pipeline.atomic import fsync_dir, write_text
from pipeline.errors import PipelineError
from pipeline.layout import GOOGLE_BASE_URL, RAW_DIR, bitmap_object, drawings_object

try:  # optional: CRC32C is checked only when the C implementation is there (the pure one is slow)
    import google_crc32c

    _HAVE_CRC32C = google_crc32c.implementation == "c"
except ImportError:  # pragma: no cover - depends on the environment
    _HAVE_CRC32C = False

__all__ = ["ONE_STREAM", "Interrupted", "RetryPolicy", "SlicePolicy", "download_category"]

CHUNK = 4 << 20  # large file reads keep the per-chunk Python overhead far below the hashing cost
READ1 = 1 << 20  # socket reads: urllib3's read1 slows down past ~1 MiB (measured: 3 vs 1 GB/s)
WRITEBACK = 32 << 20  # start the disk writeback every so often, so the final fsync is short
CHECKPOINT = 4 << 20  # a sliced download records its progress at least every 4 MiB
NPY_HEAD = 4096  # first request for an .npy header; a longer header is fetched in a second one
DEMO_HINT = (
    "use the bundled demo data (dataset.base_url: data/demo) or a mirror "
    "(a local folder or file:// URL in Google's layout)"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up: transient failures get exponential backoff."""

    tries: int = 6
    base_delay: float = 1.0
    max_delay: float = 30.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Backoff before try `attempt + 1` (jittered so parallel runs do not retry in step)."""
        wait = self.base_delay * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay)


@dataclass(frozen=True)
class SlicePolicy:
    """When a whole file is fetched as concurrent byte ranges, and how many.

    Only HTTP sources that announce `Accept-Ranges: bytes` are sliced; a file below
    `threshold`, a `limit` download and a local source take one request. The file is cut into
    ranges of at most `max_slice` bytes (at least `connections` of them, none under
    `min_slice`). One connection starts alone, reading on from range to range as one stream
    would, with the hasher right behind it; after `probe` seconds, if the hasher waited for
    its bytes more than half that time (the link, not MD5, is the bottleneck), the other
    `connections - 1` fetch ranges from the end of the file backwards until they meet it.
    On a fast link that keeps one stream's speed: ranges fetched all at once from the start
    left the hasher waiting for the first while the others arrived, 15% slower
    (benchmarks/bench_download.py). `probe=0` opens every connection at once.
    """

    connections: int = 8
    threshold: int = 16 << 20
    min_slice: int = 4 << 20
    max_slice: int = 8 << 20
    probe: float = 0.1

    def __post_init__(self) -> None:
        bad = self.connections < 1 or self.min_slice < 1 or self.max_slice < self.min_slice
        if bad or self.probe < 0:
            raise ValueError(f"invalid {self}")

    def ranges(self, size: int) -> list[tuple[int, int]]:
        """[start, end) of each slice of a `size`-byte file, in file order, 1 MiB aligned."""
        count = max(self.connections, -(-size // self.max_slice))
        count = max(1, min(count, size // self.min_slice))
        align = 1 << 20 if size >= count << 20 else 1
        bounds = [0, *(size * i // count // align * align for i in range(1, count)), size]
        return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


ONE_STREAM = SlicePolicy(connections=1, threshold=1 << 62)  # today's path: one request a file


class Interrupted(PipelineError):
    """The download was stopped (the caller's `stop` event, or Ctrl-C); the `.part` stays."""


@dataclass(frozen=True)
class Remote:
    """What a source says about an object before we fetch it."""

    size: int
    etag: str | None = None
    generation: str | None = None
    md5: str | None = None  # hex
    crc32c: str | None = None  # base64 of the big-endian value, as GCS writes it
    validator: str = ""  # changes whenever the object changes: ties a .part to its source
    accepts_ranges: bool = False  # the source announced `Accept-Ranges: bytes`


class _Transient(Exception):
    """A failure worth retrying: timeouts, resets, 429, 5xx, early end of body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Changed(Exception):
    """The object changed under us (ETag/generation/size): the .part is worthless."""


class _NotFound(Exception):
    """The object does not exist at the source (the message is the URL or path)."""


class _NoRanges(Exception):
    """A server answered a byte-range request with the whole object: slicing cannot work."""


class _Stopped(Exception):
    """Another part of the same download failed, or the caller asked to stop."""


@dataclass
class _Body:
    offset: int  # first byte actually served: 0 when a server ignored our Range
    end: int  # one past the last byte served
    partial: bool  # the server honoured a Range (206), so exactly [offset, end) follows
    chunks: Iterator[bytes]


class Transport(Protocol):
    """A source in Google's layout: everything the shared download logic needs from it."""

    sliceable: bool  # concurrent ranges pay off (a network source), given Range support

    def url(self, obj: str) -> str: ...

    def stat(self, obj: str) -> Remote: ...

    def open(
        self, obj: str, remote: Remote, offset: int, end: int | None
    ) -> contextlib.AbstractContextManager[_Body]: ...

    def close(self) -> None: ...


def _quote_object(obj: str) -> str:
    return "/".join(quote(part, safe="") for part in obj.split("/"))


def _parse_goog_hash(value: str) -> dict[str, str]:
    """`x-goog-hash: crc32c=AAAAAA==,md5=base64...` (also sent as two headers, joined by ',')."""
    found: dict[str, str] = {}
    for item in value.split(","):
        name, sep, digest = item.strip().partition("=")
        if sep and name in ("crc32c", "md5"):
            found[name] = digest
    return found


def _root_error(exc: BaseException) -> BaseException:
    """The innermost cause of a requests/urllib3 error (they wrap several layers deep)."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException) and exc.args:
            inner = exc.args[0] if isinstance(exc.args[0], BaseException) else None
        inner = inner or exc.__cause__ or exc.__context__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        for inner in (getattr(item, "reason", None), item.__cause__, item.__context__, *item.args):
            if isinstance(inner, BaseException):
                stack.append(inner)


class HttpTransport:
    """Google's bucket (or any static HTTP server) with HEAD, Range, ETag and x-goog-* headers.

    Thread-safe: every thread gets its own session (one kept-alive connection per slice worker).
    """

    sliceable = True

    def __init__(self, base_url: str, retry: RetryPolicy) -> None:
        self.base = base_url.rstrip("/")
        self.host = urlsplit(self.base).hostname or self.base
        self.timeout = (retry.connect_timeout, retry.read_timeout)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            # identity: the bytes on disk must be the stored bytes the hashes describe
            session.headers["Accept-Encoding"] = "identity"
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def url(self, obj: str) -> str:
        return f"{self.base}/{_quote_object(obj)}"

    def _request(self, method: str, url: str, headers: dict[str, str]) -> requests.Response:
        try:
            return self.session.request(
                method, url, headers=headers, stream=True, timeout=self.timeout
            )
        except requests.RequestException as exc:
            for cause in _chain(exc):
                if isinstance(cause, socket.gaierror | urllib3.exceptions.NameResolutionError):
                    raise PipelineError(
                        f"cannot resolve host {self.host!r} ({url}): no network or a wrong "
                        f"dataset.base_url; {DEMO_HINT}"
                    ) from None
                if isinstance(cause, ConnectionRefusedError):
                    raise PipelineError(
                        f"cannot connect to {self.host!r} ({url}): connection refused; {DEMO_HINT}"
                    ) from None
            raise _Transient(f"{type(_root_error(exc)).__name__}: {_root_error(exc)}") from None

    def _check_status(self, resp: requests.Response, url: str) -> None:
        code = resp.status_code
        if code in (404, 403, 410):  # a public bucket answers 403 for a missing object
            raise _NotFound(url)
        if code == 412:
            raise _Changed(f"{url}: changed on the server (412 Precondition Failed)")
        if code == 429 or code >= 500:
            after = resp.headers.get("Retry-After", "")
            raise _Transient(f"HTTP {code}", float(after) if after.isdigit() else None)
        if code not in (200, 206):
            raise PipelineError(f"{url}: unexpected HTTP {code} {resp.reason}")

    def stat(self, obj: str) -> Remote:
        url = self.url(obj)
        with contextlib.closing(self._request("HEAD", url, {})) as resp:
            self._check_status(resp, url)
            headers = resp.headers
        length = headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise PipelineError(f"{url}: the server sent no Content-Length; cannot verify size")
        hashes = _parse_goog_hash(headers.get("x-goog-hash", ""))
        md5 = base64.b64decode(hashes["md5"]).hex() if "md5" in hashes else None
        etag, generation = headers.get("ETag"), headers.get("x-goog-generation")
        validator = "|".join(
            str(v) for v in (length, generation, etag, headers.get("Last-Modified")) if v
        )
        ranges = headers.get("Accept-Ranges", "").strip().lower() == "bytes"
        return Remote(int(length), etag, generation, md5, hashes.get("crc32c"), validator, ranges)

    @contextlib.contextmanager
    def open(self, obj: str, remote: Remote, offset: int, end: int | None) -> Iterator[_Body]:
        url = self.url(obj)
        headers: dict[str, str] = {}
        if offset > 0 or (end is not None and end < remote.size):
            last = "" if end is None or end >= remote.size else str(end - 1)
            headers["Range"] = f"bytes={offset}-{last}"
            if remote.etag:
                headers["If-Match"] = remote.etag
        resp = self._request("GET", url, headers)
        try:
            self._check_status(resp, url)
            start, stop = 0, remote.size
            if resp.status_code == 206:
                match = re.fullmatch(
                    r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", "")
                )
                if not match or match[3] != str(remote.size):
                    raise _Changed(
                        f"{url}: unexpected Content-Range {resp.headers.get('Content-Range')!r}"
                    )
                start, stop = int(match[1]), int(match[2]) + 1
            for name, known in (("x-goog-generation", remote.generation), ("ETag", remote.etag)):
                got = resp.headers.get(name)
                if known and got and got != known:
                    raise _Changed(f"{url}: {name} changed from {known} to {got}")
            yield _Body(start, stop, resp.status_code == 206, self._chunks(resp))
        finally:
            resp.close()

    @staticmethod
    def _chunks(resp: requests.Response) -> Iterator[bytes]:
        raw = resp.raw
        while True:
            try:
                # read1: hand over what has arrived, so a stall or a kill loses nothing received
                data = raw.read1(READ1, decode_content=False)
            except (urllib3.exceptions.HTTPError, OSError, requests.RequestException) as exc:
                raise _Transient(f"{type(exc).__name__}: {exc}") from None
            if not data:
                return
            yield data


class LocalTransport:
    """A folder in Google's layout (a mirror, a `file://` URL, or the bundled demo data)."""

    sliceable = False  # one sequential read already goes at the disk's speed

    def __init__(self, root: Path, display: str) -> None:
        self.root = root
        self.display = display.rstrip("/")
        self.is_url = display.startswith("file://")

    def url(self, obj: str) -> str:
        return f"{self.display}/{_quote_object(obj) if self.is_url else obj}"

    def _stat(self, obj: str) -> os.stat_result:
        try:
            return os.stat(self.root / obj)
        except FileNotFoundError:
            raise _NotFound(str(self.root / obj)) from None

    def stat(self, obj: str) -> Remote:
        st = self._stat(obj)
        return Remote(st.st_size, validator=f"{st.st_size}|{st.st_mtime_ns}|{st.st_ino}")

    @contextlib.contextmanager
    def open(self, obj: str, remote: Remote, offset: int, end: int | None) -> Iterator[_Body]:
        if self.stat(obj).validator != remote.validator:
            raise _Changed(f"{self.root / obj}: changed since it was first read")
        stop = remote.size if end is None else min(end, remote.size)
        with open(self.root / obj, "rb", buffering=0) as f:
            f.seek(offset)
            yield _Body(offset, stop, True, self._chunks(f, offset, stop))

    def close(self) -> None:
        pass

    @staticmethod
    def _chunks(f: io.RawIOBase, pos: int, end: int) -> Iterator[bytes]:
        while pos < end and (data := f.read(min(CHUNK, end - pos))):
            pos += len(data)
            yield data


GCS_ENDPOINT = "https://storage.googleapis.com/"


def make_transport(base_url: str, retry: RetryPolicy | None = None) -> Transport:
    """Pick the transport for a `dataset.base_url`: http(s)://, gs://, file:// or a folder."""
    retry = retry or RetryPolicy()
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", base_url)
    if scheme and scheme[1].lower() in ("http", "https"):
        return HttpTransport(base_url, retry)
    if scheme and scheme[1].lower() == "gs":
        # A public bucket answers on its HTTPS endpoint with the same headers and hashes.
        return HttpTransport(GCS_ENDPOINT + base_url[len("gs://") :], retry)
    if scheme and scheme[1].lower() == "file":
        root = Path(url2pathname(unquote(urlsplit(base_url).path)))
    elif scheme:
        raise PipelineError(
            f"dataset.base_url: unsupported scheme {scheme[1]!r} in {base_url!r}; use "
            "http(s)://, gs://, file:// or a local folder"
        )
    else:
        root = Path(base_url)
    if not root.is_dir():
        raise PipelineError(
            f"dataset.base_url: {root}: no such folder; {DEMO_HINT}, or Google's bucket "
            f"({GOOGLE_BASE_URL})"
        )
    return LocalTransport(root, base_url)


class _Hashes:
    """MD5, CRC32C and newline count of a byte stream fed in order."""

    def __init__(self, count_lines: bool) -> None:
        self.count_lines = count_lines
        self.md5 = hashlib.md5()
        self.crc = 0
        self.newlines = 0
        self.size = 0
        self.last = b""

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        if _HAVE_CRC32C:
            self.crc = google_crc32c.extend(self.crc, data)
        if self.count_lines:
            self.newlines += data.count(b"\n")
        self.size += len(data)
        self.last = data[-1:]

    def digests(self) -> tuple[str, str | None]:
        """MD5 (hex) and CRC32C (GCS base64) of everything so far."""
        crc = base64.b64encode(struct.pack(">I", self.crc)).decode() if _HAVE_CRC32C else None
        return self.md5.hexdigest(), crc


class _Digest:
    """`_Hashes` of a stream, computed in a worker thread.

    hashlib releases the GIL, so hashing overlaps the socket reads and disk writes of the
    caller: MD5 (about 600 MB/s) would otherwise be the bottleneck of a local download.
    """

    def __init__(self, count_lines: bool) -> None:
        self.count_lines = count_lines
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self.reset()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        """Forget everything hashed so far (a server ignored Range: we start from zero)."""
        self._queue.join()
        self._hashes = _Hashes(self.count_lines)
        self.size = 0
        self.last = b""

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._hashes.update(data)
            self._queue.task_done()
        self._queue.task_done()

    def update(self, data: bytes) -> None:
        if data:
            self.size += len(data)
            self.last = data[-1:]
            self._queue.put(data)

    def snapshot(self) -> tuple[str, str | None]:
        """MD5 (hex) and CRC32C (GCS base64) of everything so far; updating may go on after."""
        self._queue.join()
        return self._hashes.digests()

    def lines(self) -> int:
        self._queue.join()
        return self._hashes.newlines

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


@dataclass(frozen=True)
class _Plan:
    """Which bytes of the remote object end up in the local file."""

    obj: str
    remote: Remote
    start: int  # first remote byte
    length: int  # remote bytes wanted (from start)
    prefix: bytes = b""  # bytes of our own written first (the rewritten .npy header)
    max_lines: int | None = None  # stop after this many newlines (ndjson limit)

    @property
    def whole(self) -> bool:
        """True when the file is the whole remote object, so the remote hashes apply."""
        return self.start == 0 and not self.prefix and self.length == self.remote.size

    def key(self, url: str) -> dict[str, Any]:
        return {
            "url": url,
            "validator": self.remote.validator,
            "start": self.start,
            "length": self.length,
            "prefix_md5": hashlib.md5(self.prefix).hexdigest(),
            "max_lines": self.max_lines,
        }


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


@dataclass
class _Context:
    """What every part of one `download_category` call shares (it is thread-safe)."""

    retry: RetryPolicy
    slicing: SlicePolicy
    progress: bool
    on_bytes: Callable[[int], None] | None
    stop: _Stop

    def received(self, n: int) -> None:
        if self.on_bytes is not None and n:
            self.on_bytes(n)


def _retrying(ctx: _Context, url: str, call: Any) -> Any:
    """Run `call()` again on transient failures, with backoff; give up after `retry.tries`."""
    for attempt in range(1, ctx.retry.tries + 1):
        ctx.stop.check()
        try:
            return call()
        except _Transient as exc:
            if attempt == ctx.retry.tries:
                raise PipelineError(f"{url}: {exc}; gave up after {attempt} tries") from None
            ctx.stop.sleep(ctx.retry.delay(attempt, exc.retry_after))
    raise AssertionError("unreachable")


def _read_head(transport: Transport, remote: Remote, obj: str, n: int, ctx: _Context) -> bytes:
    """The first `n` bytes of an object (fewer if it is shorter)."""
    n = min(n, remote.size)

    def call() -> bytes:
        buf = bytearray()
        with transport.open(obj, remote, 0, n) as body:
            if body.offset != 0:
                raise _Changed(f"{transport.url(obj)}: served from byte {body.offset}, not 0")
            for data in body.chunks:
                buf += data
                if len(buf) >= n:
                    return bytes(buf[:n])
        if len(buf) < n:
            raise _Transient(f"connection closed after {len(buf)} of {n} header bytes")
        return bytes(buf)

    return _retrying(ctx, transport.url(obj), call)


def _npy_plan(transport: Transport, obj: str, remote: Remote, limit: int, ctx: _Context) -> _Plan:
    """Header + first `limit` rows of a remote .npy, with the header's shape rewritten."""
    url = transport.url(obj)
    head = _read_head(transport, remote, obj, NPY_HEAD, ctx)
    fmt = np.lib.format
    try:
        if len(head) < 10 or head[:6] != fmt.MAGIC_PREFIX:
            raise ValueError("no .npy magic")
        version = (head[6], head[7])
        size_len = 2 if version[0] == 1 else 4
        header_len = int.from_bytes(head[8 : 8 + size_len], "little")
        data_offset = 8 + size_len + header_len
        if data_offset > len(head):
            head = _read_head(transport, remote, obj, data_offset, ctx)
        fp = io.BytesIO(head)
        fmt.read_magic(fp)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran_order, dtype = read_header(fp)
    except ValueError as exc:
        raise PipelineError(f"{url}: not a valid .npy file ({exc})") from None
    if fortran_order or not shape:
        raise PipelineError(f"{url}: a Fortran-order or 0-d array cannot be cut into rows")
    row_bytes = dtype.itemsize * int(np.prod(shape[1:], dtype=np.int64))
    if data_offset + shape[0] * row_bytes != remote.size:
        raise PipelineError(
            f"{url}: header says {shape[0]} rows of {row_bytes} bytes after {data_offset} "
            f"header bytes, but the file has {remote.size} bytes"
        )
    rows = min(limit, shape[0])
    out = io.BytesIO()
    header = {
        "descr": fmt.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (rows, *shape[1:]),
    }
    if version == (1, 0):
        fmt.write_array_header_1_0(out, header)
    else:
        fmt.write_array_header_2_0(out, header)
    return _Plan(obj, remote, data_offset, rows * row_bytes, prefix=out.getvalue())


class _DiskFull(Exception):
    pass


class _DiskFullError(PipelineError):
    """Disk full: the category's partial files were removed (they are what filled it)."""


def _staging(target: Path) -> tuple[Path, Path, Path]:
    """`<target>.part`, its sidecar `<target>.part.json`, and the sidecar's temporary file."""
    part = target.with_name(target.name + ".part")
    sidecar = target.with_name(target.name + ".part.json")
    return part, sidecar, sidecar.with_name(sidecar.name + ".tmp")


def _discard(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, _DiskFull) or (
        isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    )


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


def _take(data: bytes, lines: int, max_lines: int | None) -> tuple[bytes, bool]:
    """Cut `data` after the newline that completes `max_lines` lines; True when that is reached."""
    if max_lines is None:
        return data, False
    wanted = max_lines - lines
    if data.count(b"\n") < wanted:
        return data, False
    pos = -1
    for _ in range(wanted):
        pos = data.index(b"\n", pos + 1)
    return data[: pos + 1], True


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
        before = pos
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
                    before = pos = lines = 0
                    skip = plan.start
                for data in body.chunks:
                    ctx.stop.check()
                    ctx.received(len(data))
                    if skip:
                        data, skip = data[skip:], max(0, skip - len(data))
                    data, done = _take(data[: plan.length - pos], lines, plan.max_lines)
                    _write(f, data, digest)
                    pos += len(data)
                    if plan.max_lines is not None:
                        lines += data.count(b"\n")
                    bar.update(len(data))
                    if done or pos >= plan.length:
                        done = True
                        break
            if not done:
                raise _Transient(
                    f"connection closed at byte {plan.start + pos} of {plan.remote.size}"
                )
        except _Transient as exc:
            attempt = 1 if pos > before else attempt + 1  # progress earns a fresh set of tries
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


def _bar(ctx: _Context, total: int, name: str, initial: int = 0) -> tqdm:
    return tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
        desc=name, disable=not ctx.progress, leave=False,
    )  # fmt: skip


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
        self._unsaved = 0
        self._waited = 0.0  # seconds the hasher waited for bytes
        self._waiting_since: float | None = None

    def position(self, i: int) -> int:
        with self.cond:
            return self.ranges[i][0] + self.ranges[i][2]

    def claim(self, lowest: bool) -> int | None:
        """The first (or last) range nobody fetches and not complete; None when none is left."""
        with self.cond:
            order = range(len(self.ranges)) if lowest else range(len(self.ranges) - 1, -1, -1)
            for i in order:
                start, end, done = self.ranges[i]
                if not self.taken[i] and start + done < end:
                    self.taken[i] = True
                    return i
            return None

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
        with self.cond:
            start, end, done = self.ranges[i]
            self.ranges[i][2] = done + n
            self.written += n
            self._unsaved += n
            if self._unsaved >= CHECKPOINT or start + done + n == end:
                self.save()
            if start + done + n == end and hasattr(os, "posix_fadvise"):
                # the range's pages are dirty: this starts their writeback (dropping none),
                # so the final fsync is short, and the hasher still reads them from memory
                os.posix_fadvise(self.fd, start, end - start, os.POSIX_FADV_DONTNEED)
            self.bar.update(n)
            self.cond.notify_all()

    def save(self) -> None:
        """Record the progress (write and rename: a kill leaves the old record or the new)."""
        with self.cond:
            tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
            tmp.write_text(json.dumps({**self.key, "slices": self.ranges}, sort_keys=True) + "\n")
            os.replace(tmp, self.sidecar)
            self._unsaved = 0

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

    def hasher_idle(self, window: float, stop: _Stop) -> float | None:
        """The share of `window` seconds, from the first byte on, the hasher waited for bytes;
        None when the download ends or stops first."""
        with self.cond:
            t0 = w0 = 0.0
            while True:
                if stop.is_set() or self.frontier() >= self.size:
                    return None
                now = time.monotonic()
                if self.written and not t0:
                    t0, w0 = now, self._waited_now()
                if t0 and now >= t0 + window:
                    return (self._waited_now() - w0) / (now - t0)
                self.cond.wait(t0 + window - now if t0 else 0.25)


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
    follow: bool,
) -> None:
    """Fill range `i` from where it stands (`follow`: and read on into the untouched ranges
    after it, one request as one stream would); a drop resumes alone, with backoff."""
    url = transport.url(plan.obj)
    attempt = 0
    while (pos := table.position(i)) < (end := table.ranges[i][1]):
        stop.check()
        last = table.run_end(i) if follow else end
        before = pos
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
                        pos += len(piece)
                        table.advance(i, len(piece))
                        ctx.received(len(piece))
                        view = view[len(piece) :]
                        if pos == end:
                            nxt = table.claim_next(i) if pos < last else None
                            if nxt is None:
                                return  # the rest is another connection's (or there is none)
                            i, end = nxt, table.ranges[nxt][1]
            raise _Transient(f"connection closed at byte {pos} of {plan.remote.size}")
        except _Transient as exc:
            attempt = 1 if pos > before else attempt + 1  # progress earns a fresh set of tries
            if attempt >= ctx.retry.tries:
                raise PipelineError(
                    f"{url}: {exc}; gave up after {attempt} tries in a row; rerun to resume "
                    "(each range's progress is kept)"
                ) from None
            stop.sleep(ctx.retry.delay(attempt, exc.retry_after))


def _hash_behind(fd: int, table: _Slices, hashes: _Hashes, stop: _Stop) -> None:
    """Hash the `.part` in order, reading (from the page cache) up to the frontier."""
    pos = flushed = 0
    while pos < table.size:
        frontier = table.wait_beyond(pos, stop)
        while pos < frontier:
            data = os.pread(fd, min(CHUNK, frontier - pos), pos)
            if not data:
                raise PipelineError(f"{table.sidecar}: the .part ends before byte {pos}")
            hashes.update(data)
            pos += len(data)
            if pos - flushed >= WRITEBACK and hasattr(os, "posix_fadvise"):
                # hashed bytes are not read again: start their writeback, drop them from cache
                os.posix_fadvise(fd, 0, pos, os.POSIX_FADV_DONTNEED)
                flushed = pos


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

        def connection(first: int | None, lowest: bool) -> Callable[[], None]:
            """One connection: its first range, then the lowest (or highest) one left."""

            def work() -> None:
                i = first
                while i is not None and not stop.is_set():
                    _fetch_run(transport, plan, fd, table, i, ctx, stop, follow=lowest)
                    i = table.claim(lowest)

            return work

        policy = ctx.slicing
        others = max(0, min(policy.connections, sum(a + d < b for a, b, d in ranges)) - 1)
        # first ranges are claimed here, before any request: which connection fetches what
        # does not depend on thread timing
        first = table.claim(lowest=True)
        helpers = [table.claim(lowest=False) for _ in range(others if not policy.probe else 0)]
        start(0, lambda: _hash_behind(fd, table, hashes, stop))
        start(1, connection(first, lowest=True))
        if others and policy.probe:
            idle = table.hasher_idle(policy.probe, stop)
            if idle is not None and idle > 0.5:  # the hasher waits for the link: open more
                helpers = [table.claim(lowest=False) for _ in range(others)]
        for n, i in enumerate(helpers):
            start(2 + n, connection(i, lowest=False))
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
    """Row count from the header; a file that is no .npy never reaches the target path."""
    try:
        with open(part, "rb") as fp:
            version = np.lib.format.read_magic(fp)
            read = np.lib.format.read_array_header_1_0
            if version != (1, 0):
                read = np.lib.format.read_array_header_2_0
            shape = read(fp)[0]
    except ValueError as exc:
        _discard(part, sidecar)
        raise PipelineError(f"{url}: not a valid .npy file ({exc})") from None
    return int(shape[0]) if shape else 1


def _binary_records(path: Path, limit: int | None) -> dict[str, Any]:
    """Count a verified .bin file's records, cutting it to `limit` (small files: cut locally)."""
    from pipeline import binary

    if limit is None:
        return {"drawings": sum(1 for _ in binary.spans(path.read_bytes(), path))}
    kept = binary.cut(path, limit)
    data = path.read_bytes()
    cut: dict[str, Any] = {
        "drawings": kept,
        "size": len(data),
        "md5": hashlib.md5(data).hexdigest(),
    }
    if _HAVE_CRC32C:
        cut["crc32c"] = base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()
    return cut


def _download(
    transport: Transport, obj: str, target: Path, category: str, limit: int | None, ctx: _Context
) -> dict[str, Any]:
    """Stat, plan and fetch one object; start over once if it changes on the server meanwhile."""
    for attempt in (1, 2):
        try:
            remote = _retrying(ctx, transport.url(obj), lambda: transport.stat(obj))
            if limit is None or obj.endswith(".bin"):  # records have no delimiter to stop at
                plan = _Plan(obj, remote, 0, remote.size)
            elif obj.endswith(".npy"):
                plan = _npy_plan(transport, obj, remote, limit, ctx)
            else:
                plan = _Plan(obj, remote, 0, remote.size, max_lines=limit)
            entry = _fetch(transport, plan, target, ctx)
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
    manifest = {
        "category": category,
        "drawings": drawings,
        "limit": limit,
        "files": dict(zip(objs, entries, strict=True)),
    }
    path = dest / "manifest" / f"{category}.json"
    try:
        write_text(path, json.dumps(manifest, sort_keys=True, indent=2) + "\n")
    except OSError as exc:
        if not _disk_full(exc):
            raise
        raise _DiskFullError(f"disk full while writing {path}: free space and rerun") from None
    return manifest
