"""Download stage: fetch one category's bitmaps and drawings, verified, resumable and atomic.

Every source (Google's bucket over HTTP(S), a mirror folder, a `file://` URL, the bundled demo
data) goes through one transport interface, `stat` + `open(offset)`, so streaming,
verification, resume, `limit` and the atomic rename are one code path, tested once.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
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
from collections.abc import Iterator
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

__all__ = ["RetryPolicy", "download_category"]

CHUNK = 4 << 20  # large file reads keep the per-chunk Python overhead far below the hashing cost
READ1 = 1 << 20  # socket reads: urllib3's read1 slows down past ~1 MiB (measured: 3 vs 1 GB/s)
WRITEBACK = 32 << 20  # start the disk writeback every so often, so the final fsync is short
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
class Remote:
    """What a source says about an object before we fetch it."""

    size: int
    etag: str | None = None
    generation: str | None = None
    md5: str | None = None  # hex
    crc32c: str | None = None  # base64 of the big-endian value, as GCS writes it
    validator: str = ""  # changes whenever the object changes: ties a .part to its source


class _Transient(Exception):
    """A failure worth retrying: timeouts, resets, 429, 5xx, early end of body."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Changed(Exception):
    """The object changed under us (ETag/generation/size): the .part is worthless."""


class _NotFound(Exception):
    """The object does not exist at the source (the message is the URL or path)."""


@dataclass
class _Body:
    offset: int  # first byte actually served: 0 when a server ignored our Range
    chunks: Iterator[bytes]


class Transport(Protocol):
    """A source in Google's layout: everything the shared download logic needs from it."""

    def url(self, obj: str) -> str: ...

    def stat(self, obj: str) -> Remote: ...

    def open(
        self, obj: str, remote: Remote, offset: int, end: int | None
    ) -> contextlib.AbstractContextManager[_Body]: ...


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
    """Google's bucket (or any static HTTP server) with HEAD, Range, ETag and x-goog-* headers."""

    def __init__(self, base_url: str, retry: RetryPolicy) -> None:
        self.base = base_url.rstrip("/")
        self.host = urlsplit(self.base).hostname or self.base
        self.timeout = (retry.connect_timeout, retry.read_timeout)
        self.session = requests.Session()
        # identity: the bytes on disk must be the stored bytes the hashes describe
        self.session.headers["Accept-Encoding"] = "identity"

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
        return Remote(int(length), etag, generation, md5, hashes.get("crc32c"), validator)

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
            start = 0
            if resp.status_code == 206:
                match = re.fullmatch(
                    r"bytes (\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", "")
                )
                if not match or match[3] != str(remote.size):
                    raise _Changed(
                        f"{url}: unexpected Content-Range {resp.headers.get('Content-Range')!r}"
                    )
                start = int(match[1])
            for name, known in (("x-goog-generation", remote.generation), ("ETag", remote.etag)):
                got = resp.headers.get(name)
                if known and got and got != known:
                    raise _Changed(f"{url}: {name} changed from {known} to {got}")
            yield _Body(start, self._chunks(resp))
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
        with open(self.root / obj, "rb", buffering=0) as f:
            f.seek(offset)
            yield _Body(offset, self._chunks(f, offset, remote.size if end is None else end))

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


class _Digest:
    """MD5, CRC32C and newline count of a byte stream, computed in a worker thread.

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
        self.md5 = hashlib.md5()
        self.crc = 0
        self.newlines = 0
        self.size = 0
        self.last = b""

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self.md5.update(data)
            if _HAVE_CRC32C:
                self.crc = google_crc32c.extend(self.crc, data)
            if self.count_lines:
                self.newlines += data.count(b"\n")
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
        crc = base64.b64encode(struct.pack(">I", self.crc)).decode() if _HAVE_CRC32C else None
        return self.md5.hexdigest(), crc

    def lines(self) -> int:
        self._queue.join()
        return self.newlines

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


def _retrying(retry: RetryPolicy, url: str, call: Any) -> Any:
    """Run `call()` again on transient failures, with backoff; give up after `retry.tries`."""
    for attempt in range(1, retry.tries + 1):
        try:
            return call()
        except _Transient as exc:
            if attempt == retry.tries:
                raise PipelineError(f"{url}: {exc}; gave up after {attempt} tries") from None
            time.sleep(retry.delay(attempt, exc.retry_after))
    raise AssertionError("unreachable")


def _read_head(transport: Transport, remote: Remote, obj: str, n: int, retry: RetryPolicy) -> bytes:
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

    return _retrying(retry, transport.url(obj), call)


def _npy_plan(
    transport: Transport, obj: str, remote: Remote, limit: int, retry: RetryPolicy
) -> _Plan:
    """Header + first `limit` rows of a remote .npy, with the header's shape rewritten."""
    url = transport.url(obj)
    head = _read_head(transport, remote, obj, NPY_HEAD, retry)
    fmt = np.lib.format
    try:
        if len(head) < 10 or head[:6] != fmt.MAGIC_PREFIX:
            raise ValueError("no .npy magic")
        version = (head[6], head[7])
        size_len = 2 if version[0] == 1 else 4
        header_len = int.from_bytes(head[8 : 8 + size_len], "little")
        data_offset = 8 + size_len + header_len
        if data_offset > len(head):
            head = _read_head(transport, remote, obj, data_offset, retry)
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
    retry: RetryPolicy,
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
            if attempt >= retry.tries:
                raise PipelineError(
                    f"{url}: {exc}; gave up after {attempt} tries in a row; rerun to resume "
                    f"from byte {plan.start + pos}"
                ) from None
            time.sleep(retry.delay(attempt, exc.retry_after))


