"""The whole pipeline under a real `dvc repro` in a temporary git repository."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
from conftest import run, set_param, start_stage

pytestmark = pytest.mark.slow

DEMO_CATEGORIES = ("octopus", "cat", "fish", "flower", "house", "The Eiffel Tower")


def repro(project: Path, env: dict[str, str], *args: str) -> set[str]:
    """Run `dvc repro`; return the names of the stages it ran."""
    output = run(["dvc", "repro", *args], project, env).stdout
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_repro_builds_the_report_and_reruns_only_what_changed(project, isolated_env):
    env = isolated_env
    assert repro(project, env) == {"download", "join", "profile", "sample", "report"}

    html = project / "reports" / "quickdraw.html"
    assert html.stat().st_size > 100_000
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["sample_size"] == 1000
    sample = pq.read_table(project / "data" / "sample" / "sample.parquet")
    assert sample.num_rows == 1000
    assert set(sample["category"].to_pylist()) == set(DEMO_CATEGORIES)
    for category in DEMO_CATEGORIES:
        assert (project / "data" / "raw" / "manifest" / f"{category}.json").is_file()
    assert "Eiffel%20Tower" in " ".join(
        p.name for p in (project / "data/processed/drawings").iterdir()
    )
    lock = (project / "dvc.lock").read_text()
    assert "reports/quickdraw.html" in lock

    # Nothing changed: nothing runs.
    assert repro(project, env) == set()
    status = run(["dvc", "status"], project, env).stdout
    assert "up to date" in status

    # A sampling parameter: sample and report rerun, the download and the join do not.
    set_param(project, "sample.n", 500)
    assert repro(project, env) == {"sample", "report"}
    assert json.loads((project / "reports/metrics.json").read_text())["sample_size"] == 500

    # A report parameter: only the report.
    set_param(project, "report.title", "Octopuses and friends")
    assert repro(project, env) == {"report"}
    assert b"Octopuses and friends" in html.read_bytes()

    shown = run(["dvc", "metrics", "show"], project, env).stdout
    assert "sample_size" in shown and "500" in shown


def test_the_sample_brings_the_strokes_of_the_format_downloaded(project, isolated_env):
    """Simplified strokes without times; switched to raw, everything reruns and the sample
    carries the simplified raw strokes with their times; binary (.bin) without times again."""
    repro(project, isolated_env)
    sample = pq.read_table(project / "data" / "sample" / "sample.parquet")
    assert sample["ts"].null_count == sample.num_rows and min(map(len, sample["xs"].to_pylist()))
    set_param(project, "dataset.drawings", "raw")
    assert {"join", "sample", "report"} <= repro(project, isolated_env)
    raw = pq.read_table(project / "data" / "sample" / "sample.parquet")
    assert raw["key_id"].equals(sample["key_id"]) and raw["ts"].null_count == 0
    assert list(map(len, raw["ts"].to_pylist())) == list(map(len, raw["xs"].to_pylist()))
    set_param(project, "dataset.drawings", "binary")
    set_param(project, "dataset.extension", "bin")
    assert {"join", "sample", "report"} <= repro(project, isolated_env)
    binary = pq.read_table(project / "data" / "sample" / "sample.parquet")
    # the demo's .bin holds the simplified strokes: the same points, no times
    assert binary.select(["key_id", "xs", "ys", "stroke_ends"]).equals(
        sample.select(["key_id", "xs", "ys", "stroke_ends"])
    )
    assert binary["ts"].null_count == binary.num_rows


def test_same_inputs_same_report_bytes(project, isolated_env):
    repro(project, isolated_env)
    first = (project / "reports" / "quickdraw.html").read_bytes()
    repro(project, isolated_env, "--force", "report")
    assert (project / "reports" / "quickdraw.html").read_bytes() == first


def test_ctrl_c_stops_the_report_with_one_line_and_leaves_its_outputs(project, isolated_env):
    """SIGINT to the stage's process group (a terminal's Ctrl-C) while its layout worker runs:
    exit 130, one line on stderr (no traceback, none from the worker), no worker left behind,
    and the outputs as they were, with no staging file."""
    repro(project, isolated_env)
    reports = project / "reports"
    before = {path.name: path.read_bytes() for path in reports.iterdir()}
    stage = start_stage(project, isolated_env, "report", start_new_session=True)
    deadline = time.monotonic() + 30
    while not psutil.Process(stage.pid).children():  # the layout worker has started
        assert time.monotonic() < deadline and stage.poll() is None, "no worker started"
        time.sleep(0.005)
    worker = psutil.Process(stage.pid).children()[0]
    os.killpg(stage.pid, signal.SIGINT)
    _, stderr = stage.communicate(timeout=60)
    assert stage.returncode == 130
    assert stderr.splitlines() == [
        "report: interrupted; its outputs are written whole or not at all: run `dvc repro` again"
    ]
    assert not worker.is_running() or worker.status() == psutil.STATUS_ZOMBIE
    assert {path.name: path.read_bytes() for path in reports.iterdir()} == before


def test_dvc_exp_run_with_a_set_param(project, isolated_env):
    repro(project, isolated_env)
    run(["git", "add", "-A"], project, isolated_env)
    run(["git", "commit", "-qm", "built"], project, isolated_env)
    run(["dvc", "exp", "run", "-S", "sample.n=100"], project, isolated_env)
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert metrics["sample_size"] == 100
    shown = run(["dvc", "exp", "show", "--csv"], project, isolated_env).stdout
    assert "100" in shown


BAD_SAMPLE_PARAMS = [
    ("sample.n", 10**9, "params.yaml: sample.n: asks for 1000000000 drawings"),
    ("sample.countries", ["ZZ"], "params.yaml: sample.countries: no drawing from 'ZZ'"),
    ("sample.n", 0, "params.yaml: sample.n: must be at least 1"),
]


def test_bad_sample_params_stop_with_one_clear_message(project, isolated_env):
    repro(project, isolated_env)
    original = (project / "params.yaml").read_text()
    for key, value, message in BAD_SAMPLE_PARAMS:
        set_param(project, key, value)
        result = run(["dvc", "repro"], project, isolated_env, check=False)
        assert result.returncode != 0, key
        assert message in result.stderr + result.stdout
        assert not (project / "data" / "sample" / "sample.parquet").exists()
        (project / "params.yaml").write_text(original)


def test_unknown_category_stops_the_download(project, isolated_env):
    set_param(project, "dataset.categories", ["octopuss"])
    result = run(["dvc", "repro"], project, isolated_env, check=False)
    assert result.returncode != 0
    assert "'octopuss' is not a Quick, Draw! category; did you mean 'octopus'?" in (
        result.stderr + result.stdout
    )
    assert not (project / "data" / "raw" / "numpy_bitmap").exists() or not any(
        (project / "data" / "raw" / "numpy_bitmap").iterdir()
    )


@pytest.mark.parametrize(("drawings", "extension"), [("raw", "ndjson"), ("binary", "bin")])
def test_other_drawing_formats_build_the_same_report(project, isolated_env, drawings, extension):
    set_param(project, "dataset.categories", ["octopus"])
    set_param(project, "dataset.drawings", drawings)
    set_param(project, "dataset.extension", extension)
    set_param(project, "sample.n", 200)
    assert repro(project, isolated_env) == {"download", "join", "profile", "sample", "report"}
    assert (project / "data" / "raw" / drawings / f"octopus.{extension}").is_file()
    assert json.loads((project / "reports" / "join.json").read_text())["format"] == drawings
    summary = json.loads((project / "reports" / "join_categories.json").read_text())
    assert summary["categories"]["octopus"]["alignment"]["agreement"] == 1.0
    assert json.loads((project / "reports" / "metrics.json").read_text())["sample_size"] == 200
