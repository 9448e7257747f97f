"""Why the rebuilt dvc.lock is not the committed one: each differing output, and what to do.

    python ci/lock_diff.py COMMITTED_LOCK REBUILT_LOCK

Prints one markdown bullet per differing output (nothing when the locks agree). An output
differs for one of three reasons, told apart by the stage's recorded inputs:
- the stage's code, data or parameters differ: the committed lock is stale (regenerate it);
- only an input made by an earlier stage differs: it follows from that output (listed too);
- its inputs are the same but its bytes are not: this machine computes it differently, which
  tests/test_portable.py exists to prevent (docs/ci.md, "The same bytes on every machine").
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

#: What each output's bytes depend on, to say where to look when only the machine differs.
PLATFORM_HINTS = {
    "reports/metrics.json": "the map's layout and its kNN agreement (pipeline/reportkit/"
    "embedding.py, pipeline/native/_tsne.c)",
    "data/processed/drawings": "the join's Parquet writing and its alignment check "
    "(pipeline/formats/verify.py, pipeline/formats/render.py; pyarrow's version in "
    "requirements.lock)",
    "data/sample/sample.parquet": "the sample's bitmaps and simplified strokes (pipeline/"
    "formats/render.py, pipeline/native/_native.c; pyarrow's version)",
}
HTML_HINT = (
    "the map's layout (pipeline/reportkit/embedding.py, pipeline/native/_tsne.c) or Bokeh's version"
)
PNG_HINT = (
    "the contact sheet's drawing (pipeline/reportkit/contact_sheet.py) or Pillow's and zlib's "
    "version"
)
DEFAULT_HINT = "the stage's arithmetic or a library's version (requirements.lock)"


def hint(path: str) -> str:
    if path in PLATFORM_HINTS:
        return PLATFORM_HINTS[path]
    if path.endswith(".html"):
        return HTML_HINT
    if path.endswith(".png"):
        return PNG_HINT
    return DEFAULT_HINT


def _files(entries: list[dict] | None) -> dict[str, str]:
    return {entry["path"]: entry.get("md5", "") for entry in entries or []}


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))


def explain(committed: dict, rebuilt: dict) -> list[str]:
    """Markdown bullets: every output of the rebuilt lock that differs from the committed one,
    with why and what to do."""
    old_stages, new_stages = committed.get("stages", {}), rebuilt.get("stages", {})
    differing = {
        path
        for name in old_stages.keys() & new_stages.keys()
        for path in _changed(
            _files(old_stages[name].get("outs")), _files(new_stages[name].get("outs"))
        )
    }
    lines = []
    for name in sorted(old_stages.keys() - new_stages.keys()):
        lines.append(
            f"- stage `{name}` is in the committed lock only: run `dvc repro` and commit `dvc.lock`"
        )
    for name in new_stages:
        new = new_stages[name]
        old = old_stages.get(name)
        if old is None:
            lines.append(f"- stage `{name}` is new: run `dvc repro` and commit `dvc.lock`")
            continue
        outs = _changed(_files(old.get("outs")), _files(new.get("outs")))
        deps = _changed(_files(old.get("deps")), _files(new.get("deps")))
        params = _changed(_flat(old.get("params")), _flat(new.get("params")))
        upstream = [dep for dep in deps if dep in differing]
        own = [dep for dep in deps if dep not in differing] + params
        if not outs and not own:
            continue
        named = ", ".join(f"`{path}`" for path in outs) or "its outputs (the same bytes)"
        if own:
            lines.append(
                f"- {named} (stage `{name}`): the committed lock is stale, its inputs changed "
                f"({', '.join(f'`{item}`' for item in own)}): run `make ci` (or `dvc repro`) and "
                "commit `dvc.lock` and `reports/*.json`"
            )
        elif upstream:
            lines.append(
                f"- {named} (stage `{name}`): follows from "
                f"{', '.join(f'`{dep}`' for dep in upstream)}, which differs (see its line)"
            )
        else:
            for path in outs:
                lines.append(
                    f"- `{path}` (stage `{name}`): same code, data and parameters, other bytes: "
                    f"this machine computes it differently ({hint(path)}). Run "
                    "`.venv/bin/python -m pytest tests/test_portable.py` here; if it passes, this "
                    "platform is one it cannot stand in for (another OS, C library or "
                    "architecture): report it with `pip freeze`, `uname -m` and this list, and do "
                    "not commit this lock"
                )
    return lines


def _flat(params: dict | None, prefix: str = "") -> dict[str, str]:
    """params.yaml values as `file:key.sub` -> repr, to compare."""
    out = {}
    for key, value in (params or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}{':' if not prefix else '.'}"))
        else:
            out[name] = repr(value)
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python ci/lock_diff.py COMMITTED_LOCK REBUILT_LOCK", file=sys.stderr)
        return 2
    committed, rebuilt = (yaml.safe_load(Path(path).read_text()) or {} for path in argv)
    print("\n".join(explain(committed, rebuilt)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
