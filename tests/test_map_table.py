"""data/report/map.parquet: the report's map as data, each drawing exactly where the page (read
back from real Chromium) places it, with its drawing as a PNG; Embedding Atlas serves it."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from browser import DOCUMENT_IDLE, browser_page
from PIL import Image

from pipeline.params import parse_params
from pipeline.stages.join import run_join
from pipeline.stages.report import run_report
from pipeline.stages.sample import run_sample

CATEGORIES = ("octopus", "cat", "The Eiffel Tower")

# The map's data source as the page holds it.
PLACED = """() => {
  const d = Bokeh.documents[0].get_model_by_name('drawings').data;
  return {x: Array.from(d.x), y: Array.from(d.y), key_id: Array.from(d.key_id, String)};
}"""


@pytest.fixture
def built(heads_layout: Path, tmp_path: Path) -> Path:
    params = parse_params(
        {
            "dataset": {
                "base_url": "data/demo",
                "drawings": "simplified",
                "categories": list(CATEGORIES),
            },
            "sample": {"n": 60, "seed": 3},
            "report": {"name": "heads"},
        }
    )
    run_join(heads_layout, "simplified", CATEGORIES, tmp_path / "store", tmp_path / "join.json")
    sample = tmp_path / "sample.parquet"
    run_sample(tmp_path / "store", CATEGORIES, params.sample, sample, heads_layout, "simplified")
    run_report(
        sample,
        tmp_path / "join.json",
        params,
        tmp_path / "reports",
        map_path=tmp_path / "map.parquet",
    )
    return tmp_path


def test_the_map_table_holds_the_sample_with_its_drawings(built: Path) -> None:
    table = pq.read_table(built / "map.parquet")
    sample = pq.read_table(built / "sample.parquet")
    assert table.column_names == ["key_id", "category", "countrycode", "x", "y", "image"]
    assert table["key_id"].to_pylist() == sample["key_id"].to_pylist()
    assert set(table["category"].to_pylist()) == set(CATEGORIES)
    assert table["countrycode"].to_pylist() == sample["countrycode"].to_pylist()
    for png in table["image"].to_pylist()[:10]:
        image = np.asarray(Image.open(io.BytesIO(png)))
        assert image.shape == (64, 64)
        assert (image < 128).sum() > 20  # strokes drawn, dark on white
        assert image[0, 0] == 255


@pytest.mark.browser
def test_the_coordinates_are_where_the_page_places_each_drawing(built: Path) -> None:
    table = pq.read_table(built / "map.parquet")
    with browser_page() as page:
        page.goto((built / "reports" / "heads.html").as_uri())
        page.wait_for_function(DOCUMENT_IDLE)
        placed = page.evaluate(PLACED)
    assert len(set(placed["x"])) > 10  # a real layout, not one point
    assert placed["key_id"] == [str(k) for k in table["key_id"].to_pylist()]
    assert placed["x"] == table["x"].to_pylist()
    assert placed["y"] == table["y"].to_pylist()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.browser
def test_embedding_atlas_serves_the_map(built: Path, tmp_path: Path) -> None:
    """`embedding-atlas map.parquet --x x --y y --image image` (installed without what it needs
    to compute embeddings: ci/lock-excludes.txt) serves the drawings with their pictures, and
    its page requests nothing from elsewhere. Its map view needs WebGPU with shader-f16, which
    headless Chromium here does not offer; the table, the counts and the images are checked."""
    table = pq.read_table(built / "map.parquet")
    port = free_port()
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    command = [sys.executable, "-c", "from embedding_atlas.cli import main; main()"]
    options = ["--x", "x", "--y", "y", "--image", "image", "--text", "category", "--host"]
    options += ["127.0.0.1", "--port", str(port), "--no-auto-port"]
    server = subprocess.Popen(
        [*command, str(built / "map.parquet"), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    drain = None
    try:
        output = []
        for line in server.stdout:  # ready once it prints its address
            output.append(line)
            if url in line:
                break
        else:
            raise AssertionError("embedding-atlas exited:\n" + "".join(output))
        # keep reading its log, so that a full pipe never stalls it
        drain = threading.Thread(target=output.extend, args=(server.stdout,), daemon=True)
        drain.start()
        with browser_page(1400, 900) as page:
            page.goto(url)
            rows = table.num_rows
            page.wait_for_function(
                f"() => document.body.innerText.includes('{rows:,} / {rows:,} points')"
            )
            page.wait_for_function("() => document.querySelectorAll('img[src^=\"data:\"]').length")
            shown = page.evaluate(
                "() => [...document.querySelectorAll('img[src^=\"data:image/png\"]')]"
                ".map((img) => img.src)"
            )
            outside = [u for u in page.requests if not u.startswith((url, "data:", "blob:"))]
        pictures = {
            f"data:image/png;base64,{base64.b64encode(png).decode()}"
            for png in table["image"].to_pylist()
        }
        assert shown and set(shown) <= pictures
        assert outside == []
    finally:
        server.terminate()
        server.wait(timeout=30)
        if drain is not None:
            drain.join()
        server.stdout.close()