def _mismatch(url: str, remote: Remote, md5: str, crc: str | None) -> str | None:
    """Why the whole-file hashes differ from the source's, or None when they agree."""
    for name, expected, got in (("md5", remote.md5, md5), ("crc32c", remote.crc32c, crc)):
        if expected is not None and got is not None and expected != got:
            return (
                f"{url}: {name} mismatch: expected {expected}, got {got}; the download was "
                "corrupted and removed, rerun to fetch it again"
            )
    return None


def _fetch(
    transport: Transport, plan: _Plan, target: Path, retry: RetryPolicy, progress: bool
) -> dict[str, Any]:
    """Stream `plan` into `<target>.part` (resuming it if it is ours), verify, rename into place."""
    url = transport.url(plan.obj)
    part = target.with_name(target.name + ".part")
    sidecar = target.with_name(target.name + ".part.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    key = plan.key(url)
    try:
        resumable = part.exists() and json.loads(sidecar.read_text(encoding="utf-8")) == key
    except (OSError, ValueError):
        resumable = False
    if not resumable:  # absent, or left by an older version of the object or another limit
        _discard(part, sidecar)
        write_text(sidecar, json.dumps(key, sort_keys=True) + "\n")

    digest = _Digest(count_lines=target.suffix == ".ndjson")
    bar = tqdm(
        total=len(plan.prefix) + plan.length, unit="B", unit_scale=True, unit_divisor=1024,
        desc=target.name, disable=not progress, leave=False,
    )  # fmt: skip
    try:
        with open(part, "r+b" if resumable else "w+b", buffering=0) as f:
            _stream(transport, plan, f, digest, bar, retry)
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
    except _DiskFull:
        _discard(part, sidecar)
        raise PipelineError(
            f"disk full while writing {part}: free space under {part.parent} and rerun "
            "(the partial file was removed)"
        ) from None
    finally:
        digest.close()
        bar.close()
    if target.suffix == ".npy":
        lines = _npy_rows(part, url, sidecar)
    os.replace(part, target)
    fsync_dir(target.parent)
    sidecar.unlink(missing_ok=True)
    entry: dict[str, Any] = {"url": url, "size": digest.size, "md5": md5}
    optional = {"crc32c": crc, "etag": plan.remote.etag, "generation": plan.remote.generation}
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
    transport: Transport,
    obj: str,
    target: Path,
    category: str,
    limit: int | None,
    retry: RetryPolicy,
    progress: bool,
) -> dict[str, Any]:
    """Stat, plan and fetch one object; start over once if it changes on the server meanwhile."""
    for attempt in (1, 2):
        try:
            remote = _retrying(retry, transport.url(obj), lambda: transport.stat(obj))
            if limit is None or obj.endswith(".bin"):  # records have no delimiter to stop at
                plan = _Plan(obj, remote, 0, remote.size)
            elif obj.endswith(".npy"):
                plan = _npy_plan(transport, obj, remote, limit, retry)
            else:
                plan = _Plan(obj, remote, 0, remote.size, max_lines=limit)
            entry = _fetch(transport, plan, target, retry, progress)
            if obj.endswith(".bin"):
                entry.update(_binary_records(target, limit))
            return entry
        except _NotFound as exc:
            raise PipelineError(
                f"{exc}: not found: unknown category {category!r}? The name must match "
                "Google's exactly (case and spaces); check dataset.categories in params.yaml"
            ) from None
        except _Changed as exc:
            _discard(target.with_name(target.name + ".part"))
            _discard(target.with_name(target.name + ".part.json"))
            if attempt == 2:
                raise PipelineError(f"{exc}; it keeps changing, rerun later") from None
    raise AssertionError("unreachable")


def download_category(
    base_url: str,
    drawings: str,
    category: str,
    dest: Path = RAW_DIR,
    limit: int | None = None,
    *,
    progress: bool | None = None,
    retry: RetryPolicy | None = None,
) -> dict[str, Any]:
    """Fetch a category's `.npy` bitmaps and `.ndjson` drawings into `dest`; write its manifest.

    Files land at `dest/numpy_bitmap/<cat>.npy` and `dest/<drawings>/<cat>.ndjson` only once
    verified (size, MD5 and CRC32C where the source gives them); `limit` keeps the first N
    drawings of each. The manifest `dest/manifest/<cat>.json` is deterministic (no times), so
    DVC sees a change only when the data changes. Returns the manifest.
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
    dest = Path(dest)
    files = {}
    for obj in (bitmap_object(category), drawings_object(drawings, category)):
        files[obj] = _download(transport, obj, dest / obj, category, limit, retry, show)
    manifest = {"category": category, "drawings": drawings, "limit": limit, "files": files}
    write_text(
        dest / "manifest" / f"{category}.json",
        json.dumps(manifest, sort_keys=True, indent=2) + "\n",
    )
    return manifest
