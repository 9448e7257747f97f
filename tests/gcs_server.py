"""A real HTTP server that behaves like Google Cloud Storage for the download tests.

Serves folders in Google's layout (first folder holding the object wins) with HEAD, GET,
Range (206 + Content-Range), If-Match (412), ETag, x-goog-generation and x-goog-hash, and
injects faults the tests ask for. It counts the body bytes it sent per object, so a test can
assert what a resume re-transferred. `rate` caps every connection at that many bytes a second
(a token bucket per connection, real throttled sends), as cloud endpoints cap a single stream;
`latency` delays every answer, as a remote endpoint's time to first byte.
Run it as a script to serve a folder from its own process (the benchmark does):
`python tests/gcs_server.py FOLDER [--port N] [--rate BYTES_PER_SECOND]`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import re
import socket
import struct
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

try:
    import google_crc32c
except ImportError:  # the server then sends md5 only, as GCS does for some composite objects
    google_crc32c = None

PREFIX = "/quickdraw_dataset/full"
CHUNK = 1 << 20


@dataclass
class Faults:
    """What goes wrong, per object path (e.g. `numpy_bitmap/cat.npy`); set by the test."""

    drop_after: dict[str, int] = field(default_factory=dict)  # close after K body bytes, once
    # the same for the one request whose range starts at byte S: {(object, S): K}
    drop_range: dict[tuple[str, int], int] = field(default_factory=dict)
    stall_after: dict[str, int] = field(default_factory=dict)  # hang after K bytes, until stop
    stall_range: dict[tuple[str, int], int] = field(default_factory=dict)  # as drop_range
    # hang after K bytes on every request (until the client hangs up or the server stops)
    stall_every: dict[str, int] = field(default_factory=dict)
    trickle: dict[str, float] = field(default_factory=dict)  # send at most B bytes/s, always
    fail: dict[str, int] = field(default_factory=dict)  # answer 503 this many times first
    missing: set[str] = field(default_factory=set)  # answer 404 although the file exists
    corrupt: set[str] = field(default_factory=set)  # flip one byte, keep the headers
    gather: int = 0  # hold the first GET bodies until this many are in flight at once (once)
    ignore_range: bool = False  # answer 200 with the whole object to every Range (and do not
    # announce `Accept-Ranges: bytes`, as such servers do not), unless `announce_ranges`
    announce_ranges: bool = False


def _digests(path: Path) -> tuple[str, str | None]:
    md5, crc = hashlib.md5(), 0
    with open(path, "rb") as f:
        while data := f.read(CHUNK):
            md5.update(data)
            if google_crc32c is not None:
                crc = google_crc32c.extend(crc, data)
    crc32c = base64.b64encode(struct.pack(">I", crc)).decode() if google_crc32c else None
    return md5.hexdigest(), crc32c


class GCSServer:
    """`with GCSServer(folder) as server:` serves `server.base_url` from a thread on 127.0.0.1."""

    def __init__(
        self, *roots: Path, port: int = 0, rate: float | None = None, latency: float = 0.0
    ) -> None:
        self.roots = [Path(root) for root in roots]
        self.rate = rate  # bytes per second per connection (None: as fast as the kernel goes)
        self.latency = latency  # seconds before each answer (a cloud endpoint's first byte)
        self.faults = Faults()
        self.served: Counter[str] = Counter()  # body bytes sent per object
        self.requests: list[tuple[str, str, str | None]] = []  # (method, object, Range)
        self.in_flight = 0  # GET bodies being sent right now
        self.peak = 0  # the most GET bodies ever sent at once
        self.stalled = threading.Event()  # set when a stall fault is reached
        self.release = threading.Event()  # set on stop: stalled responses end
        self._lock = threading.Lock()
        self._hashes: dict[tuple[Path, int, int], tuple[str, str | None]] = {}
        self._barrier: threading.Barrier | None = None
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.gcs = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{PREFIX}"

    def start(self) -> GCSServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> GCSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset_counts(self) -> None:
        with self._lock:
            self.served.clear()
            self.requests.clear()

    def find(self, obj: str) -> Path | None:
        for root in self.roots:
            if (root / obj).is_file():
                return root / obj
        return None

    def hashes(self, path: Path) -> tuple[str, str | None]:
        st = path.stat()
        key = (path, st.st_size, st.st_mtime_ns)
        if key not in self._hashes:
            self._hashes[key] = _digests(path)
        return self._hashes[key]

    def take(self, table: dict, obj: object) -> int | None:
        """Pop a once-only fault for `obj` (thread-safe)."""
        with self._lock:
            return table.pop(obj, None)

    def gather(self) -> None:
        """Wait (10 s at most) until `faults.gather` GET bodies are in flight, the first time."""
        with self._lock:
            if self.faults.gather and self._barrier is None:
                self._barrier = threading.Barrier(self.faults.gather)
            barrier = self._barrier if self.faults.gather else None
        if barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                if barrier.wait(10) == 0:
                    self.faults.gather = 0

    def count(self, obj: str, n: int) -> None:
        with self._lock:
            self.served[obj] += n


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many clients open several connections at once

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client may hang up early
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Bucket:
    """A token bucket: `take(n)` returns once `n` bytes fit in `rate` bytes a second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(rate / 50, 64 * 1024)  # 20 ms of sending at most in one go
        self.tokens = 0.0
        self.stamp = time.monotonic()

    def take(self, n: int) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= n
        if self.tokens < 0:
            time.sleep(-self.tokens / self.rate)  # the server pacing itself, not a test waiting


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def setup(self) -> None:
        super().setup()
        rate = self.server.gcs.rate  # type: ignore[attr-defined]
        self.bucket = _Bucket(rate) if rate else None  # one per connection

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _error(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _serve(self, body: bool) -> None:
        gcs: GCSServer = self.server.gcs  # type: ignore[attr-defined]
        path = unquote(urlsplit(self.path).path)
        obj = path.removeprefix(PREFIX + "/") if path.startswith(PREFIX + "/") else None
        header_range = self.headers.get("Range")
        with gcs._lock:
            gcs.requests.append((self.command, obj or path, header_range))
            failing = gcs.faults.fail.get(obj or "", 0)
            if failing:
                gcs.faults.fail[obj or ""] = failing - 1
        if gcs.latency:
            time.sleep(gcs.latency)  # the server's own pacing, as a remote endpoint's
        if failing:
            return self._error(503)
        file = gcs.find(obj) if obj and obj not in gcs.faults.missing else None
        if file is None:
            return self._error(404)
        size = file.stat().st_size
        md5, crc = gcs.hashes(file)
        etag = f'"{md5}"'
        start, end, status = 0, size, 200
        if_match = self.headers.get("If-Match")
        if if_match and if_match not in ("*", etag):
            return self._error(412)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", header_range or "")
        if match and not gcs.faults.ignore_range:
            start = int(match[1])
            end = min(size, int(match[2]) + 1) if match[2] else size
            if start >= size:
                return self._error(416)
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if not gcs.faults.ignore_range or gcs.faults.announce_ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("x-goog-generation", str(file.stat().st_mtime_ns // 1000))
        self.send_header("x-goog-stored-content-length", str(size))
        if crc is not None:
            self.send_header("x-goog-hash", f"crc32c={crc}")
        self.send_header("x-goog-hash", f"md5={base64.b64encode(bytes.fromhex(md5)).decode()}")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if body:
            self.wfile.flush()
            with gcs._lock:
                gcs.in_flight += 1
                gcs.peak = max(gcs.peak, gcs.in_flight)
            try:
                gcs.gather()
                self._send_body(gcs, obj, file, start, end)
            finally:
                with gcs._lock:
                    gcs.in_flight -= 1

    def _send_body(self, gcs: GCSServer, obj: str, file: Path, start: int, end: int) -> None:
        drop = gcs.take(gcs.faults.drop_after, obj)
        if drop is None:
            drop = gcs.take(gcs.faults.drop_range, (obj, start))
        stall = gcs.take(gcs.faults.stall_after, obj)
        if stall is None:
            stall = gcs.take(gcs.faults.stall_range, (obj, start))
        if stall is None:
            stall = gcs.faults.stall_every.get(obj)
        corrupt = obj in gcs.faults.corrupt
        bucket, step = self.bucket, CHUNK if self.bucket is None else 64 * 1024
        if obj in gcs.faults.trickle:  # small pieces, paced by the server itself
            rate = gcs.faults.trickle[obj]
            bucket, step = _Bucket(rate), max(1, int(rate / 10))
        with open(file, "rb") as f:
            if drop is None and stall is None and not corrupt and bucket is None:
                try:  # the fast path: the kernel copies file to socket (sendfile)
                    gcs.count(obj, self.connection.sendfile(f, start, end - start))
                except OSError:
                    self.close_connection = True
                return
            cut = start + (drop if drop is not None else stall if stall is not None else end)
            flip = file.stat().st_size // 2
            pos = start
            f.seek(start)
            while pos < min(end, cut):
                data = bytearray(f.read(min(step, min(end, cut) - pos)))
                if bucket is not None:
                    bucket.take(len(data))
                if corrupt and pos <= flip < pos + len(data):
                    data[flip - pos] ^= 0xFF
                try:
                    self.connection.sendall(data)
                except OSError:
                    self.close_connection = True
                    return
                gcs.count(obj, len(data))
                pos += len(data)
        if pos < end:  # a drop or a stall: the client sees a body shorter than Content-Length
            if stall is not None:
                gcs.stalled.set()
                self._hang(gcs)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _hang(self, gcs: GCSServer) -> None:
        """Send nothing more until the client hangs up or the server stops (60 s at most)."""
        self.connection.settimeout(0.1)
        deadline = time.monotonic() + 60
        while not gcs.release.is_set() and time.monotonic() < deadline:
            try:
                if not self.connection.recv(1):  # the client closed its end
                    return
            except TimeoutError:
                continue
            except OSError:
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, help="cap each connection (bytes per second)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args()
    server = GCSServer(*args.folders, port=args.port, rate=args.rate, latency=args.latency)
    print(server.base_url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.httpd.serve_forever()


if __name__ == "__main__":
    main()
