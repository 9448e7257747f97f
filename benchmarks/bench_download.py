"""Download throughput: our verified download vs `curl -s URL | md5sum` (and fsspec's HTTP).

Serves a large random .npy-like file from tests/gcs_server.py in its own process (sendfile,
so the server is not the bottleneck) and times, alternating over repetitions:
  curl    `curl -s URL | md5sum` (no disk write: the floor any downloader is held to)
  ours    download_category(): HEAD, stream, MD5 + CRC32C, write, fsync, rename, manifest
  fsspec  fsspec's HTTPFileSystem (aiohttp, what dvc-http uses) streamed to a file with MD5
Usage: .venv/bin/python benchmarks/bench_download.py [--mb 512] [--reps 5] [--out-parent /dev/shm]
(--out-parent on a tmpfs takes the disk out of the comparison: curl | md5sum writes nothing)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import download  # noqa: E402
from pipeline.download import download_category  # noqa: E402


def _make_source(root: Path, mb: int) -> None:
    """An .npy header (80 bytes, like Google's) and `mb` MB of random rows."""
    rows = mb * 1_000_000 // 784
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": (rows, 784)}
    )
    header = buf.getvalue()
    (root / "numpy_bitmap").mkdir(parents=True)
    (root / "simplified").mkdir()
    with open(root / "numpy_bitmap/bench.npy", "wb") as f:
        f.write(header)
        left = rows * 784
        while left:
            n = min(left, 16 << 20)
            f.write(os.urandom(n))
            left -= n
    (root / "simplified/bench.ndjson").write_text('{"word": "bench"}\n')


def _curl(url: str) -> None:
    subprocess.run(f"curl -sf '{url}' | md5sum > /dev/null", shell=True, check=True)


def _curl_to_disk(url: str, dest: Path) -> None:
    """The same plus what a download must also do: write the file and fsync it."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "curl.npy"
    cmd = f"curl -sf '{url}' | tee '{out}' | md5sum > /dev/null && sync '{out}'"
    subprocess.run(cmd, shell=True, check=True)
    out.unlink()


def _ours(base_url: str, dest: Path) -> None:
    shutil.rmtree(dest, ignore_errors=True)
    download_category(base_url, "simplified", "bench", dest, progress=False)


def _fsspec(url: str, dest: Path) -> None:
    import fsspec

    fs = fsspec.filesystem("http")
    md5 = hashlib.md5()
    dest.mkdir(parents=True, exist_ok=True)
    with fs.open(url, "rb", block_size=4 << 20) as src, open(dest / "f.part", "wb") as out:
        while data := src.read(4 << 20):
            md5.update(data)
            out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(dest / "f.part", dest / "f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-fsspec", action="store_true")
    parser.add_argument("--out-parent", type=Path, help="where outputs go (e.g. /dev/shm: no disk)")
    parser.add_argument(
        "--writeback-mb", type=int, help="override download.WRITEBACK (0: only the final fsync)"
    )
    args = parser.parse_args()
    if args.writeback_mb is not None:
        download.WRITEBACK = (args.writeback_mb << 20) or 1 << 62
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        root = Path(tmp) / "src"
        out = Path(tempfile.mkdtemp(dir=args.out_parent)) if args.out_parent else Path(tmp) / "out"
        _make_source(root, args.mb)
        size = (root / "numpy_bitmap/bench.npy").stat().st_size
        server = subprocess.Popen(
            [sys.executable, str(REPO / "tests/gcs_server.py"), str(root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            base_url = server.stdout.readline().strip()  # type: ignore[union-attr]
            url = f"{base_url}/numpy_bitmap/bench.npy"
            subprocess.run(["curl", "-sfI", url], check=True, capture_output=True)  # hash once
            runs: dict[str, Callable[[], None]] = {
                "curl | md5sum": lambda: _curl(url),
                "curl | tee file | md5sum; sync": lambda: _curl_to_disk(url, out / "curl"),
                "ours (download_category)": lambda: _ours(base_url, out / "ours"),
            }
            if not args.no_fsspec:
                runs["fsspec http + md5"] = lambda: _fsspec(url, out / "fsspec")
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.reps):
                for name, run in runs.items():  # alternate, so drift hits every contender
                    t0 = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - t0)
        finally:
            server.terminate()
            server.wait()
            shutil.rmtree(out, ignore_errors=True)
    print(f"file: {size / 1e6:.0f} MB, {args.reps} repetitions, {os.cpu_count()} CPUs")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, median in medians.items():
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f} s"
        print(f"{name:32s} median {median:6.2f} s  {size / median / 1e6:7.0f} MB/s  ({spread})")
    base = medians["curl | md5sum"]
    for name, median in medians.items():
        if name != "curl | md5sum":
            print(f"throughput ratio {name} / curl|md5sum: {base / median:.2f}")


if __name__ == "__main__":
    main()
