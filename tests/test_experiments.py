"""`dvc exp show` fits a screen: real `dvc exp run`s at 6 and at 50 categories list the same
handful of metric columns (pipeline/stats/headline.py), and the per-category figures are in the
reports/*_categories.json files instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run, set_param

pytestmark = pytest.mark.slow

MAX_METRIC_COLUMNS = 20


def flatten(figures: dict, prefix: str = "") -> set[str]:
    """The column names `dvc exp show` gives a metrics file's numbers and strings."""
    names = set()
    for key, value in figures.items():
        if isinstance(value, dict):
            names |= flatten(value, f"{prefix}{key}.")
        else:
            names.add(f"{prefix}{key}")
    return names


def exp_run(project: Path, env: dict[str, str], *args: str) -> dict[str, set[str]]:
    """`dvc exp run`, then the metric columns of `dvc exp show` (file -> names) and the
    number of dependency columns."""
    run(["dvc", "exp", "run", *args], project, env)
    rows = json.loads(run(["dvc", "exp", "show", "--json"], project, env).stdout)
    columns: dict[str, set[str]] = {}
    deps: set[str] = set()
    for commit in rows:
        for row in [commit, *(exp for e in commit["experiments"] or [] for exp in e["revs"])]:
            data = row.get("data") or {}
            for path, metrics in (data.get("metrics") or {}).items():
                columns.setdefault(path, set()).update(flatten(metrics.get("data") or {}))
            deps |= set(data.get("deps") or {})
    return {"metrics": columns, "deps": deps}


def count(columns: dict[str, set[str]]) -> int:
    return sum(len(names) for names in columns.values())


def test_six_categories(project: Path, isolated_env: dict[str, str]) -> None:
    shown = exp_run(project, isolated_env, "-S", "sample.n=300")
    metrics = shown["metrics"]
    assert set(metrics) == {"reports/join.json", "reports/profile.json", "reports/metrics.json"}
    assert count(metrics) <= MAX_METRIC_COLUMNS, metrics
    # nothing per category: no column is named after one
    assert not any("octopus" in name for names in metrics.values() for name in names)
    # the dependency columns: the report's code is one folder, not a file each
    assert "pipeline/reportkit" in shown["deps"]
    assert not any(dep.startswith("pipeline/reportkit/") for dep in shown["deps"])
    # the per-category figures are there, outside the metrics
    joined = json.loads((project / "reports" / "join_categories.json").read_text())
    assert joined["categories"]["octopus"]["drawings"] > 0
    profiled = json.loads((project / "reports" / "profile_categories.json").read_text())
    assert profiled["categories"]["The Eiffel Tower"]["countries"] > 0


def test_fifty_categories(
    project: Path, isolated_env: dict[str, str], rendered_heads: Path
) -> None:
    categories = sorted(path.stem for path in (rendered_heads / "simplified").glob("*.ndjson"))
    assert len(categories) >= 50
    set_param(project, "dataset.base_url", str(rendered_heads))
    set_param(project, "dataset.categories", categories[:50])
    set_param(project, "sample.n", 300)
    set_param(project, "profile.min_drawings", 5)
    metrics = exp_run(project, isolated_env)["metrics"]  # the workspace's params
    joined = json.loads((project / "reports" / "join_categories.json").read_text())
    assert len(joined["categories"]) == 50
    assert count(metrics) <= MAX_METRIC_COLUMNS, metrics
    # the same columns as the committed metrics of the six demo categories
    committed = {path: flatten(json.loads((ROOT / path).read_text())) for path in metrics}
    assert metrics == committed
