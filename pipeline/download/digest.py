"""MD5, CRC32C and line count of what is written, computed once, in order, off the writer's path."""

from __future__ import annotations

import base64
import hashlib
import queue
import struct
import threading

try:  # optional: CRC32C is checked only when the C implementation is there (the pure one is slow)
    import google_crc32c

    _HAVE_CRC32C = google_crc32c.implementation == "c"
except ImportError:  # pragma: no cover - depends on the environment
    _HAVE_CRC32C = False


def _gcs_crc32c(crc: int) -> str:
    """A CRC32C value as GCS writes it (`x-goog-hash`): base64 of its 4 big-endian bytes."""
    return base64.b64encode(struct.pack(">I", crc)).decode()


def _crc32c(data: bytes) -> str | None:
    """CRC32C of `data` as GCS writes it, or None without the C implementation."""
    return _gcs_crc32c(google_crc32c.value(data)) if _HAVE_CRC32C else None


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
        return self.md5.hexdigest(), _gcs_crc32c(self.crc) if _HAVE_CRC32C else None


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
