"""Where the bytes come from: Google's bucket over HTTP(S) or gs://, a folder, a file:// URL.

Every source offers the same two calls, `stat` and `open(offset, end)`, so streaming,
verification, resume, `limit` and slicing are one code path above them, tested once.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import requests
import urllib3

from pipeline.download.retry import RetryPolicy, _Changed, _NotFound, _Transient
from pipeline.errors import PipelineError
from pipeline.store.layout import GOOGLE_BASE_URL

CHUNK = 4 << 20  # large file reads keep the per-chunk Python overhead far below the hashing cost
READ1 = 1 << 20  # socket reads: urllib3's read1 slows down past ~1 MiB (measured: 3 vs 1 GB/s)
DEMO_HINT = (
    "use the bundled demo data (dataset.base_url: data/demo) or a mirror "
    "(a local folder or file:// URL in Google's layout)"
)


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
    """Every error a requests/urllib3 error wraps: one of them tells a wrong or unreachable host
    (fails at once) from a transient failure (retried)."""
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
        self.timeout = (retry.connect_timeout, retry.socket_timeout)
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
