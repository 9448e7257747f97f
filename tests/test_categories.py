"""Per-category caching under a real `dvc repro`: adding, removing and re-adding a category,
a change to the join's code, and a run killed in the middle of its downloads."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run, set_param, start_stage

sys.path.insert(0, str(Path(__file__).parent))
from gcs_server import GCSServer

pytestmark = pytest.mark.slow

FIVE = ["octopus", "cat", "fish", "flower", "house"]


def repro(project: Path, env: dict[str, str]) -> str:
    return run(["dvc", "repro"], project, env).stdout


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def identities(project: Path, categories: list[str]) -> dict[Path, tuple[int, int]]:
    """Inode and mtime of each category's files: equal means not rewritten."""
    paths = []
    for category in categories:
        paths += [
            project / "data/raw/numpy_bitmap" / f"{category}.npy",
            project / "data/raw/simplified" / f"{category}.ndjson",
            project / "data/processed/drawings" / f"category={category}" / "part-0.parquet",
        ]
    return {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in paths}


def holds(project: Path, category: str) -> bool:
    files = [
        project / "data/raw/numpy_bitmap" / f"{category}.npy",
        project / "data/raw/simplified" / f"{category}.ndjson",
        project / "data/raw/manifest" / f"{category}.json",
        project / "data/processed/drawings" / f"category={category}",
    ]
    return any(path.exists() for path in files)


def read_until_finished(lines, count: int) -> None:
    """Read a stage's output until `count` categories have finished downloading."""
    finished = 0
    for line in lines:
        finished += line.startswith("download [")
        if finished == count:
            return
    raise AssertionError(f"the output ended after {finished} finished categories")


