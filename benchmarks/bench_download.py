"""Download throughput: our sliced, verified download vs one `curl` stream, and vs today's path.

Builds one full-size category in Google's layout (bitmaps 118 MB, simplified drawings 66 MB:
synthetic bytes of Google's sizes), serves it from tests/gcs_server.py in its own process and
times, alternating over repetitions (medians):

capped: every connection capped at 20 MB/s, as cloud endpoints cap a single stream, and
  50 ms before each answer (a remote endpoint's time to first byte: each range pays it)
  curl     `curl URL.npy URL.ndjson` to files: one stream, one file after the other
  ours     download_category(): both files at once, each in concurrent byte ranges
uncapped: loopback, as fast as the machine goes (MD5 is the bottleneck)
  curl | md5sum    one stream, hashed, nothing written: the floor any downloader is held to
  curl to files    one stream written to disk and synced, not hashed
  one stream       download_category(slicing=ONE_STREAM): one request a file
  today            the download module before slicing (git BASELINE), when git has it
  ours             download_category() with its default slicing
Every download of ours is verified (size, MD5, CRC32C), fsynced and renamed into place.
Usage: .venv/bin/python benchmarks/bench_download.py [--reps 3] [--out-parent /dev/shm]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.download import ONE_STREAM, download_category  # noqa: E402

CATEGORY = "bench"
NPY_BYTES = 118_000_000  # numpy_bitmap/octopus.npy and simplified/octopus.ndjson, rounded
NDJSON_BYTES = 66_000_000
RATE = 20e6  # bytes per second per connection
LATENCY = 0.05  # seconds to the first byte of each answer, on the capped server
BASELINE = "9575b40"  # the last commit before sliced downloads (issue 10)


def _make_source(root: Path) -> list[str]:
    """The category's two objects: an .npy of random rows and ndjson-like random lines."""
    rows = NPY_BYTES // 784
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": (rows, 784)}
    )
    (root / "numpy_bitmap").mkdir(parents=True)
    (root / "simplified").mkdir()
    with open(root / f"numpy_bitmap/{CATEGORY}.npy", "wb") as f:
        f.write(buf.getvalue())
        f.write(np.random.default_rng(1).integers(0, 256, rows * 784, np.uint8).tobytes())
    line = os.urandom(600).hex().encode() + b"\n"  # printable, about 1.2 kB a drawing
    with open(root / f"simplified/{CATEGORY}.ndjson", "wb") as f:
        f.write(line * (NDJSON_BYTES // len(line)))
    return [f"numpy_bitmap/{CATEGORY}.npy", f"simplified/{CATEGORY}.ndjson"]


@contextmanager
def _server(root: Path, rate: float | None = None, latency: float = 0.0) -> Iterator[str]:
    cmd = [sys.executable, str(REPO / "tests/gcs_server.py"), str(root), f"--latency={latency}"]
    server = subprocess.Popen(
        cmd + ([f"--rate={rate}"] if rate else []), stdout=subprocess.PIPE, text=True
    )
    try:
        yield server.stdout.readline().strip()  # type: ignore[union-attr]
    finally:
        server.terminate()
        server.wait()


def _baseline() -> ModuleType | None:
    """Today's download module (before slicing), loaded from git, or None without history."""
    done = subprocess.run(
        ["git", "show", f"{BASELINE}:pipeline/download.py"], cwd=REPO, capture_output=True
    )
    if done.returncode != 0:
        return None
    path = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / "download_baseline.py"
    path.write_bytes(done.stdout)
    spec = importlib.util.spec_from_file_location("download_baseline", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  (dataclasses look it up)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _today(module: ModuleType, base_url: str, dest: Path) -> Callable[[], None]:
    def run() -> None:
        module.download_category(base_url, "simplified", CATEGORY, _fresh(dest), progress=False)

    return run


def _fresh(dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    return dest


def _race(runs: dict[str, Callable[[], None]], reps: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(reps):
        for name, run in runs.items():  # alternate, so drift hits every contender
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    return times


def _report(title: str, times: dict[str, list[float]], size: int, base: str) -> None:
    print(f"\n{title}")
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, median in medians.items():
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f} s"
        speed = size / median / 1e6
        ratio = medians[base] / median
        print(
            f"  {name:34s} {median:6.2f} s {speed:6.0f} MB/s  x{ratio:5.2f} vs {base}  ({spread})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", choices=["capped", "uncapped"], help="run one half")
    parser.add_argument("--out-parent", type=Path, help="where outputs go (e.g. /dev/shm: no disk)")
    args = parser.parse_args()
    today = _baseline()
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        root = Path(tmp) / "src"
        out = Path(tempfile.mkdtemp(dir=args.out_parent)) if args.out_parent else Path(tmp) / "out"
        objects = _make_source(root)
        size = sum((root / obj).stat().st_size for obj in objects)

        def ours(base_url: str, **kwargs: object) -> Callable[[], None]:
            def run() -> None:
                dest = _fresh(out / "ours")
                download_category(base_url, "simplified", CATEGORY, dest, progress=False, **kwargs)

            return run

        def curl(base_url: str, hashed: bool) -> Callable[[], None]:
            urls = " ".join(f"'{base_url}/{obj}'" for obj in objects)
            dest = out / "curl"
            if hashed:
                cmd = f"curl -sf {urls} | md5sum > /dev/null"
            else:
                cmd = f"curl -sf {urls} -o '{dest}/a' -o '{dest}/b' && sync '{dest}/a' '{dest}/b'"
            return lambda: (
                _fresh(dest).mkdir(parents=True),
                subprocess.run(cmd, shell=True, check=True),
            )

        capped: dict[str, list[float]] = {}
        uncapped: dict[str, list[float]] = {}
        if args.only != "uncapped":
            with _server(root, RATE, LATENCY) as base_url:
                runs = {
                    "curl (one stream, to files)": curl(base_url, False),
                    "ours": ours(base_url),
                }
                capped = _race(runs, args.reps)
        if args.only != "capped":
            with _server(root) as base_url:
                for obj in objects:  # the server hashes each file once, before the clock runs
                    head = ["curl", "-sfI", f"{base_url}/{obj}"]
                    subprocess.run(head, check=True, capture_output=True)
                runs = {
                    "curl | md5sum (one stream)": curl(base_url, True),
                    "curl to files, sync (one stream)": curl(base_url, False),
                    "ours, one stream (slicing=ONE_STREAM)": ours(base_url, slicing=ONE_STREAM),
                }
                if today is not None:
                    runs[f"today (git {BASELINE})"] = _today(today, base_url, out / "today")
                runs["ours (sliced)"] = ours(base_url)
                uncapped = _race(runs, args.reps + 2)
        shutil.rmtree(out, ignore_errors=True)
    print(
        f"one category: {size / 1e6:.0f} MB (npy {NPY_BYTES / 1e6:.0f} MB + simplified ndjson "
        f"{NDJSON_BYTES / 1e6:.0f} MB); medians; {os.cpu_count()} CPUs (shared: noisy)"
    )
    if capped:
        title = f"capped at {RATE / 1e6:.0f} MB/s per connection, {LATENCY * 1000:.0f} ms to first"
        _report(f"{title} byte, {args.reps} rounds", capped, size, "curl (one stream, to files)")
    if uncapped:
        base = "curl | md5sum (one stream)"
        _report(f"uncapped loopback, {args.reps + 2} rounds", uncapped, size, base)
        for name in (f"today (git {BASELINE})", "ours, one stream (slicing=ONE_STREAM)"):
            if name in uncapped:
                ratio = statistics.median(uncapped[name]) / statistics.median(
                    uncapped["ours (sliced)"]
                )
                print(f"  ours (sliced) vs {name}: x{ratio:.2f} (above 1: faster)")


if __name__ == "__main__":
    main()
