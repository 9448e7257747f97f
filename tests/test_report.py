"""The report: one self-contained file, identical bytes for identical inputs, useful metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.join import run_join
from pipeline.params import load_params, parse_params
from pipeline.report import run_report
from pipeline.sample import run_sample

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("octopus", "cat", "fish", "The Eiffel Tower")


def params_for(n: int = 60, **report):
    raw = {
        "dataset": {
            "base_url": "data/demo",
            "drawings": "simplified",
            "categories": list(CATEGORIES),
        },
        "sample": {"n": n, "seed": 3},
        "report": {"name": "heads", **report},
    }
    return parse_params(raw)


@pytest.fixture
def built(heads_layout: Path, tmp_path: Path):
    """Join and sample the real heads; return a function that builds the report into a folder."""
    params = params_for()
    run_join(heads_layout, "simplified", CATEGORIES, tmp_path / "store", tmp_path / "join.json")
    run_sample(tmp_path / "store", CATEGORIES, params.sample, tmp_path / "sample.parquet")

    def build(out: Path, report_params=params) -> Path:
        run_report(tmp_path / "sample.parquet", tmp_path / "join.json", report_params, out)
        return out

    return build


def test_report_is_self_contained(built, tmp_path):
    page = (built(tmp_path / "a") / "heads.html").read_text()
    assert "Bokeh.embed.embed_item" in page
    assert not re.search(r"<script[^>]+src=", page), "BokehJS must be inline"
    assert "<link" not in page
    assert "cdn.bokeh.org" not in page
    assert "CC BY 4.0" in page and "Google" in page
    assert "60 of 100 drawings" in page


def test_two_builds_are_byte_identical(built, tmp_path):
    first = (built(tmp_path / "a") / "heads.html").read_bytes()
    second = (built(tmp_path / "b") / "heads.html").read_bytes()
    assert first == second
    assert (tmp_path / "a" / "metrics.json").read_bytes() == (
        tmp_path / "b" / "metrics.json"
    ).read_bytes()


def test_fresh_process_builds_the_same_bytes(built, tmp_path):
    first = (built(tmp_path / "a") / "heads.html").read_bytes()
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from test_report import params_for; from pipeline.report import run_report;"
        "t = Path(sys.argv[2]);"
        "run_report(t / 'sample.parquet', t / 'join.json', params_for(), t / 'c')"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path)],
        check=True,
        cwd=ROOT,
    )
    assert (tmp_path / "c" / "heads.html").read_bytes() == first


def test_metrics(built, tmp_path):
    metrics = json.loads((built(tmp_path / "a") / "metrics.json").read_text())
    assert metrics["sample_size"] == 60
    assert metrics["source_drawings"] == 100
    assert sum(metrics["top_countries"].values()) <= 60
    counts = Counter(pq.read_table(tmp_path / "sample.parquet")["countrycode"].to_pylist())
    assert metrics["top_countries"] == dict(counts.most_common(len(metrics["top_countries"])))
    assert metrics["countries"] == len(counts)
    assert 0 < metrics["recognized_share"] <= 1
    assert metrics["report_bytes"] == (tmp_path / "a" / "heads.html").stat().st_size


def test_random_layout_and_params_change_the_page(built, tmp_path):
    pca = (built(tmp_path / "a") / "heads.html").read_bytes()
    random = (built(tmp_path / "b", params_for(layout="random")) / "heads.html").read_bytes()
    assert pca != random
    assert b"random height" in random


def test_shipped_report_params_parse():
    assert load_params(ROOT / "params.yaml").report.name == "quickdraw"
