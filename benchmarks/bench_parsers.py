"""Which parser for the join: single-thread throughput of each candidate on the same raw bytes.

The first 128 MB (whole lines) of the benchmark's full-size raw file, parsed by: pyarrow's JSON
reader (the strokes as nested lists), orjson line by line (everything decoded), orjson on the
metadata prefix only (fast, but blind to damaged strokes), and our compiled scanner
(pipeline/native/_native.c: strokes checked and counted, metadata decoded); counting the newlines is
the floor. Best of 3 each.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj
from common import OUT
from join_data import DRAWINGS, build

from pipeline.native import _native

SLICE = 128 << 20


def pyarrow_json(data: bytes) -> int:
    stroke = pa.list_(pa.list_(pa.float64()))
    schema = pa.schema(
        [("word", pa.string()), ("countrycode", pa.string()), ("timestamp", pa.string()),
         ("recognized", pa.bool_()), ("key_id", pa.string()), ("drawing", pa.list_(stroke))]
    )  # fmt: skip
    options = pj.ParseOptions(explicit_schema=schema)
    return pj.read_json(io.BytesIO(data), parse_options=options).num_rows


def orjson_lines(data: bytes) -> int:
    return sum(1 for line in data.splitlines() if orjson.loads(line)["drawing"])


def orjson_prefix(data: bytes) -> int:
    count = 0
    for line in data.splitlines():
        orjson.loads(line[: line.index(b',"drawing":')] + b"}")
        count += 1
    return count


def scanner(data: bytes) -> int:
    shaped = _native.scan_lines(data, 0, len(data), 3)[7]
    return int(np.frombuffer(shaped, np.uint8).sum())


def newlines(data: bytes) -> int:
    return data.count(b"\n")


def best_of(function: Callable[[bytes], int], data: bytes, runs: int = 3) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        count = function(data)
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    path = build(OUT / f"join-data-{DRAWINGS}") / "raw" / "octopus.ndjson"
    with path.open("rb") as handle:
        data = handle.read(SLICE)
    data = data[: data.rfind(b"\n") + 1]
    print(f"\nparsers, single thread, {len(data) / 1e6:.0f} MB of raw drawings:")
    baseline = None
    for name, function in [
        ("pyarrow.json.read_json", pyarrow_json),
        ("orjson, whole lines", orjson_lines),
        ("orjson, metadata prefix only (strokes unchecked)", orjson_prefix),
        ("ours: compiled scanner (strokes checked)", scanner),
        ("the floor: counting newlines", newlines),
    ]:
        seconds, count = best_of(function, data)
        rate = len(data) / seconds / 1e6
        baseline = baseline or rate
        print(
            f"  {name:50s} {seconds:6.2f} s  {rate:6.0f} MB/s  {rate / baseline:5.1f}x  {count:,}"
        )


if __name__ == "__main__":
    main()
