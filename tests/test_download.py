"""Download stage against a real local HTTP server (tests/gcs_server.py) and real folders."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pipeline.download import RetryPolicy, download_category
from pipeline.errors import PipelineError

sys.path.insert(0, str(Path(__file__).parent))
from gcs_server import GCSServer

REPO = Path(__file__).resolve().parents[1]
HEADS = REPO.parent / "shared" / "quickdraw-heads"
needs_heads = pytest.mark.skipif(
    not HEADS.is_dir(), reason="real drawings in ../shared/quickdraw-heads are absent"
)
FAST = RetryPolicy(tries=4, base_delay=0.001, read_timeout=10)
NPY = "numpy_bitmap/cat.npy"
ROWS = 3000  # 2.3 MB: several reads, and a drop in the middle is really in the middle


def _ndjson(n: int) -> bytes:
    lines = [
        json.dumps({"word": "cat", "countrycode": "US", "key_id": str(i), "drawing": [[[i, 1]]]})
        for i in range(n)
    ]
    return ("\n".join(lines) + "\n").encode()


def make_src(root: Path) -> Path:
    """A folder in Google's layout: bitmaps (made here) and synthetic drawings for `cat`."""
    rng = np.random.default_rng(7)
    (root / "numpy_bitmap").mkdir(parents=True)
    for name in ("cat", "The Eiffel Tower"):
        np.save(root / f"numpy_bitmap/{name}.npy", rng.integers(0, 256, (ROWS, 784), np.uint8))
    (root / "simplified").mkdir()
    (root / "simplified/cat.ndjson").write_bytes(_ndjson(500))
    return root


def bucket(src: Path) -> GCSServer:
    """The bucket: `src` first, then the real heads (raw/ and simplified/) where present."""
    return GCSServer(*([src, HEADS / "heads-only"] if not HEADS.is_dir() else [src, HEADS]))


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_src(tmp_path / "src")


@pytest.fixture
def server(src: Path) -> Iterator[GCSServer]:
    with bucket(src) as gcs:
        yield gcs


def _no_leftovers(dest: Path) -> None:
    left = [p for p in dest.rglob("*") if p.is_file() and ".part" in p.name]
    assert left == [], f"partial files left behind: {left}"


def _without_source(manifest: dict) -> dict:
    files = {
        obj: {k: v for k, v in entry.items() if k not in ("url", "etag", "generation")}
        for obj, entry in manifest["files"].items()
    }
    return {**manifest, "files": files}


