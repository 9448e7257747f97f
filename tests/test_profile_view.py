"""The report's "How countries draw it" in a real browser, built from the real raw heads: the
picker switches every view to the category picked, and hovering a country shows its figures."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from browser import DOCUMENT_IDLE, FIND_VIEW, GLYPH_POSITIONS, browser_page, model_value
from conftest import ARTIFACTS, read_lines, write_category

from pipeline.formats.render import render_bitmaps, simplify_strokes
from pipeline.params import ProfileParams, parse_params
from pipeline.stages.join import run_join
from pipeline.stages.profile import run_profile
from pipeline.stages.report import country_name, run_report
from pipeline.stages.sample import run_sample

pytestmark = pytest.mark.browser

CATEGORIES = ("circle", "cat", "The Eiffel Tower")
MIN_DRAWINGS = 2

# The text of the tooltips of the plot named `name`.
TOOLTIP = """(name) => {
  const find = FIND_VIEW;
  const hover = [...find(name).tool_views.values()].find((t) => t.model.type === 'HoverTool');
  return [...hover.ttmodels.values()].map((tooltip) => tooltip.content.innerText).join('\\n');
}""".replace("FIND_VIEW", FIND_VIEW)


@pytest.fixture(scope="module")
def built(tmp_path_factory, heads) -> tuple[Path, Path]:
    """The raw heads joined (bitmaps rendered from their simplified strokes), profiled,
    sampled and reported."""
    root = tmp_path_factory.mktemp("profile-view")
    raw = root / "raw"
    for category in CATEGORIES:
        lines = read_lines(heads / "raw" / f"{category}.ndjson")
        strokes = [simplify_strokes(orjson.loads(line)["drawing"]) for line in lines]
        bitmaps = render_bitmaps(strokes).reshape(len(lines), -1)
        write_category(raw, "raw", category, lines, bitmaps)
    params = parse_params(
        {
            "dataset": {"base_url": "data/demo", "drawings": "raw", "categories": list(CATEGORIES)},
            "sample": {"n": 40, "seed": 3},
            "report": {"name": "profile", "top_countries": 4},
        }
    )
    params = dataclasses.replace(params, profile=ProfileParams(min_drawings=MIN_DRAWINGS))
    store = root / "store"
    run_join(raw, "raw", CATEGORIES, store, root / "join.json", 0)
    profile_dir = root / "profile"
    run_profile(store, CATEGORIES, profile_dir, root / "p.json", root / "plot.json", MIN_DRAWINGS)
    run_sample(store, CATEGORIES, params.sample, root / "sample.parquet", raw, "raw")
    run_report(
        root / "sample.parquet",
        root / "join.json",
        params,
        root / "reports",
        profile_path=profile_dir / "profile.parquet",
    )
    return root / "reports" / "profile.html", profile_dir / "profile.parquet"


@pytest.fixture
def page(built):
    html, _ = built
    with browser_page(width=1300, height=1800) as page:
        page.goto(html.as_uri())
        page.wait_for_function(DOCUMENT_IDLE)
        yield page
        assert page.console_errors == []
        assert [u for u in page.requests if not u.startswith(("file://", "data:"))] == []


def shown(profile_path: Path, category: str) -> list[dict]:
    """The profile's rows the views show for a category, most drawings first."""
    rows = [r for r in pq.read_table(profile_path).to_pylist() if r["category"] == category]
    rows = [r for r in rows if r["drawings"] >= MIN_DRAWINGS]
    return sorted(rows, key=lambda r: (-r["drawings"], r["countrycode"] or "~"))


def test_picking_a_category_updates_every_view(page, built):
    _, profile_path = built
    options = "s => [...s.options].map(o => o.value)"
    assert page.eval_on_selector("select[name=profile_category]", options) == list(CATEGORIES)
    for category in ("cat", "The Eiffel Tower", "circle"):
        page.select_option("select[name=profile_category]", category)
        page.wait_for_function(
            "(c) => Bokeh.documents[0].get_model_by_name('profile_heading').text.includes(c)",
            arg=category,
        )
        rows = shown(profile_path, category)
        assert rows, category
        codes = [r["countrycode"] for r in rows]
        assert model_value(page, "profile_rows", "m.data.country") == codes
        assert model_value(page, "profile_rows", "m.data.recognized_share") == [
            r["recognized_share"] for r in rows
        ]
        assert model_value(page, "profile_recognized", "m.y_range.factors") == codes[::-1]
        means = model_value(page, "profile_means", "m.data.label")
        assert means == [f"{r['countrycode']} ({r['drawings']:,})" for r in rows[:4]]
        means_pixels = model_value(page, "profile_means", "Array.from(m.data.image[0])")
        assert bytes(means_pixels) == rows[0]["mean_bitmap"]
        # the views drew the new rows: one bar per shown country in the clockwise view
        bars = page.evaluate(GLYPH_POSITIONS, ["profile_clockwise", "profile_rows"])
        assert len(bars) == len(rows)
        durations = model_value(page, "profile_rows", "m.data.duration_s")
        assert durations == [r["duration_ms_median"] / 1000 for r in rows]


def test_hovering_a_country_shows_its_figures(page, built):
    _, profile_path = built
    page.select_option("select[name=profile_category]", "circle")
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('profile_heading').text.includes('circle')"
    )
    rows = shown(profile_path, "circle")
    for view in ("profile_duration", "profile_clockwise"):
        bars = page.evaluate(GLYPH_POSITIONS, [view, "profile_rows"])
        for index in (0, len(rows) - 1):
            if view == "profile_clockwise" and not rows[index]["clockwise_share"]:
                continue  # no bar to hover
            hover_shows(page, view, bars[index], rows[index])
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("text=How countries draw it").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "profile_view.png"), full_page=True)


def hover_shows(page, view: str, where: list[float], row: dict) -> None:
    page.mouse.move(*where)
    page.wait_for_function(
        f"([n, c]) => ({TOOLTIP})(n).includes(`(${{c}})`)", arg=[view, row["countrycode"]]
    )
    text = page.evaluate(TOOLTIP, view)
    assert f"{country_name(row['countrycode'])} ({row['countrycode']})" in text
    assert f"{row['drawings']:,} drawings" in text
    assert f"{row['recognized_share']:.1%} (95% interval" in text
    assert f"{row['recognized_low']:.1%} to {row['recognized_high']:.1%}" in text
    assert f"{row['duration_ms_median'] / 1000:.1f} s" in text
    assert f"clockwise first strokes: {row['clockwise_share']:.1%}" in text
