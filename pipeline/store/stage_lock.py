"""One run of a stage at a time, also by hand: `dvc repro` holds DVC's repository lock, but
two `python -m pipeline join` would clean up each other's staging folders."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import PipelineError

LOCK_DIR = Path("data/.locks")


@contextlib.contextmanager
def stage_lock(stage: str, folder: Path = LOCK_DIR) -> Iterator[None]:
    """Hold `<folder>/<stage>.lock` (flock: the kernel releases it when the process dies, so a
    killed run leaves no stale lock) for the stage's run; refuse with one line if held."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stage}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PipelineError(
                f"{path}: another `{stage}` stage is running in this project; wait for it to "
                "end (or stop it) and rerun"
            ) from None
        yield
    finally:
        os.close(fd)
