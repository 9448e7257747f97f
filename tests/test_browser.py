"""The report in a real browser: it loads offline, and hovering a point shows that drawing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from browser import DOCUMENT_IDLE, POINT_POSITIONS, browser_page
from conftest import ARTIFACTS
from test_report import CATEGORIES, params_for

from pipeline.join import run_join
from pipeline.report import country_name, run_report
from pipeline.sample import run_sample

pytestmark = pytest.mark.browser


@pytest.fixture
def report(heads_layout: Path, tmp_path: Path) -> tuple[Path, Path]:
    params = params_for(n=80)
    run_join(heads_layout, "simplified", CATEGORIES, tmp_path / "store", tmp_path / "join.json")
    sample = tmp_path / "sample.parquet"
    run_sample(tmp_path / "store", CATEGORIES, params.sample, sample)
    run_report(sample, tmp_path / "join.json", params, tmp_path / "reports")
    return tmp_path / "reports" / "heads.html", sample


def most_isolated(points: np.ndarray) -> int:
    """The point farthest from its nearest neighbour: hovering it hits that point alone."""
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return int(distances.min(axis=1).argmax())


def test_hover_shows_that_drawing_and_its_country(report):
    html, sample_path = report
    sample = pq.read_table(sample_path).to_pylist()
    with browser_page() as page:
        page.goto(html.as_uri())
        page.wait_for_function(DOCUMENT_IDLE)
        points = np.array(page.evaluate(POINT_POSITIONS))
        assert len(points) == len(sample)
        k = most_isolated(points)
        key_id = page.evaluate(
            "(k) => Bokeh.documents[0].get_model_by_name('drawings').data.key_id[k]", k
        )
        drawing = next(row for row in sample if str(row["key_id"]) == key_id)
        page.mouse.move(*points[k])
        heading = f"{country_name(drawing['countrycode'])} ({drawing['countrycode']})"
        page.wait_for_function(
            "(text) => Bokeh.documents[0].get_model_by_name('panel').title.text === text",
            arg=heading,
        )
        shown = page.evaluate(
            "() => Array.from(Bokeh.documents[0].get_model_by_name('panel_image').data.image[0])"
        )
        assert bytes(shown) == drawing["bitmap"], "the panel must show the hovered drawing"
        tooltip = page.get_by_text(heading)
        assert tooltip.first.is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "report-hover.png")
        assert page.console_errors == []
        assert [url for url in page.requests if not url.startswith("file://")] == []