def wait_for(condition, timeout: float = 30) -> None:
    """Wait for a state of the world (a file's size), polling; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_adding_removing_and_readding_one_category(project, isolated_env):
    env = isolated_env
    set_param(project, "dataset.categories", FIVE)
    assert ran(repro(project, env)) == {"download", "join", "profile", "sample", "report"}
    before = identities(project, FIVE)

    # Adding one: only it is downloaded and joined; the others' files are not touched.
    set_param(project, "dataset.categories", [*FIVE, "The Eiffel Tower"])
    output = repro(project, env)
    assert ran(output) == {"download", "join", "profile", "sample", "report"}
    assert "download: 5 kept, 1 to do" in output
    assert re.search(r"download \[1/1\] The Eiffel Tower: 600 drawings", output)
    assert "join: 5 kept, 1 to do" in output
    assert identities(project, FIVE) == before
    lock = (project / "dvc.lock").read_text()

    # Removing one: nothing is downloaded or joined; its files leave the outputs.
    set_param(project, "dataset.categories", [c for c in [*FIVE, "The Eiffel Tower"] if c != "cat"])
    output = repro(project, env)
    assert "download: 5 kept, 1 set aside in data/.stash, 0 to do" in output
    assert "join: 5 kept, 1 set aside in data/.stash, 0 to do" in output
    assert not holds(project, "cat")
    assert "cat.npy" not in (project / "dvc.lock").read_text()

    # Adding it back: restored, neither downloaded nor joined; the lock is as it was.
    set_param(project, "dataset.categories", [*FIVE, "The Eiffel Tower"])
    output = repro(project, env)
    assert "download: 5 kept, 1 restored from data/.stash, 0 to do" in output
    assert "join: 5 kept, 1 restored from data/.stash, 0 to do" in output
    assert (project / "dvc.lock").read_text() == lock
    assert not [p for p in (project / "data/.stash").rglob("*") if p.is_file()]
    assert "up to date" in run(["dvc", "status"], project, env).stdout


def test_later_stages_follow_the_downloads_list_not_the_parameter(project, isolated_env):
    """dvc.lock holds the categories once (the download's parameter); the later stages depend on
    the download's list, so a new order reruns them all, and one run by hand before the download
    stops with what to do."""
    import yaml

    env = isolated_env
    set_param(project, "dataset.categories", FIVE)
    repro(project, env)
    stages = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    listing = {name for name, entry in stages.items() if "octopus" in str(entry.get("params"))}
    assert listing == {"download"}
    assert (project / "dvc.lock").read_text().count("- octopus") == 1

    sample = project / "data/sample/sample.parquet"
    before = sample.read_bytes()
    set_param(project, "dataset.categories", FIVE[::-1])
    by_hand = run([sys.executable, "-m", "pipeline", "sample"], project, env, check=False)
    assert by_hand.returncode != 0
    assert "categories.json lists other categories than params.yaml's" in by_hand.stderr
    assert "run `dvc repro`" in by_hand.stderr
    assert sample.read_bytes() == before

    output = repro(project, env)
    assert ran(output) == {"download", "join", "profile", "sample", "report"}
    assert "download: 5 kept, 0 to do" in output and "join: 5 kept, 0 to do" in output
    assert "up to date" in run(["dvc", "status"], project, env).stdout


def test_a_change_to_the_join_code_rejoins_every_category_and_downloads_none(project, isolated_env):
    repro(project, isolated_env)
    with (project / "pipeline/stages/join.py").open("a") as handle:
        handle.write("\n# a change to the join's code\n")
    output = repro(project, isolated_env)
    assert "Stage 'download' didn't change, skipping" in output
    assert "join: 0 kept, 6 to do" in output
    assert len(re.findall(r"^join \[\d/6\]", output, re.MULTILINE)) == 6


def test_a_killed_download_resumes_and_keeps_finished_categories(project, isolated_env):
    """SIGKILL while one category's download hangs: the next run keeps the five finished
    categories, resumes the partial file from its bytes on disk, and leaves nothing behind."""
    stalled = "simplified/house.ndjson"
    with GCSServer(project / "data" / "demo") as server:
        set_param(project, "dataset.base_url", server.base_url)
        server.faults.stall_after[stalled] = 100_000
        with subprocess.Popen(
            ["dvc", "repro"],
            cwd=project,
            env=isolated_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        ) as dvc:
            read_until_finished(dvc.stdout, 5)
            assert server.stalled.wait(30)
            part = project / "data/raw/simplified/house.ndjson.part"
            wait_for(lambda: part.is_file() and part.stat().st_size == 100_000)
            os.killpg(dvc.pid, signal.SIGKILL)
            dvc.wait()
        server.release.set()
        server.reset_counts()

        output = repro(project, isolated_env)
        assert "download: 5 kept, 1 to do" in output
        size = (project / "data/demo" / stalled).stat().st_size
        assert server.served[stalled] == size - 100_000  # resumed, not fetched again
    leftovers = [
        path
        for path in (project / "data").rglob("*")
        if ".part" in path.name or path.name.endswith(".tmp")
    ]
    assert leftovers == []


def test_ctrl_c_stops_the_download_stage_and_the_next_run_resumes(project, isolated_env):
    """SIGINT (Ctrl-C) while a download hangs: exit 130 with a message saying what is kept;
    the partial file stays and the next run resumes it."""
    stalled = "numpy_bitmap/fish.npy"
    with GCSServer(project / "data" / "demo") as server:
        set_param(project, "dataset.base_url", server.base_url)
        server.faults.stall_after[stalled] = 50_000
        with start_stage(project, isolated_env, "download") as stage:
            read_until_finished(stage.stdout, 5)
            assert server.stalled.wait(30)
            part = project / "data/raw" / f"{stalled}.part"
            wait_for(lambda: part.is_file() and part.stat().st_size == 50_000)
            stage.send_signal(signal.SIGINT)
            _, err = stage.communicate(timeout=60)
        assert stage.returncode == 130
        assert "interrupted after" in err and "partial files resume" in err
        server.release.set()
        server.reset_counts()
        output = run([sys.executable, "-m", "pipeline", "download"], project, isolated_env).stdout
        assert "download [1/1] fish" in output
        size = (project / "data/demo" / stalled).stat().st_size
        assert server.served[stalled] == size - 50_000
