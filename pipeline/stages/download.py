"""Download stage: every category of params.yaml, several at a time, each kept once fetched.

One stage for all categories (not one per category: docs, "Why one stage per step"). The
manifest `data/raw/manifest/<cat>.json` is the stage's record of a category: a category whose
manifest names the same source, format and limit is kept; one no longer listed is set aside
in `data/.stash/download/` and restored from there when it comes back (pipeline.store.incremental).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from pipeline.download import DiskFull, RetryPolicy, download_category, make_transport
from pipeline.errors import PipelineError
from pipeline.params import DatasetParams
from pipeline.store import atomic, category_list, incremental
from pipeline.store.incremental import Piece
from pipeline.store.layout import EXTENSIONS, bitmap_object, drawings_object, manifest_object

#: Categories fetched at once: small files are latency-bound (HEAD + GET each), so several
#: in flight fill the link; large files are sliced by the download itself.
PARALLEL_CATEGORIES = 6
#: Seconds Ctrl-C waits for the downloads in flight to stop at their next chunk.
STOP_GRACE = 2.0


def _piece(raw_dir: Path, drawings: str, category: str, key: str) -> Piece:
    files = (
        raw_dir / bitmap_object(category),
        raw_dir / drawings_object(drawings, category),
        raw_dir / manifest_object(category),
    )
    return Piece(category, key, files)


def _key(drawings: str, limit: int | None, urls: list[str]) -> str:
    return incremental.canonical({"drawings": drawings, "limit": limit, "urls": urls})


def wanted_pieces(dataset: DatasetParams, raw_dir: Path) -> list[Piece]:
    """What the parameters ask for: one piece per category, keyed by source, format, limit."""
    transport = make_transport(dataset.base_url)
    pieces = []
    for category in dataset.categories:
        objects = (bitmap_object(category), drawings_object(dataset.drawings, category))
        key = _key(dataset.drawings, dataset.limit, [transport.url(obj) for obj in objects])
        pieces.append(_piece(raw_dir, dataset.drawings, category, key))
    return pieces


def held_pieces(raw_dir: Path) -> dict[str, Piece]:
    """What the outputs hold, by the manifests; an unreadable manifest holds nothing."""
    held = {}
    for path in sorted((raw_dir / "manifest").glob("*.json")):
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            category, drawings = manifest["category"], manifest["drawings"]
            objects = (bitmap_object(category), drawings_object(drawings, category))
            urls = [manifest["files"][obj]["url"] for obj in objects]
            sizes = [manifest["files"][obj]["size"] for obj in objects]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        piece = _piece(raw_dir, drawings, category, _key(drawings, manifest["limit"], urls))
        data = zip(piece.files[:2], sizes, strict=True)
        if all(path.is_file() and path.stat().st_size == size for path, size in data):
            held[category] = piece
        else:  # a file was removed or damaged by hand: fetch the category again
            held[category] = Piece(category, "", piece.files)
    return held


def remove_unowned(raw_dir: Path, wanted: list[Piece]) -> None:
    """Delete what no wanted category owns: files of another format, and partial files of a
    killed run or a file renamed into place just before a kill, of categories not wanted."""
    owned = {path for piece in wanted for path in piece.files}
    for folder in ["numpy_bitmap", "manifest", *EXTENSIONS]:
        for path in sorted((raw_dir / folder).glob("*")):
            if not path.is_file():
                continue
            name = path.name.split(".part", 1)[0]  # a partial file resumes for its target
            if path.parent / name not in owned:
                path.unlink()


def _line(number: int, total: int, category: str, manifest: dict, seconds: float) -> str:
    files = manifest["files"].values()
    size = sum(entry["size"] for entry in files)
    drawings = min(entry["drawings"] for entry in files)
    width = len(str(total))
    return (
        f"download [{number:>{width}}/{total}] {category}: {drawings:,} drawings, "
        f"{size / 1e6:,.1f} MB in {seconds:.1f} s"
    )


class _Bytes:
    """One bytes bar (rate, total so far) over every download in flight, on a terminal."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bar = tqdm(
            unit="B", unit_scale=True, unit_divisor=1024, desc="download",
            disable=not sys.stderr.isatty(), leave=False,
        )  # fmt: skip

    def add(self, count: int) -> None:
        with self._lock:
            self._bar.update(count)

    def say(self, line: str) -> None:
        with self._lock:
            self._bar.write(line, file=sys.stdout)
            sys.stdout.flush()

    def close(self) -> None:
        self._bar.close()


