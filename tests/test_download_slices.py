"""Sliced downloads (concurrent byte ranges into one .part) against the real local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import small_filesystem
from gcs_server import GCSServer
from test_download import FAST, NPY, REPO, ROWS, _no_leftovers, bucket, make_src

from pipeline.download import (
    ONE_STREAM,
    Interrupted,
    RetryPolicy,
    SlicePolicy,
    download_category,
)
from pipeline.errors import PipelineError

# the test files are small (2.35 MB), so slice them small: 4 ranges of ~590 KB, all fetched
# at once (no probe: which connection fetches which range does not depend on timing)
SLICES = SlicePolicy(4, threshold=1 << 20, min_slice=256 << 10, max_slice=1 << 20, probe=0)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_src(tmp_path / "src")


@pytest.fixture
def server(src: Path) -> Iterator[GCSServer]:
    with bucket(src) as gcs:
        yield gcs


def _ranges(size: int) -> list[tuple[int, int]]:
    ranges = SLICES.ranges(size)
    assert len(ranges) == 4
    return ranges


def _header(start: int, end: int, size: int) -> str:
    """The Range header of bytes [start, end): open-ended for the last slice."""
    return f"bytes={start}-{end - 1 if end < size else ''}"


def _gets(server: GCSServer, obj: str = NPY) -> list[str | None]:
    return sorted((r for m, o, r in server.requests if m == "GET" and o == obj), key=str)


def _asked(server: GCSServer, size: int) -> list[tuple[int, int]]:
    """The [start, end) byte intervals of the GETs for the bitmaps."""
    asked = []
    for header in _gets(server):
        first, _, last = (header or "bytes=0-").removeprefix("bytes=").partition("-")
        asked.append((int(first), int(last) + 1 if last else size))
    return asked


def _merged(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _sidecar(dest: Path) -> dict:
    return json.loads((dest / (NPY + ".part.json")).read_text())


def test_slices_are_fetched_at_once_and_give_the_same_file_and_manifest(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    # the server holds the bodies until all are in flight: four ranges and the drawings file
    server.faults.gather = 5
    sliced = download_category(
        server.base_url, "simplified", "cat", tmp_path / "a", progress=False, slicing=SLICES
    )
    assert server.peak == 5
    assert _gets(server) == sorted(_header(a, b, size) for a, b in _ranges(size))
    assert server.served[NPY] == size  # every byte once
    assert _gets(server, "simplified/cat.ndjson") == [None]  # below the threshold: one request
    server.reset_counts()
    single = download_category(
        server.base_url, "simplified", "cat", tmp_path / "b", progress=False, slicing=ONE_STREAM
    )
    assert _gets(server) == [None]
    assert sliced == single
    assert sliced["files"][NPY]["drawings"] == ROWS
    assert (tmp_path / "a" / NPY).read_bytes() == (src / NPY).read_bytes()
    _no_leftovers(tmp_path)


def test_a_dropped_slice_resumes_alone_with_only_its_missing_bytes(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    (a0, b0), (a1, b1), (a2, b2), (a3, b3) = _ranges(size)
    server.faults.drop_range[(NPY, a2)] = 100_000  # the third slice's connection drops
    download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST, slicing=SLICES
    )
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert server.served[NPY] == size  # nothing fetched twice
    expected = [_header(a, b, size) for a, b in ((a0, b0), (a1, b1), (a2, b2), (a3, b3))]
    assert _gets(server) == sorted([*expected, _header(a2 + 100_000, b2, size)])
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("slicing", [ONE_STREAM, SLICES], ids=["one-stream", "sliced"])
def test_corrupt_body_is_a_hash_mismatch_and_leaves_nothing(
    server: GCSServer, tmp_path: Path, slicing: SlicePolicy
) -> None:
    server.faults.corrupt.add(NPY)
    with pytest.raises(
        PipelineError, match=r"md5 mismatch: expected [0-9a-f]{32}, got [0-9a-f]{32}"
    ):
        download_category(
            server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST,
            slicing=slicing,
        )  # fmt: skip
    assert not (tmp_path / NPY).exists()
    _no_leftovers(tmp_path)


def test_server_without_range_support_gets_one_stream(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    server.faults.ignore_range = True  # and no `Accept-Ranges: bytes` in its answers
    download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, slicing=SLICES
    )
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert _gets(server) == [None]
    assert server.served[NPY] == (src / NPY).stat().st_size


def test_server_announcing_but_ignoring_range_falls_back_to_one_stream(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    server.faults.ignore_range = True
    server.faults.announce_ranges = True  # says `Accept-Ranges: bytes`, answers 200 anyway
    manifest = download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, slicing=SLICES
    )
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert manifest["files"][NPY]["size"] == (src / NPY).stat().st_size
    gets = [r for m, o, r in server.requests if m == "GET" and o == NPY]
    assert gets[-1] is None and any(r is not None for r in gets)  # tried ranges, then one stream
    _no_leftovers(tmp_path)


def _failed_sliced_download(server: GCSServer, dest: Path, size: int) -> dict:
    """A sliced download whose second slice drops and is not retried: the .part stays."""
    a1 = _ranges(size)[1][0]
    server.faults.drop_range[(NPY, a1)] = 50_000
    with pytest.raises(PipelineError, match="rerun to resume"):
        download_category(
            server.base_url,
            "simplified",
            "cat",
            dest,
            progress=False,
            retry=RetryPolicy(tries=1, base_delay=0),
            slicing=SLICES,
        )
    record = _sidecar(dest)
    assert [start for start, _, _ in record["slices"]] == [a for a, _ in _ranges(size)]
    assert record["slices"][1][2] == 50_000  # recorded up to the drop
    return record


def test_a_failed_sliced_download_resumes_each_slice_where_it_stopped(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    record = _failed_sliced_download(server, tmp_path, size)
    missing = [(a + done, b) for a, b, done in record["slices"] if a + done < b]
    server.reset_counts()
    download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, slicing=SLICES
    )
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert server.served[NPY] == sum(b - a for a, b in missing)  # each missing byte once
    assert _merged(_asked(server, size)) == _merged(missing)  # and nothing else asked for
    _no_leftovers(tmp_path)


def test_a_changed_object_discards_the_sliced_part(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    _failed_sliced_download(server, tmp_path, (src / NPY).stat().st_size)
    new = np.ones((ROWS, 784), np.uint8)
    np.save(src / NPY, new)  # a new generation of the object (same size, other ETag)
    server.reset_counts()
    download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, slicing=SLICES
    )
    assert np.array_equal(np.load(tmp_path / NPY), new)
    assert server.served[NPY] == (src / NPY).stat().st_size
    _no_leftovers(tmp_path)


def test_sigkill_mid_sliced_download_then_rerun_resumes_every_slice(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    ranges = _ranges(size)
    server.faults.stall_range[(NPY, ranges[1][0])] = 200_000  # slice 2 hangs after 200 kB
    code = (
        "import sys; from pathlib import Path; "
        "from pipeline.download import SlicePolicy, download_category; "
        "download_category(sys.argv[1], 'simplified', 'cat', Path(sys.argv[2]), progress=False, "
        "slicing=SlicePolicy(4, threshold=1 << 20, min_slice=256 << 10, max_slice=1 << 20, "
        "probe=0))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code, server.base_url, str(tmp_path)], env=env)
    sidecar = tmp_path / (NPY + ".part.json")
    try:
        assert server.stalled.wait(30), "the download never reached the stall"

        def others_recorded() -> bool:
            try:
                slices = json.loads(sidecar.read_text())["slices"]
            except (OSError, ValueError):
                return False
            return all(a + done == b for n, (a, b, done) in enumerate(slices) if n != 1)

        deadline = time.monotonic() + 30
        while not others_recorded() and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a file another process writes; the deadline bounds it
        assert others_recorded(), "the other three slices never completed"
    finally:
        child.kill()
        child.wait()
    assert not (tmp_path / NPY).exists()
    record = _sidecar(tmp_path)
    a1, b1, done1 = record["slices"][1]
    assert done1 <= 200_000
    server.reset_counts()
    download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST, slicing=SLICES
    )
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert server.served[NPY] == b1 - a1 - done1  # only what the killed run had not recorded
    assert _gets(server) == [_header(a1 + done1, b1, size)]
    _no_leftovers(tmp_path)


def test_categories_download_concurrently_with_one_byte_count(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    names = [f"cat{n}" for n in range(6)]
    rng = np.random.default_rng(3)
    for name in names:
        np.save(src / f"numpy_bitmap/{name}.npy", rng.integers(0, 256, (ROWS, 784), np.uint8))
        drawings = (src / "simplified/cat.ndjson").read_bytes()
        (src / f"simplified/{name}.ndjson").write_bytes(drawings)
    total = 0
    lock = threading.Lock()

    def count(n: int) -> None:
        nonlocal total
        with lock:
            total += n

    def fetch(name: str) -> dict:
        return download_category(
            server.base_url,
            "simplified",
            name,
            tmp_path,
            progress=False,
            slicing=SLICES,
            on_bytes=count,
        )

    with ThreadPoolExecutor(4) as pool:
        manifests = list(pool.map(fetch, names))
    sizes = 0
    for name, manifest in zip(names, manifests, strict=True):
        for obj in (f"numpy_bitmap/{name}.npy", f"simplified/{name}.ndjson"):
            assert (tmp_path / obj).read_bytes() == (src / obj).read_bytes()
            assert manifest["files"][obj]["size"] == (src / obj).stat().st_size
            sizes += (src / obj).stat().st_size
        assert json.loads((tmp_path / f"manifest/{name}.json").read_text()) == manifest
    assert total == sizes == sum(server.served.values())
    _no_leftovers(tmp_path)


def test_stop_event_interrupts_and_the_next_call_resumes(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    stop = threading.Event()
    seen = 0

    def stop_after_a_megabyte(n: int) -> None:
        nonlocal seen
        seen += n
        if seen >= 1 << 20:
            stop.set()

    with pytest.raises(Interrupted, match=r"'cat' stopped; rerun to resume"):
        download_category(
            server.base_url,
            "simplified",
            "cat",
            tmp_path,
            progress=False,
            slicing=SLICES,
            on_bytes=stop_after_a_megabyte,
            stop=stop,
        )
    assert not (tmp_path / NPY).exists()
    record = _sidecar(tmp_path)
    kept = sum(done for _, _, done in record["slices"])
    assert kept > 0
    server.reset_counts()
    download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, slicing=SLICES
    )
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert server.served[NPY] == (src / NPY).stat().st_size - kept
    _no_leftovers(tmp_path)


@pytest.fixture
def small_disk(tmp_path: Path):
    with small_filesystem(tmp_path / "small", "2m") as mount:
        yield mount


@pytest.mark.parametrize("slicing", [ONE_STREAM, SLICES], ids=["one-stream", "sliced"])
def test_disk_full_names_the_file_and_leaves_nothing(
    src: Path, server: GCSServer, small_disk: Path, slicing: SlicePolicy
) -> None:
    assert (src / NPY).stat().st_size > 2 << 20  # the bitmaps do not fit
    with pytest.raises(PipelineError) as err:
        download_category(
            server.base_url, "simplified", "cat", small_disk, progress=False, slicing=slicing
        )
    message = str(err.value)
    assert message.startswith(f"disk full while writing {small_disk}/")
    assert ".part (" in message and "free space under" in message and "rerun" in message
    assert "\n" not in message
    assert not (small_disk / NPY).exists()
    assert not (small_disk / "manifest").exists()
    _no_leftovers(small_disk)


def test_on_a_slow_link_the_first_connection_gets_help(src: Path, tmp_path: Path) -> None:
    """One connection starts alone; capped at 2 MB/s it keeps the hasher waiting (hashing
    runs at hundreds of MB/s), so after the probe others start at ranges further on."""
    size = (src / NPY).stat().st_size
    probing = SlicePolicy(4, threshold=1 << 20, min_slice=256 << 10, max_slice=1 << 20)
    with GCSServer(src, rate=2e6) as slow:
        download_category(
            slow.base_url, "simplified", "cat", tmp_path, progress=False, slicing=probing
        )
        gets = [r for m, o, r in slow.requests if m == "GET" and o == NPY]
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert gets[0] is None  # the first connection asked for the whole object, as one stream
    starts = {a for a, _ in _ranges(size)}
    assert len(gets) >= 2, "no other connection was opened"
    assert all(int(r.removeprefix("bytes=").split("-")[0]) in starts for r in gets[1:])
    _no_leftovers(tmp_path)
