"""The report at the scale users go, in a real Chromium: 344 categories at N=100,000 and a
category drawn in 110 countries. The page stays under 2,000 px, the map names its largest
groups without overlaps (more as the user zooms), the strip under the panel holds the clicked
drawing's exact nearest drawings, and the profile section pages its countries, sorts them by
the figure and follows the map's category search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from browser import DOCUMENT_IDLE, FIND_VIEW, POINT_POSITIONS, browser_page, model_value
from conftest import ARTIFACTS
from report_samples import bucket_sample, many_countries
from test_browser import choose_category

from pipeline.params import parse_params
from pipeline.reportkit import embedding, map_names
from pipeline.reportkit.header import Provenance
from pipeline.stages.join import run_join
from pipeline.stages.profile import run_profile
from pipeline.stages.report import ReportInputs, bitmaps_of, render_html, run_report
from pipeline.stages.sample import run_sample
from pipeline.store.layout import GOOGLE_BASE_URL

pytestmark = pytest.mark.browser

BUCKET_DRAWINGS = 100_000
HEIGHT = "() => document.documentElement.scrollHeight"
# Each shown name's box on screen (page px), measured with the canvas font the map draws with.
NAME_BOXES = """() => {
  const doc = Bokeh.documents[0];
  const names = doc.get_model_by_name('category_names').data;
  const find = FIND_VIEW;
  const plot = find('map');
  const context = document.createElement('canvas').getContext('2d');
  context.font = 'bold FONTpx helvetica';
  const xs = plot.frame.x_scale, ys = plot.frame.y_scale;
  return names.text.map((text, i) => {
    const w = context.measureText(text).width, sx = xs.compute(names.x[i]);
    const sy = ys.compute(names.y[i]);
    return {text, rank: names.rank[i], left: sx - w / 2, right: sx + w / 2,
            top: sy - 7, bottom: sy + 7};
  });
}""".replace("FONT", str(map_names.FONT_PX)).replace("FIND_VIEW", FIND_VIEW)
# The page position of the largest group's anchor that has no name in the default view.
UNNAMED_ANCHOR = """() => {
  const doc = Bokeh.documents[0];
  const store = doc.get_model_by_name('name_store').data;
  const shown = new Set(doc.get_model_by_name('category_names').data.text);
  const plot = (FIND_VIEW)('map');
  const box = plot.el.getBoundingClientRect();
  const i = store.text.findIndex((t) => !shown.has(t));
  return [box.left + plot.frame.x_scale.compute(store.x[i]),
          box.top + plot.frame.y_scale.compute(store.y[i])];
}""".replace("FIND_VIEW", FIND_VIEW)
# The page position of a point in the neighbour strip, as fractions of its frame.
STRIP_CELL = """([fx, fy]) => {
  const plot = (FIND_VIEW)('neighbour_plot');
  const box = plot.el.getBoundingClientRect(), frame = plot.frame.bbox;
  return [box.left + frame.left + frame.width * fx, box.top + frame.top + frame.height * fy];
}""".replace("FIND_VIEW", FIND_VIEW)


def overlapping(boxes: list[dict]) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    ]


@pytest.fixture(scope="module")
def bucket(heads: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """344 categories of real drawings, 100,000 of them; positions from the t-SNE of the
    distinct drawings (the page's height and names do not depend on how they were found)."""
    sample, names, coords = bucket_sample(heads, BUCKET_DRAWINGS)
    params = parse_params(
        {
            "dataset": {"base_url": GOOGLE_BASE_URL, "categories": list(names)},
            "sample": {"n": BUCKET_DRAWINGS, "seed": 1},
            "report": {"name": "bucket"},
        }
    )
    inputs = ReportInputs(sample, Provenance(BUCKET_DRAWINGS), params)
    none = np.zeros((BUCKET_DRAWINGS, 0), np.uint32)  # the strip is tested below
    html = tmp_path_factory.mktemp("bucket") / "bucket.html"
    html.write_text(render_html(inputs, coords=coords, neighbours=none))
    return html


def test_344_categories_at_100000_fit_and_name_the_largest_groups(bucket: Path):
    with browser_page(width=1400, height=1000) as page:
        page.goto(bucket.as_uri(), timeout=120_000)
        page.wait_for_function(DOCUMENT_IDLE, timeout=120_000)
        assert page.evaluate(HEIGHT) <= 2000
        boxes = page.evaluate(NAME_BOXES)
        assert len(boxes) >= 40, [b["text"] for b in boxes]
        assert overlapping(boxes) == []
        ranks = sorted(b["rank"] for b in boxes)
        assert ranks[0] == 0, "the largest group is named"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "report-344-categories-page.png", full_page=True)
        box = page.evaluate(f"() => ({FIND_VIEW})('map').el.getBoundingClientRect().toJSON()")
        clip = {key: box[key] for key in ("x", "y", "width", "height")}
        page.screenshot(path=ARTIFACTS / "report-344-categories.png", clip=clip)
        # zooming in at a group named nowhere yet names groups that had no room before
        before = {b["text"] for b in boxes}
        page.mouse.move(*page.evaluate(UNNAMED_ANCHOR))
        for _ in range(2):
            page.mouse.wheel(0, -200)
        page.wait_for_function(
            "(n) => Bokeh.documents[0].get_model_by_name('category_names').data.text"
            ".some((t) => !n.includes(t))",
            arg=sorted(before),
        )
        assert overlapping(page.evaluate(NAME_BOXES)) == []
        assert page.console_errors == []


