"""Guards at the edges of every stage: runs by hand refuse each other, a killed join leaves no
process behind, full disks and long names end in one line."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import small_filesystem

from pipeline.errors import ParamError, PipelineError
from pipeline.params import Params, parse_params
from pipeline.stages.join import run_join
from pipeline.stages.profile import run_profile
from pipeline.stages.report import run_report
from pipeline.stages.sample import run_sample
from pipeline.store import atomic

ROOT = Path(__file__).resolve().parents[1]


def params_with(**sections: dict) -> Params:
    """The project's params.yaml with some sections' keys replaced."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in sections.items():
        raw[section].update(values)
    return parse_params(raw)


def stage(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize("name", ["download", "join", "profile", "sample", "report"])
def test_a_stage_run_by_hand_refuses_a_second_one(tmp_path, name):
    """The lock is the kernel's (flock), held here as a first run would hold it."""
    locks = tmp_path / "data" / ".locks"
    locks.mkdir(parents=True)
    fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        done = stage(tmp_path, name)
    finally:
        os.close(fd)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"another `{name}` stage is running" in done.stderr
    assert "data/.locks" in done.stderr
    # released with its holder: the next run goes past the lock (and meets the missing params)
    again = stage(tmp_path, name)
    assert "another" not in again.stderr and again.returncode == 1


def test_a_report_name_too_long_for_the_file_system_is_a_parameter_error():
    with pytest.raises(ParamError, match=r"report\.name: is 250 characters long; at most 200"):
        params_with(report={"name": "r" * 250})
    assert params_with(report={"name": "r" * 200}).report.name == "r" * 200


def test_a_name_too_long_for_the_file_system_is_one_line(tmp_path):
    with pytest.raises(PipelineError, match="file name is too long") as caught:
        atomic.write_text(tmp_path / ("n" * 300), "text")
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_in_profile_sample_and_report_is_one_line(heads_layout, tmp_path):
    """Each stage's outputs on a real 16 KiB filesystem: none fits, each says so in one line
    and leaves no partial file (the profile keeps the categories it finished whole)."""
    categories = ("octopus", "cat", "fish", "The Eiffel Tower")
    store, summary = tmp_path / "store", tmp_path / "join.json"
    run_join(heads_layout, "simplified", categories, store, summary)
    params = params_with(
        dataset={"base_url": "x", "drawings": "simplified", "categories": list(categories)},
        sample={"n": 60, "seed": 3},
    )
    sample = tmp_path / "sample.parquet"
    run_sample(store, categories, params.sample, sample, heads_layout, "simplified")
    stages = {
        "profile": lambda out: run_profile(
            store, categories, out / "profile", out / "p.json", out / "r.json", 1
        ),
        "sample": lambda out: run_sample(
            store, categories, params.sample, out / "sample.parquet", heads_layout, "simplified"
        ),
        "report": lambda out: run_report(sample, summary, params, out),
    }
    for name, run_stage in stages.items():
        with small_filesystem(tmp_path / name, "16k") as mount:
            with pytest.raises(PipelineError, match="the disk is full") as caught:
                run_stage(mount)
            assert "\n" not in str(caught.value), name
            assert not [p for p in mount.rglob("*.tmp")], f"{name} left its staging"
            for whole in mount.rglob("*.parquet"):  # categories profiled before the disk filled
                pq.read_metadata(whole)


JOIN_SCRIPT = """
import sys
import time
from pathlib import Path
from pipeline.stages.join import run_join

if __name__ == "__main__":
    raw, out = Path(sys.argv[1]), Path(sys.argv[2])
    categories = tuple(sorted(p.stem for p in (raw / "simplified").glob("*.ndjson")))
    run_join(raw, "simplified", categories, out / "drawings", out / "join.json", workers=2)
"""


def session_processes(sid: int) -> set[int]:
    """The live (not zombie) processes of a session."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.add(int(entry.name))
    return found


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # polling a condition, with a deadline
    return condition()


def test_a_killed_join_leaves_no_worker_behind(rendered_heads, tmp_path):
    """SIGKILL of the join once its pool runs: the workers and the forkserver end with it
    (they used to wait on the dead parent's queues for ever)."""
    script = tmp_path / "join_all.py"
    script.write_text(JOIN_SCRIPT)
    join = subprocess.Popen(
        [sys.executable, str(script), str(rendered_heads), str(tmp_path / "out")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # the join, the forkserver, its resource tracker and two workers
        assert wait_for(lambda: len(session_processes(join.pid)) >= 4, 60)
        join.kill()
        join.wait()
        assert wait_for(lambda: not session_processes(join.pid), 20), session_processes(join.pid)
    finally:
        for pid in session_processes(join.pid):
            os.kill(pid, signal.SIGKILL)