def test_http_local_and_file_url_give_same_bytes_and_manifest(
    src: Path, server: GCSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    via_http = download_category(
        server.base_url, "simplified", "cat", tmp_path / "a", progress=False
    )
    via_dir = download_category("src", "simplified", "cat", tmp_path / "b", progress=False)
    via_file = download_category(src.as_uri(), "simplified", "cat", tmp_path / "c", progress=False)
    for obj in (NPY, "simplified/cat.ndjson"):
        expected = (src / obj).read_bytes()
        for out in ("a", "b", "c"):
            assert (tmp_path / out / obj).read_bytes() == expected
    assert _without_source(via_http) == _without_source(via_dir) == _without_source(via_file)
    assert via_dir["files"][NPY]["url"] == "src/numpy_bitmap/cat.npy"
    entry = via_http["files"][NPY]
    assert entry["url"] == f"{server.base_url}/{NPY}"
    assert entry["size"] == (src / NPY).stat().st_size and entry["drawings"] == ROWS
    assert entry["etag"] == f'"{entry["md5"]}"' and entry["generation"].isdigit()
    assert via_http["files"]["simplified/cat.ndjson"]["drawings"] == 500
    text = (tmp_path / "a/manifest/cat.json").read_text()
    assert text == json.dumps(via_http, sort_keys=True, indent=2) + "\n"
    assert server.served[NPY] == entry["size"]  # one pass, no re-reads
    _no_leftovers(tmp_path)


def test_dropped_connection_resumes_with_only_the_remainder(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    server.faults.drop_after[NPY] = size // 2
    download_category(server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST)
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert size <= server.served[NPY] <= size + 64 * 1024
    ranges = [r for m, o, r in server.requests if m == "GET" and o == NPY]
    assert ranges[0] is None and ranges[1].startswith("bytes=")
    assert int(ranges[1].removeprefix("bytes=").rstrip("-")) >= size // 2 - 64 * 1024
    _no_leftovers(tmp_path)


def test_503_is_retried_then_succeeds(src: Path, server: GCSServer, tmp_path: Path) -> None:
    server.faults.fail[NPY] = 2
    download_category(server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST)
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert [m for m, o, _ in server.requests if o == NPY] == ["HEAD", "HEAD", "HEAD", "GET"]


def test_persistent_503_gives_up_after_bounded_tries(server: GCSServer, tmp_path: Path) -> None:
    server.faults.fail[NPY] = 100
    with pytest.raises(PipelineError, match=r"HTTP 503; gave up after 4 tries"):
        download_category(
            server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST
        )
    assert [m for m, o, _ in server.requests if o == NPY] == ["HEAD"] * 4
    assert not (tmp_path / NPY).exists()


def test_unknown_category_names_category_and_url(server: GCSServer, tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as err:
        download_category(
            server.base_url, "simplified", "octopuss", tmp_path / "out", progress=False
        )
    message = str(err.value)
    assert "'octopuss'" in message and "dataset.categories" in message
    assert f"{server.base_url}/numpy_bitmap/octopuss.npy" in message
    assert "\n" not in message
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_server_ignoring_range_restarts_cleanly(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    server.faults.drop_after[NPY] = size // 3
    server.faults.ignore_range = True
    download_category(server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST)
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert server.served[NPY] == size // 3 + size  # the resume got the whole object again


def test_limit_npy_keeps_first_rows_and_transfers_little(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    manifest = download_category(
        server.base_url, "simplified", "cat", tmp_path, limit=123, progress=False
    )
    rows = np.load(tmp_path / NPY)
    assert rows.shape == (123, 784) and rows.dtype == np.uint8
    assert np.array_equal(rows, np.load(src / NPY)[:123])
    entry = manifest["files"][NPY]
    assert entry["drawings"] == 123 and entry["size"] == (tmp_path / NPY).stat().st_size
    assert manifest["limit"] == 123
    assert server.served[NPY] <= 4096 + 123 * 784
    lines = (tmp_path / "simplified/cat.ndjson").read_bytes().splitlines(keepends=True)
    assert lines == (src / "simplified/cat.ndjson").read_bytes().splitlines(keepends=True)[:123]


def test_limit_npy_reads_the_real_header_and_caps_at_the_row_count(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    data = np.arange(50 * 784, dtype=np.uint8).reshape(50, 784)
    with open(src / NPY, "wb") as f:  # version 2.0: a 4-byte header length, not 80 bytes
        np.lib.format.write_array(f, data, version=(2, 0))
    download_category(server.base_url, "simplified", "cat", tmp_path, limit=80, progress=False)
    assert np.array_equal(np.load(tmp_path / NPY), data)
    download_category(server.base_url, "simplified", "cat", tmp_path / "b", limit=7, progress=False)
    assert np.array_equal(np.load(tmp_path / "b" / NPY), data[:7])


@needs_heads
def test_limit_ndjson_on_real_heads(server: GCSServer, tmp_path: Path) -> None:
    head = (HEADS / "raw/cat.ndjson").read_bytes()
    assert not head.endswith(b"\n")  # as the README says: a byte-range cut
    manifest = download_category(server.base_url, "raw", "cat", tmp_path, limit=10, progress=False)
    got = (tmp_path / "raw/cat.ndjson").read_bytes()
    assert got == b"".join(head.splitlines(keepends=True)[:10])
    assert manifest["files"]["raw/cat.ndjson"]["drawings"] == 10
    every = download_category(
        server.base_url, "raw", "cat", tmp_path / "all", limit=10**6, progress=False
    )
    got = (tmp_path / "all/raw/cat.ndjson").read_bytes()
    assert got == head + b"\n"  # fewer lines than the limit: all kept, the last one completed
    assert every["files"]["raw/cat.ndjson"]["drawings"] == head.count(b"\n") + 1


@needs_heads
def test_category_with_spaces_is_percent_encoded(server: GCSServer, tmp_path: Path) -> None:
    name = "The Eiffel Tower"
    manifest = download_category(server.base_url, "raw", name, tmp_path, progress=False)
    assert (tmp_path / f"raw/{name}.ndjson").read_bytes() == (
        HEADS / f"raw/{name}.ndjson"
    ).read_bytes()
    assert manifest["files"][f"raw/{name}.ndjson"]["url"].endswith(
        "/raw/The%20Eiffel%20Tower.ndjson"
    )
    assert (tmp_path / f"manifest/{name}.json").is_file()


def test_killed_download_resumes_from_the_part_file(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    cut = 1_000_000
    server.faults.stall_after[NPY] = cut
    code = (
        "import sys; from pathlib import Path; from pipeline.download import download_category; "
        "download_category(sys.argv[1], 'simplified', 'cat', Path(sys.argv[2]), progress=False)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", code, server.base_url, str(tmp_path)], env=env)
    try:
        assert server.stalled.wait(30), "the download never reached the stall"
        part = tmp_path / (NPY + ".part")
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size == cut) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a file another process writes; the deadline bounds it
        assert part.stat().st_size == cut
    finally:
        child.kill()
        child.wait()
    assert part.exists() and not (tmp_path / NPY).exists()
    server.reset_counts()
    download_category(server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST)
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert server.served[NPY] == size - cut
    assert [r for m, o, r in server.requests if m == "GET" and o == NPY] == [f"bytes={cut}-"]
    _no_leftovers(tmp_path)


def test_part_of_a_changed_object_is_discarded(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    server.faults.drop_after[NPY] = size // 2
    server.faults.fail[NPY] = 0
    with pytest.raises(PipelineError, match="rerun to resume"):
        one_try = RetryPolicy(tries=1, base_delay=0)
        download_category(
            server.base_url, "simplified", "cat", tmp_path, progress=False, retry=one_try
        )
    assert (tmp_path / (NPY + ".part")).stat().st_size == size // 2
    new = np.ones((ROWS, 784), np.uint8)
    np.save(src / NPY, new)  # a new generation of the object
    server.reset_counts()
    download_category(server.base_url, "simplified", "cat", tmp_path, progress=False, retry=FAST)
    assert np.array_equal(np.load(tmp_path / NPY), new)
    assert server.served[NPY] == (src / NPY).stat().st_size
    _no_leftovers(tmp_path)


def test_connection_refused_names_the_host_and_the_demo_data(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    with pytest.raises(PipelineError, match=r"127\.0\.0\.1.*connection refused.*data/demo"):
        download_category(f"http://127.0.0.1:{port}/full", "raw", "cat", tmp_path, progress=False)
    assert not list(tmp_path.iterdir())


def test_missing_local_file_names_the_path(src: Path, tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"src/raw/cat\.ndjson: not found.*'cat'"):
        download_category(str(src), "raw", "cat", tmp_path / "out", progress=False)
    assert not (tmp_path / "out/raw").exists() or not list((tmp_path / "out/raw").iterdir())


def test_missing_local_folder_suggests_the_demo_data(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"no such folder.*data/demo"):
        download_category(str(tmp_path / "nope"), "raw", "cat", tmp_path, progress=False)


def test_stalled_connection_times_out_and_resumes(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    size = (src / NPY).stat().st_size
    server.faults.stall_after[NPY] = size // 4
    impatient = RetryPolicy(tries=3, base_delay=0.001, read_timeout=0.5)
    download_category(
        server.base_url, "simplified", "cat", tmp_path, progress=False, retry=impatient
    )
    assert (tmp_path / NPY).read_bytes() == (src / NPY).read_bytes()
    assert server.served[NPY] == size


def test_gs_url_reads_the_public_bucket_over_https():
    from pipeline.download import HttpTransport, make_transport

    transport = make_transport("gs://quickdraw_dataset/full")
    assert isinstance(transport, HttpTransport)
    assert transport.url("raw/The Eiffel Tower.ndjson") == (
        "https://storage.googleapis.com/quickdraw_dataset/full/raw/The%20Eiffel%20Tower.ndjson"
    )


def test_npy_whose_header_claims_more_rows_than_it_holds_is_refused_and_not_recorded(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    """The source's hashes are of the short file itself, so only the header can tell."""
    whole = (src / NPY).read_bytes()
    (src / NPY).write_bytes(whole[: len(whole) - 784 * 1000])
    dest = tmp_path / "out"
    with pytest.raises(PipelineError) as caught:
        download_category(server.base_url, "simplified", "cat", dest, progress=False, retry=FAST)
    message = str(caught.value)
    assert "\n" not in message and NPY in message
    assert "(3000, 784)" in message and f"holds {len(whole) - 784 * 1000:,} bytes" in message
    assert not (dest / NPY).exists() and not (dest / "manifest/cat.json").exists()
    _no_leftovers(dest)


def test_an_empty_category_is_refused_in_one_line_and_not_recorded(
    src: Path, server: GCSServer, tmp_path: Path
) -> None:
    np.save(src / NPY, np.zeros((0, 784), np.uint8))
    (src / "simplified/cat.ndjson").write_bytes(b"")
    dest = tmp_path / "out"
    with pytest.raises(PipelineError, match=r"holds no drawings; an empty category") as caught:
        download_category(server.base_url, "simplified", "cat", dest, progress=False, retry=FAST)
    assert "\n" not in str(caught.value) and "'cat'" in str(caught.value)
    assert not (dest / "manifest/cat.json").exists() and not (dest / NPY).exists()
    _no_leftovers(dest)


DRAWINGS = "simplified/cat.ndjson"


def test_trickling_server_is_given_up_naming_url_bytes_and_rate(
    server: GCSServer, tmp_path: Path
) -> None:
    """200 B/s against a minimum of 2,000 B/s: given up after `tries` windows, not days."""
    server.faults.trickle[DRAWINGS] = 200
    strict = RetryPolicy(tries=3, base_delay=0.001, min_rate=2000, stall_seconds=0.5)
    with pytest.raises(PipelineError) as err:
        download_category(server.base_url, "simplified", "cat", tmp_path, retry=strict)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{server.base_url}/{DRAWINGS}: stalled: ")
    assert re.search(r"[\d,]+ of [\d,]+ bytes received, \d+ B/s over the last", message)
    assert message.count("gave up after 3 tries")
    assert not (tmp_path / "manifest/cat.json").exists()


def test_server_sending_1000_bytes_then_stalling_on_every_request_ends(
    server: GCSServer, tmp_path: Path
) -> None:
    """Bytes received do not buy a fresh set of tries when the request then stalls."""
    server.faults.stall_every[DRAWINGS] = 1000
    strict = RetryPolicy(tries=3, base_delay=0.001, min_rate=1024, stall_seconds=0.5)
    with pytest.raises(PipelineError, match=r"stalled: .* 0 B/s .*gave up after 3 tries"):
        download_category(server.base_url, "simplified", "cat", tmp_path, retry=strict)
    gets = [r for r in server.requests if r[:2] == ("GET", DRAWINGS)]
    assert len(gets) == 3


def test_steady_link_above_the_minimum_rate_is_never_given_up(src: Path, tmp_path: Path) -> None:
    """A link capped at 4x the minimum rate, over many windows, downloads in full."""
    strict = RetryPolicy(tries=1, base_delay=0.001, min_rate=100_000, stall_seconds=0.5)
    with GCSServer(src, rate=400_000) as slow:  # sends 64 KiB every 0.16 s
        download_category(slow.base_url, "simplified", "cat", tmp_path, limit=1000, retry=strict)
    assert np.load(tmp_path / NPY).shape == (1000, 784)  # 784 KB: four windows


def test_stage_goes_on_past_failed_categories_and_lists_them(
    server: GCSServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """One category at a time: a 404 and a trickle fail, the category after them is kept."""
    from pipeline.params import DatasetParams
    from pipeline.stages import download as download_stage

    monkeypatch.setattr(download_stage, "PARALLEL_CATEGORIES", 1)
    server.faults.trickle[DRAWINGS] = 200
    strict = RetryPolicy(tries=2, base_delay=0.001, min_rate=2000, stall_seconds=0.5)
    names = ("nosuchthing", "cat", "The Eiffel Tower")
    dataset = DatasetParams(server.base_url, "simplified", names)
    with pytest.raises(PipelineError) as err:
        download_stage.fetch_all(dataset, list(names), tmp_path, retry=strict)
    assert str(err.value).startswith(
        "download: 2 of 3 categories failed ('nosuchthing', 'cat'; each one's error above), "
        "1 done and kept"
    )
    assert (tmp_path / "manifest/The Eiffel Tower.json").is_file()
    out = capsys.readouterr().out
    assert "download: cat: failed: " in out and "stalled" in out
    assert "download: nosuchthing: failed: " in out and "not found" in out


def test_stall_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUICKDRAW_MIN_RATE", "512")
    monkeypatch.setenv("QUICKDRAW_STALL_SECONDS", "3")
    policy = RetryPolicy()
    assert (policy.min_rate, policy.stall_seconds, policy.socket_timeout) == (512, 3, 3)
    monkeypatch.setenv("QUICKDRAW_STALL_SECONDS", "soon")
    with pytest.raises(PipelineError, match=r"QUICKDRAW_STALL_SECONDS='soon': must be a pos"):
        RetryPolicy()
