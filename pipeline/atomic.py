"""Atomic writes: outputs appear complete at their final path or not at all."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


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
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staged = tmp / target.name
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
