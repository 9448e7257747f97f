"""The download's list of the categories it holds, in the order of `dataset.categories`.

The stages after the download depend on this file in dvc.yaml, not on the parameter: DVC
copies a parameter's value into dvc.lock for every stage that lists it, and every stage that
runs parses and rewrites the whole lock, so 345 names listed by five stages made each run
slower (docs, "Why one stage per step"). The list changes exactly when the parameter does,
and the later stages check that it matches params.yaml, so a stage run by hand after an edit
cannot work from another list than DVC tracked.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.store import atomic

NAME = "categories.json"


def write(raw_dir: Path, categories: tuple[str, ...]) -> None:
    atomic.write_text(raw_dir / NAME, json.dumps(list(categories), indent=1) + "\n")


def check(raw_dir: Path, categories: tuple[str, ...]) -> None:
    """Stop unless the download's list is `categories` (params.yaml's, in the same order)."""
    path = raw_dir / NAME
    try:
        held = tuple(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise PipelineError(
            f"{path}: not readable ({error}); run the download stage first (dvc repro)"
        ) from error
    if held != categories:
        raise PipelineError(
            f"{path} lists other categories than params.yaml's dataset.categories: the "
            "download has not run since they changed; run `dvc repro` (or `python -m "
            "pipeline download`) first"
        )
