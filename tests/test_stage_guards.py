"""Guards at the edges of every stage: runs by hand refuse each other, a killed join leaves no
process behind, full disks and long names end in one line."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest


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
