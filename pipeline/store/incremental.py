"""Per-category work a stage keeps between runs.

DVC runs stages one at a time and rewrites the whole dvc.lock after each, so 345 stages per
step cost minutes of bookkeeping (docs, "Why one stage per step"). Each per-category step is
therefore one stage that keeps its own record of what its outputs hold, category by category:
a *piece* is one category's files in the stage's outputs, made from a *key* (a JSON-able value
that changes whenever the piece would come out differently). A run

- keeps the pieces whose key is unchanged (those made from another key are replaced),
- sets aside (moves into `data/.stash/<stage>/`) the pieces of categories no longer wanted, so
  that adding one back costs a rename,
- restores wanted pieces from the stash when it holds them under the same key,
- and leaves the rest for the stage to compute.

Moves are renames inside `data/`, so setting aside and restoring are instant at any size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pipeline

STASH = Path("data/.stash")
#: The repository (or site-packages) folder that holds the package: dvc.yaml's paths start here.
ROOT = Path(pipeline.__file__).resolve().parent.parent
_KEY_FILE = "key.json"


def canonical(key: object) -> str:
    """The key as the one string that is stored and compared."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def fingerprint(paths: Iterable[str | Path]) -> str:
    """SHA-256 over files' names and bytes: the code a piece is made with. Names, not paths:
    the same code in another clone (another folder) has the same fingerprint."""
    digest = hashlib.sha256()
    for path in sorted((Path(p) for p in paths), key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def code_fingerprint(files: Iterable[str]) -> str:
    """The fingerprint of code files named as dvc.yaml names them (relative to the repository),
    wherever in the package they live."""
    return fingerprint(ROOT / name for name in files)


@dataclass(frozen=True)
class Piece:
    """One category's files in a stage's outputs, and the key they were made from."""

    category: str
    key: str  # canonical()
    files: tuple[Path, ...]
    folder: Path | None = None  # a folder of the piece's own, removed once emptied

    def complete(self) -> bool:
        return all(path.is_file() for path in self.files)


@dataclass
class Plan:
    """What a run does, category by category (categories in the order they were wanted)."""

    kept: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)

    def summary(self, stage: str) -> str:
        parts = [f"{len(self.kept)} kept"]
        if self.restored:
            parts.append(f"{len(self.restored)} restored from {STASH}")
        if self.set_aside:
            parts.append(f"{len(self.set_aside)} set aside in {STASH}")
        parts.append(f"{len(self.todo)} to do")
        return f"{stage}: {', '.join(parts)}"


class Shelf:
    """The stash of one stage: the pieces of categories taken out of the parameters, one per
    category (the last one set aside), each in a folder named by the category's digest."""

    def __init__(self, stage: str, root: Path = STASH, base: Path = Path(".")) -> None:
        self.root = root / stage
        self.base = base

    def _folder(self, category: str) -> Path:
        return self.root / hashlib.sha256(category.encode()).hexdigest()[:32]

    def put(self, piece: Piece) -> None:
        """Move the piece's files into the stash, replacing what it held for the category.

        A piece without a key (damaged, or of unknown origin) is deleted instead.
        """
        folder = self._folder(piece.category)
        if folder.exists():
            shutil.rmtree(folder)
        if not piece.key:
            discard(piece)
            return
        for path in piece.files:
            if path.is_file():
                target = folder / path.relative_to(self.base)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
        _remove_folder(piece)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _KEY_FILE).write_text(piece.key, encoding="utf-8")

    def take(self, piece: Piece) -> bool:
        """Move the category's stashed piece back into place if it has this key.

        A stashed piece with another key can never be used again (the category is wanted with
        this key now), so it is deleted.
        """
        folder = self._folder(piece.category)
        try:
            key = (folder / _KEY_FILE).read_text(encoding="utf-8")
        except OSError:
            return False
        stashed = [folder / path.relative_to(self.base) for path in piece.files]
        if key != piece.key or not all(path.is_file() for path in stashed):
            shutil.rmtree(folder)
            return False
        for source, path in zip(stashed, piece.files, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, path)
        shutil.rmtree(folder)
        return True


def discard(piece: Piece) -> None:
    """Delete a piece that cannot be kept (damaged, or of unknown origin)."""
    for path in piece.files:
        path.unlink(missing_ok=True)
    _remove_folder(piece)


def _remove_folder(piece: Piece) -> None:
    if piece.folder is not None and piece.folder.is_dir() and not any(piece.folder.iterdir()):
        piece.folder.rmdir()


def plan(
    wanted: Iterable[Piece],
    held: Mapping[str, Piece],
    shelf: Shelf,
) -> Plan:
    """Decide and carry out keep / set aside / restore / discard; return what is left to do.

    `held` maps each category the outputs hold now to its piece (its key as recorded in the
    outputs). A held piece is kept when its key equals the wanted one and it is complete; one
    of a category no longer wanted is set aside; one made from another key stays until the
    stage replaces it (so a failed run keeps the old version; the stash keeps only removed
    categories, so its size stays bounded by what was removed).
    """
    result = Plan()
    wanted = list(wanted)
    names = {piece.category for piece in wanted}
    for category, piece in sorted(held.items()):
        if category not in names:
            shelf.put(piece)
            result.set_aside.append(category)
    for piece in wanted:
        old = held.get(piece.category)
        if old is not None and old.key == piece.key and old.complete():
            result.kept.append(piece.category)
            continue
        if shelf.take(piece):
            result.restored.append(piece.category)
        else:
            result.todo.append(piece.category)
    return result
