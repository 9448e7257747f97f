"""The report: one self-contained file, identical bytes for identical inputs, useful metrics."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import PipelineError
from pipeline.params import load_params, parse_params
from pipeline.reportkit.drawings import from_sample
from pipeline.reportkit.embedding import knn_agreement
from pipeline.reportkit.header import Provenance, credit_text, header_html
from pipeline.reportkit.strokes import strokes_of
from pipeline.stages.join import run_join
from pipeline.stages.report import (
    ReportInputs,
    load_inputs,
    map_coordinates,
    render_html,
    run_report,
)
from pipeline.stages.sample import run_sample
from pipeline.store.layout import GOOGLE_BASE_URL
from pipeline.store.schema import SAMPLE

ROOT = Path(__file__).resolve().parents[1]
CATEGORIES = ("octopus", "cat", "fish", "The Eiffel Tower")
MANIFEST = {
    "category": "octopus",
    "drawings": "simplified",
    "limit": 25,
    "files": {
        "numpy_bitmap/octopus.npy": {
            "url": "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/octopus.npy",
            "size": 19680,
            "md5": "0123456789abcdef0123456789abcdef",
            "crc32c": "OAVVzg==",
            "drawings": 25,
        }
    },
}


def params_for(n: int = 60, base_url: str = GOOGLE_BASE_URL, **report):
    raw = {
        "dataset": {
            "base_url": base_url,
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
    sample = tmp_path / "sample.parquet"
    run_sample(tmp_path / "store", CATEGORIES, params.sample, sample, heads_layout, "simplified")

    manifests = tmp_path / "manifest"
    manifests.mkdir()
    (manifests / "octopus.json").write_text(json.dumps(MANIFEST))

    def build(out: Path, report_params=params) -> Path:
        run_report(
            tmp_path / "sample.parquet", tmp_path / "join.json", report_params, out, manifests
        )
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
    built(tmp_path / "a")
    built(tmp_path / "b")
    for name in ("heads.html", "heads.png", "metrics.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_fresh_process_builds_the_same_bytes(built, tmp_path):
    first = (built(tmp_path / "a") / "heads.html").read_bytes()
    script = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from test_report import params_for; from pipeline.stages.report import run_report;"
        "t = Path(sys.argv[2]);"
        "run_report(t / 'sample.parquet', t / 'join.json', params_for(), t / 'c', t / 'manifest')"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent), str(tmp_path)],
        check=True,
        cwd=ROOT,
    )
    assert (tmp_path / "c" / "heads.html").read_bytes() == first
    assert (tmp_path / "c" / "heads.png").read_bytes() == (
        tmp_path / "a" / "heads.png"
    ).read_bytes()


def test_metrics(built, tmp_path):
    metrics = json.loads((built(tmp_path / "a") / "metrics.json").read_text())
    assert metrics["sample_size"] == 60
    assert metrics["source_drawings"] == 100
    counts = Counter(pq.read_table(tmp_path / "sample.parquet")["countrycode"].to_pylist())
    assert counts[metrics["top_country"]] == max(counts.values())
    assert metrics["countries"] == len(counts)
    assert 0 < metrics["recognized_share"] <= 1
    assert metrics["report_bytes"] == (tmp_path / "a" / "heads.html").stat().st_size
    assert metrics["contact_sheet_bytes"] == (tmp_path / "a" / "heads.png").stat().st_size
    # The default t-SNE map groups the four categories; the score is of the page's own map.
    sample = pq.read_table(tmp_path / "sample.parquet")
    drawings = from_sample(sample, CATEGORIES, top=10)
    coords = map_coordinates(drawings.bitmaps, "tsne", seed=3)
    assert metrics["layout_knn_agreement"] == round(knn_agreement(coords, drawings.category), 4)
    assert metrics["pixel_knn_agreement"] == round(
        knn_agreement(drawings.bitmaps.reshape(60, -1), drawings.category), 4
    )
    assert metrics["layout_knn_agreement"] > 0.25  # four categories: chance is about a quarter


def test_random_layout_and_params_change_the_page(built, tmp_path):
    tsne = (built(tmp_path / "a") / "heads.html").read_bytes()
    pca = (built(tmp_path / "b", params_for(layout="pca")) / "heads.html").read_bytes()
    random = (built(tmp_path / "c", params_for(layout="random")) / "heads.html").read_bytes()
    assert len({tsne, pca, random}) == 3
    assert b"random height" in random
    assert b"principal component" in pca


def test_shipped_report_params_parse():
    assert load_params(ROOT / "params.yaml").report.name == "quickdraw"


def test_header_shows_the_manifest_the_alignment_and_the_attribution(built, tmp_path):
    page = (built(tmp_path / "a") / "heads.html").read_text()
    entry = MANIFEST["files"]["numpy_bitmap/octopus.npy"]
    assert entry["url"] in page and entry["md5"] in page and entry["crc32c"] in page
    summary = json.loads((tmp_path / "join.json").read_text())
    agreement = summary["categories"]["octopus"]["alignment"]["agreement"]
    assert f"{agreement:.4g} ({summary['categories']['octopus']['alignment']['checked']}" in page
    assert "The Quick, Draw! Dataset" in page and "creativecommons.org/licenses/by/4.0" in page
    assert "seed 3" in page and "The Eiffel Tower" in page
    assert "Synthetic" not in page


def test_the_demo_data_is_credited_as_synthetic(built, tmp_path):
    """The bundled demo's doodles are the project's own: the header and the contact sheet
    say so, and do not credit Google."""
    demo = params_for(base_url="data/demo")
    assert "Synthetic drawings" in header_html(demo, Provenance(1), {})
    assert "Google, Inc." not in header_html(demo, Provenance(1), {})
    assert "synthetic" in credit_text(demo) and "Google, Inc." in credit_text(params_for())


def tiled(sample: pa.Table, times: int) -> pa.Table:
    """The sample repeated, each copy with its own key_ids (same countries and categories)."""
    copies = []
    for copy in range(times):
        keys = pa.array([k + copy for k in sample["key_id"].to_pylist()], pa.uint64())
        copies.append(sample.set_column(0, "key_id", keys))
    return pa.concat_tables(copies)


def test_bytes_per_drawing(built, tmp_path):
    """Every per-drawing column is a compact array; no bitmaps travel (the page draws them)."""
    inputs = load_inputs(tmp_path / "sample.parquet", tmp_path / "join.json", params_for())

    def size(times: int) -> int:
        sample = tiled(inputs.sample, times)
        return len(render_html(ReportInputs(sample, inputs.provenance, inputs.params)).encode())

    added = inputs.sample.num_rows * 10
    assert (size(20) - size(10)) / added <= 160
    page = render_html(inputs)
    assert '"pixels"' not in page and '"bitmaps"' not in page


def test_key_ids_beyond_float_precision_travel_as_text():
    sample = pa.table(
        {
            "key_id": pa.array([2**53 + 1, 5], pa.uint64()),
            "category": ["cat", "cat"],
            "countrycode": ["US", None],
            "recognized": [True, False],
            "timestamp": pa.array([0, 60_000_000], pa.timestamp("us", tz="UTC")),
            "bitmap": pa.array([bytes(784), bytes(784)], pa.binary(784)),
            "position": [0, 1],
            "xs": [[0, 255], [9, 9]],
            "ys": [[0, 255], [9, 9]],
            "stroke_ends": [[2], [2]],
            "ts": [None, None],
        },
        schema=SAMPLE,
    )
    drawings = from_sample(sample, ("cat",), top=1)
    assert list(drawings.key_id) == [str(2**53 + 1), "5"]
    assert drawings.countries == ["??", "US"] and drawings.groups == ["??", "other"]
    assert list(drawings.time) == [0, 60]


def test_pca_layout_is_exact_and_separates_unlike_drawings():
    rng = np.random.default_rng(0)
    blank = np.zeros((20, 28, 28), np.uint8)
    blank[:, :14] = rng.integers(0, 30, (20, 14, 28))
    inked = blank.copy()
    inked[:, 14:] = 255
    coords = map_coordinates(np.concatenate([blank, inked]), "pca", seed=0)
    assert coords.dtype == np.float32
    first = coords[:, 0]
    assert (first[:20].max() < first[20:].min()) or (first[20:].max() < first[:20].min())
    again = map_coordinates(np.concatenate([blank, inked])[::-1], "pca", seed=0)[::-1]
    np.testing.assert_allclose(again, coords, atol=1e-5)


def test_strokes_travel_as_byte_deltas_per_stroke_and_gaps_in_ms():
    sample = pa.table(
        {
            "xs": pa.array([[10, 5, 250], [7]], pa.list_(pa.uint8())),
            "ys": pa.array([[0, 255, 1], [7]], pa.list_(pa.uint8())),
            "stroke_ends": pa.array([[2, 3], [1]], pa.list_(pa.int32())),
            "ts": pa.array([[0, 40, 90_000], [0]], pa.list_(pa.int32())),
        }
    )
    strokes = strokes_of(sample)
    assert strokes.dx.tolist() == [10, 251, 250, 7]  # 5 - 10 mod 256; each stroke starts afresh
    assert strokes.dy.tolist() == [0, 255, 1, 7]
    assert strokes.stroke_points.tolist() == [2, 1, 1]
    assert strokes.drawing_strokes.tolist() == [2, 1]
    assert strokes.dt.tolist() == [0, 40, 65_535, 0]  # long pauses capped: the replay shortens them
    broken = sample.set_column(2, "stroke_ends", pa.array([[2, 4], [1]], pa.list_(pa.int32())))
    with pytest.raises(PipelineError, match="stroke_ends"):
        strokes_of(broken)
