"""The report in a real browser: it loads offline, hovering a point shows that drawing in the
tooltip and the panel, and the bar charts and the map filter each other."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from browser import (
    DOCUMENT_IDLE,
    GLYPH_POSITIONS,
    MAP_TOOLTIP,
    MAP_TOOLTIP_IMAGES,
    POINT_POSITIONS,
    VISIBLE_POINTS,
    browser_page,
    model_value,
)
from conftest import ARTIFACTS
from test_report import CATEGORIES, params_for

from pipeline.join import run_join
from pipeline.report import country_name, run_report
from pipeline.sample import run_sample

pytestmark = pytest.mark.browser

DOUBLE_CLICK_MS = 500  # more than BokehJS's double-tap interval
MARKER_HALF = 4  # the map's squares are 8 screen pixels wide; a hover hits within 4
PANEL_BITMAP = "() => Array.from(Bokeh.documents[0].get_model_by_name('panel_image').data.image[0])"


@pytest.fixture
def report(request, heads_layout: Path, tmp_path: Path) -> tuple[Path, list[dict]]:
    """The report of the 100 real heads; the default layout unless a test asks for another."""
    params = params_for(n=100, **({"layout": request.param} if hasattr(request, "param") else {}))
    run_join(heads_layout, "simplified", CATEGORIES, tmp_path / "store", tmp_path / "join.json")
    sample = tmp_path / "sample.parquet"
    run_sample(tmp_path / "store", CATEGORIES, params.sample, sample)
    run_report(sample, tmp_path / "join.json", params, tmp_path / "reports")
    return tmp_path / "reports" / "heads.html", pq.read_table(sample).to_pylist()


@pytest.fixture
def page(report):
    html, _ = report
    with browser_page(width=1300, height=1100) as page:  # the whole report, no scrolling
        page.goto(html.as_uri())
        page.wait_for_function(DOCUMENT_IDLE)
        yield page
        assert page.console_errors == []
        network = [u for u in page.requests if not u.startswith(("file://", "data:"))]
        assert network == [], "the report must need no network"


def most_isolated(points: np.ndarray) -> int:
    """The point farthest from its nearest neighbour: hovering it hits that point alone."""
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return int(distances.min(axis=1).argmax())


def covering(points: np.ndarray, where: np.ndarray) -> tuple[np.ndarray, int]:
    """Indices of the squares that surely contain a screen position, and how many are too
    close to their edge to tell."""
    distance = np.abs(points - where).max(axis=1)
    sure = np.flatnonzero(distance <= MARKER_HALF - 0.5)
    return sure, int(((distance > MARKER_HALF - 0.5) & (distance < MARKER_HALF + 0.5)).sum())


def hover(page, where, sample: list[dict], k: int) -> dict:
    """Move the mouse to `where`; wait until the panel shows drawing k; return its row."""
    key_id = page.evaluate(
        "(k) => String(Bokeh.documents[0].get_model_by_name('drawings').data.key_id[k])", k
    )
    drawing = next(row for row in sample if str(row["key_id"]) == key_id)
    page.mouse.move(*where)
    page.wait_for_function(
        "(key) => Bokeh.documents[0].get_model_by_name('caption2').text === `key_id ${key}`",
        arg=key_id,
    )
    return drawing


def click(page, where) -> None:
    """A single click. Two clicks closer in time than a double-click are one double-tap to
    BokehJS (which a TapTool ignores), as for a user: pause between separate clicks."""
    page.wait_for_timeout(DOUBLE_CLICK_MS)
    page.mouse.click(*where)


def tooltip_text(page) -> str:
    return page.evaluate(MAP_TOOLTIP)


def test_hover_shows_that_drawing_and_its_country(page, report):
    _, sample = report
    points = np.array(page.evaluate(POINT_POSITIONS))
    assert len(points) == len(sample)
    k = most_isolated(points)
    drawing = hover(page, points[k], sample, k)
    heading = f"{country_name(drawing['countrycode'])} ({drawing['countrycode']})"
    assert model_value(page, "panel", "m.title.text") == heading
    assert bytes(page.evaluate(PANEL_BITMAP)) == drawing["bitmap"], "the hovered drawing"
    tooltip = tooltip_text(page)
    assert heading in tooltip and f"key_id {drawing['key_id']}" in tooltip
    [thumbnail] = page.evaluate(MAP_TOOLTIP_IMAGES)
    assert thumbnail.startswith("data:image/png;base64,")
    assert page.get_by_text(f"key_id {drawing['key_id']}").first.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-hover.png", full_page=True)


# The t-SNE spreads these 100 drawings apart; the PCA of their pixels stacks some.
@pytest.mark.parametrize("report", ["pca"], indirect=True)
def test_on_overlapping_points_tooltip_and_panel_show_the_one_on_top(page, report):
    _, sample = report
    points = np.array(page.evaluate(POINT_POSITIONS))
    stacks = [(i, *covering(points, points[i])) for i in range(len(points))]
    clear = [(i, under) for i, under, unsure in stacks if unsure == 0]
    where_index, under = max(clear, key=lambda stack: (len(stack[1]), stack[0]))
    assert len(under) >= 2, "the sample should have overlapping points"
    top = int(under.max())  # BokehJS paints in index order: the last one is visible
    drawing = hover(page, points[where_index], sample, top)
    assert bytes(page.evaluate(PANEL_BITMAP)) == drawing["bitmap"]
    tooltip = tooltip_text(page)
    assert tooltip.count("key_id") == 1, "one drawing in the tooltip, the panel's"
    assert f"key_id {drawing['key_id']}" in tooltip


def test_selecting_a_country_bar_filters_the_map_and_back(page, report):
    _, sample = report
    counts = Counter(row["countrycode"] for row in sample)
    codes = model_value(page, "country_bars", "m.data.label")
    bars = page.evaluate(GLYPH_POSITIONS, ["countries", "country_bars"])
    second = codes[1]  # the second-largest country: a real subset of the map
    click(page, bars[1])
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {counts[second]}")
    visible = page.evaluate(VISIBLE_POINTS)
    countries = model_value(page, "drawings", "Array.from(m.data.country)")
    assert {codes[countries[i]] for i in visible} == {second}
    assert model_value(page, "map", "m.title.text").startswith(f"{counts[second]} of")

    # And back: a selection in the map shows, per country bar, how many drawings it holds.
    click(page, bars[-1])  # a click toggles a bar: add the smallest country
    both = counts[second] + counts[codes[-1]]
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {both}")
    chosen = page.evaluate(VISIBLE_POINTS)[:5]
    page.evaluate(
        "(chosen) => { "
        "Bokeh.documents[0].get_model_by_name('drawings').selected.indices = chosen; }",
        chosen,
    )
    shown = model_value(page, "country_bars", "Array.from(m.data.shown)")
    expected = Counter(codes[countries[i]] for i in chosen)
    assert dict(zip(codes, shown, strict=True)) == {c: expected.get(c, 0) for c in codes}
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-filtered.png", full_page=True)


def test_selecting_a_category_bar_filters_the_map(page, report):
    _, sample = report
    names = model_value(page, "category_bars", "m.data.label")
    bars = page.evaluate(GLYPH_POSITIONS, ["categories", "category_bars"])
    click(page, bars[0])
    wanted = sum(row["category"] == names[0] for row in sample)
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {wanted}")
    click(page, bars[1])  # a click toggles a bar: add the second category
    both = sum(row["category"] in names[:2] for row in sample)
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {both}")
    click(page, bars[0])
    click(page, bars[1])  # both off again: the whole map
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {len(sample)}")
