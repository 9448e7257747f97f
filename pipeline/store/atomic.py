"""Atomic writes: outputs appear complete at their final path or not at all."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import PipelineError


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it into place, else delete it.

    Works for files and directories alike: whatever the caller creates at the yielded path
    replaces `target` in one rename, so a crash or an error never leaves a partial output.
    """
    target = Path(target)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        staged = tmp / target.name
        yield staged
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
        fsync_dir(target.parent)
    except OSError as exc:
        reason = environment_error(exc)
        if reason is None:
            raise
        raise PipelineError(
            f"{target}: cannot write it: {reason} (no partial file was left)"
        ) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def environment_error(exc: OSError) -> str | None:
    """What the user must fix when a write failed for want of space or a shorter name, or
    None for any other error. Arrow's errors carry the errno only in their text."""
    text = str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "quota" in text:
        return "the disk is full; free space there and rerun"
    if exc.errno == errno.ENAMETOOLONG or "name too long" in text:
        return "the file name is too long for the file system; choose a shorter one"
    return None


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `target` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write `text` (UTF-8, newlines as given) to `target` atomically."""
    write_bytes(target, text.encode("utf-8"))


def remove_stale(*roots: Path) -> list[Path]:
    """Delete the staging folders (`.<name>.<random>.tmp`) a killed run left under `roots`.

    Stages run one at a time (DVC holds its repository lock), so at a stage's start no other
    writer owns them. Returns what was removed.
    """
    removed = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob(".*.tmp")):
            if path.is_dir() and path.exists():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