@pytest.fixture(scope="module")
def countries(heads: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """octopus drawn in 110 countries (and cat), through join, profile, sample and report."""
    root = tmp_path_factory.mktemp("countries")
    raw = many_countries(heads, root)
    categories = ("octopus", "cat")
    params = parse_params(
        {
            "dataset": {"base_url": GOOGLE_BASE_URL, "categories": list(categories)},
            "sample": {"n": 3000, "seed": 5},
            "report": {"name": "countries"},
        }
    )
    store = root / "store"
    run_join(raw, "simplified", categories, store, root / "join.json", 0)
    run_profile(store, categories, root / "profile", root / "p.json", root / "plot.json", 30)
    run_sample(store, categories, params.sample, root / "sample.parquet", raw, "simplified")
    profile = root / "profile" / "profile.parquet"
    run_report(root / "sample.parquet", root / "join.json", params, root, profile_path=profile)
    return root / "countries.html", root / "sample.parquet"


@pytest.fixture
def page(countries):
    with browser_page(width=1400, height=1000) as page:
        page.goto(countries[0].as_uri(), timeout=120_000)
        page.wait_for_function(DOCUMENT_IDLE, timeout=120_000)
        yield page
        assert page.console_errors == []


def test_110_countries_fit_the_page_and_the_section(page):
    assert page.evaluate(HEIGHT) <= 2000
    top = page.get_by_text("How countries draw it").bounding_box()["y"]
    height = page.evaluate(HEIGHT) - top
    assert height <= 900
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-110-countries-page.png", full_page=True)
    section = {"x": 0, "y": top - 10, "width": 1400, "height": height + 10}
    page.screenshot(path=ARTIFACTS / "report-110-countries.png", full_page=True, clip=section)
    rows = model_value(page, "profile_rows", "m.data.country")
    assert len(rows) == 30
    assert model_value(page, "profile_page", "m.options")[-1].endswith("of 110")
    assert len(model_value(page, "country_bars", "m.data.label")) == 30


def test_countries_sort_by_the_figure_and_page(page):
    store = model_value(page, "profile_store", "m.data")
    octopus = [i for i, c in enumerate(store["category"]) if c == "octopus"]
    shares = sorted(
        ((-store["clockwise"][i], i) for i in octopus), key=lambda pair: (pair[0], pair[1])
    )
    page.select_option("select[name=profile_sort]", "clockwise share")
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('profile_page').value.startsWith('1-30')"
    )
    expected = [store["country"][i] for _, i in shares]
    page.wait_for_function(
        "(c) => Bokeh.documents[0].get_model_by_name('profile_rows').data.country[0] === c",
        arg=expected[0],
    )
    assert model_value(page, "profile_rows", "m.data.country") == expected[:30]
    page.select_option("select[name=profile_page]", "31-60 of 110")
    page.wait_for_function(
        "(c) => Bokeh.documents[0].get_model_by_name('profile_rows').data.country[0] === c",
        arg=expected[30],
    )
    assert model_value(page, "profile_rows", "m.data.country") == expected[30:60]
    lows = model_value(page, "profile_rows", "m.data.clockwise_low")
    highs = model_value(page, "profile_rows", "m.data.clockwise_high")
    shown = model_value(page, "profile_rows", "m.data.clockwise")
    assert all(lo <= s <= hi for lo, s, hi in zip(lows, shown, highs, strict=True))


def test_the_section_follows_the_maps_category(page):
    assert model_value(page, "profile_category", "m.value") == "octopus"
    choose_category(page, "cat")
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('profile_category').value === 'cat'"
    )
    assert "cat" in model_value(page, "profile_heading", "m.text")


def test_the_strip_holds_the_exact_neighbours(page, countries):
    sample = pq.read_table(countries[1])
    points = embedding.features(bitmaps_of(sample))
    keys = [str(k) for k in sample["key_id"].to_pylist()]
    positions = page.evaluate(POINT_POSITIONS)
    page.mouse.move(*positions[len(positions) // 2])
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('panel').data.key_id[0] !== ''"
    )
    page.mouse.down()
    page.mouse.up()
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('neighbours').data.key_id.length === 8"
    )
    shown = str(model_value(page, "panel", "m.data.key_id[0]"))
    i = keys.index(shown)
    distances = np.sqrt(((points - points[i]) ** 2).sum(axis=1))
    distances[i] = np.inf
    exact = np.lexsort((np.arange(len(keys)), distances))[:8]
    strip = [str(k) for k in model_value(page, "neighbours", "m.data.key_id")]
    assert strip == [keys[j] for j in exact]
    countries_shown = model_value(page, "neighbours", "m.data.country")
    assert countries_shown == [sample["countrycode"][int(j)].as_py() for j in exact]
    # a click on the third shows it in the panel
    page.mouse.click(*page.evaluate(STRIP_CELL, [2.5 / 4, 1 / 4]))
    page.wait_for_function(
        "(k) => String(Bokeh.documents[0].get_model_by_name('panel').data.key_id[0]) === k",
        arg=keys[exact[2]],
    )
