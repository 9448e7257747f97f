"""Which bytes of a remote object make the local file: whole, or cut to `limit` drawings.

A `.npy` is cut to its header (shape rewritten) plus N rows by one Range request, an
`.ndjson` after its N-th newline; a `.bin` has no delimiter to stop at, so it is fetched
whole and cut locally once verified.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.download.context import _Context
from pipeline.download.digest import _crc32c
from pipeline.download.retry import _Changed, _retrying, _Transient
from pipeline.download.transport import Remote, Transport
from pipeline.errors import PipelineError

NPY_HEAD = 4096  # first request for an .npy header; a longer header is fetched in a second one


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

    return _retrying(ctx.retry, ctx.stop, transport.url(obj), call)


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


def _binary_records(path: Path, limit: int | None) -> dict[str, Any]:
    """Count a verified .bin file's records, cutting it to `limit` (small files: cut locally)."""
    from pipeline.formats import binary

    if limit is None:
        return {"drawings": sum(1 for _ in binary.spans(path.read_bytes(), path))}
    kept = binary.cut(path, limit)
    data = path.read_bytes()
    cut: dict[str, Any] = {
        "drawings": kept,
        "size": len(data),
        "md5": hashlib.md5(data).hexdigest(),
    }
    if (crc := _crc32c(data)) is not None:
        cut["crc32c"] = crc
    return cut


def _plan_for(
    transport: Transport, obj: str, remote: Remote, limit: int | None, ctx: _Context
) -> _Plan:
    """The whole object, or its first `limit` drawings (rows of a .npy, lines of an .ndjson)."""
    if limit is None or obj.endswith(".bin"):  # records have no delimiter to stop at
        return _Plan(obj, remote, 0, remote.size)
    if obj.endswith(".npy"):
        return _npy_plan(transport, obj, remote, limit, ctx)
    return _Plan(obj, remote, 0, remote.size, max_lines=limit)