def fetch_all(
    dataset: DatasetParams, categories: list[str], raw_dir: Path, retry: RetryPolicy | None = None
) -> None:
    """Download `categories` several at a time; one line per finished or failed category.

    A failed category (a stall given up, a 404...) lets the others go on, and the stage then
    ends with the list of what failed; a full disk starts no new category (they would only
    fill it further). On Ctrl-C the downloads in flight stop at their next chunk: every
    finished category is recorded by its manifest and every partial file resumes next time.
    """
    stop = threading.Event()
    progress = _Bytes()
    pending = iter(categories)
    running: dict[Future, tuple[str, float]] = {}
    failed: list[tuple[str, PipelineError]] = []
    done = 0

    def submit(pool: ThreadPoolExecutor) -> None:
        for category in pending:
            future = pool.submit(
                download_category, dataset.base_url, dataset.drawings, category, raw_dir,
                dataset.limit, progress=False, on_bytes=progress.add, stop=stop, retry=retry,
            )  # fmt: skip
            running[future] = (category, time.monotonic())
            return

    with ThreadPoolExecutor(PARALLEL_CATEGORIES) as pool:
        try:
            for _ in range(PARALLEL_CATEGORIES):
                submit(pool)
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    category, started = running.pop(future)
                    try:
                        manifest = future.result()
                    except PipelineError as exc:
                        failed.append((category, exc))
                        if len(categories) > 1:
                            progress.say(f"download: {category}: failed: {exc}")
                    else:
                        done += 1
                        seconds = time.monotonic() - started
                        progress.say(_line(done, len(categories), category, manifest, seconds))
                    if not any(isinstance(exc, DiskFull) for _, exc in failed):
                        submit(pool)
        except KeyboardInterrupt:
            stop.set()
            _, stuck = wait(running, timeout=STOP_GRACE)
            progress.close()
            print(
                f"download: interrupted after {done} of {len(categories)} categories; "
                "finished ones are kept and partial files resume: run `dvc repro` again",
                file=sys.stderr,
            )
            if stuck:  # a stalled connection ends only at its read timeout: do not wait for it
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(130)
            raise SystemExit(130) from None
    progress.close()
    if len(failed) == 1:
        raise failed[0][1]
    if failed:
        names = ", ".join(repr(category) for category, _ in failed)
        raise PipelineError(
            f"download: {len(failed)} of {len(categories)} categories failed ({names}; each "
            f"one's error above), {done} done and kept; rerun to resume the failed ones"
        )


def run_download(dataset: DatasetParams, raw_dir: Path) -> incremental.Plan:
    """Bring `raw_dir` to exactly the wanted categories, fetching only what it lacks."""
    atomic.remove_stale(raw_dir)
    wanted = wanted_pieces(dataset, raw_dir)
    shelf = incremental.Shelf("download", raw_dir.parent / ".stash", base=raw_dir.parent)
    plan = incremental.plan(wanted, held_pieces(raw_dir), shelf)
    remove_unowned(raw_dir, wanted)
    for folder in (raw_dir / "numpy_bitmap", raw_dir / dataset.drawings, raw_dir / "manifest"):
        folder.mkdir(parents=True, exist_ok=True)  # DVC wants every declared output to exist
    print(plan.summary("download"))
    fetch_all(dataset, plan.todo, raw_dir)
    category_list.write(raw_dir, dataset.categories)
    return plan
