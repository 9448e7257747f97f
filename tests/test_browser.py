"""The report in a real browser: it loads offline, hovering a point shows that drawing in the
tooltip and draws and replays it in the panel, the 28x28 bitmap is one toggle away, the bar
charts, the category chooser and the map filter each other, and 345 categories fit a screen."""

from __future__ import annotations

import base64
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from browser import (
    DOCUMENT_IDLE,
    FIND_VIEW,
    GLYPH_POSITIONS,
    MAP_TOOLTIP,
    MAP_TOOLTIP_IMAGES,
    POINT_POSITIONS,
    VISIBLE_POINTS,
    browser_page,
    model_value,
)
from conftest import ARTIFACTS, ROOT, read_lines, write_category
from test_report import CATEGORIES, params_for

from pipeline.formats.render import render_bitmaps
from pipeline.params import parse_params
from pipeline.reportkit import scripts
from pipeline.reportkit.header import Provenance
from pipeline.stages.join import run_join
from pipeline.stages.report import ReportInputs, country_name, render_html, run_report
from pipeline.stages.sample import run_sample
from pipeline.store.layout import GOOGLE_BASE_URL
from pipeline.store.schema import SAMPLE

pytestmark = pytest.mark.browser

DOUBLE_CLICK_MS = 500  # more than BokehJS's double-tap interval
MARKER_HALF = 4  # the map's squares are 8 screen pixels wide; a hover hits within 4
PANEL = (
    "() => { const d = Bokeh.documents[0].get_model_by_name('panel').data; return {"
    "key: String(d.key_id[0]), xs: Array.from(d.xs[0]), ys: Array.from(d.ys[0]), "
    "drawn: d.drawn[0], total: d.total[0], at: Array.from(d.at[0])}; }"
)
REPLAYED = (
    "() => { const d = Bokeh.documents[0].get_model_by_name('panel').data; "
    "return d.total[0] > 0 && d.drawn[0] === d.total[0]; }"
)
MIDWAY = (
    "() => { const d = Bokeh.documents[0].get_model_by_name('panel').data; "
    "return d.drawn[0] > d.total[0] / 3 && d.drawn[0] < d.total[0]; }"
)


@pytest.fixture
def report(request, heads_layout: Path, tmp_path: Path) -> tuple[Path, list[dict]]:
    """The report of the 100 real heads; the default layout unless a test asks for another."""
    params = params_for(n=100, **({"layout": request.param} if hasattr(request, "param") else {}))
    run_join(heads_layout, "simplified", CATEGORIES, tmp_path / "store", tmp_path / "join.json")
    sample = tmp_path / "sample.parquet"
    run_sample(tmp_path / "store", CATEGORIES, params.sample, sample, heads_layout, "simplified")
    run_report(sample, tmp_path / "join.json", params, tmp_path / "reports")
    return tmp_path / "reports" / "heads.html", pq.read_table(sample).to_pylist()


@pytest.fixture
def page(report):
    html, _ = report
    with browser_page(width=1400, height=1300) as page:  # the whole report, no scrolling
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


def stroke_path(drawing: dict) -> tuple[list[float], list[float]]:
    """The drawing's strokes from the sample as the panel draws them: NaN between strokes."""
    xs, ys, starts = [], [], [0, *drawing["stroke_ends"][:-1]]
    for start, end in zip(starts, drawing["stroke_ends"], strict=True):
        if xs:
            xs.append(np.nan)
            ys.append(np.nan)
        xs += drawing["xs"][start:end]
        ys += drawing["ys"][start:end]
    return xs, ys


def assert_draws(panel: dict, drawing: dict, upto: int | None = None) -> None:
    """The panel's path is the drawing's strokes (their first `upto` entries)."""
    xs, ys = stroke_path(drawing)
    upto = len(xs) if upto is None else upto
    assert panel["total"] == len(xs)
    np.testing.assert_array_equal(np.array(panel["xs"][:upto], float), np.array(xs[:upto]))
    np.testing.assert_array_equal(np.array(panel["ys"][:upto], float), np.array(ys[:upto]))


def tooltip_text(page) -> str:
    return page.evaluate(MAP_TOOLTIP)


def test_hover_shows_that_drawing_and_its_country(page, report):
    _, sample = report
    points = np.array(page.evaluate(POINT_POSITIONS))
    assert len(points) == len(sample)
    k = most_isolated(points)
    drawing = hover(page, points[k], sample, k)
    heading = f"{country_name(drawing['countrycode'])} ({drawing['countrycode']})"
    assert model_value(page, "heading", "m.text") == heading
    assert page.evaluate(PANEL)["key"] == str(drawing["key_id"]), "the hovered drawing"
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
    assert page.evaluate(PANEL)["key"] == str(drawing["key_id"])
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
    click(page, bars[-1])  # a click toggles a bar: add the smallest country, or "others"
    others = codes[-1].endswith(" others")
    last = [c for c in counts if c not in codes[:-1]] if others else [codes[-1]]
    both = counts[second] + sum(counts[c] for c in last)
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {both}")
    chosen = page.evaluate(VISIBLE_POINTS)[:5]
    page.evaluate(
        "(chosen) => { "
        "Bokeh.documents[0].get_model_by_name('drawings').selected.indices = chosen; }",
        chosen,
    )
    shown = model_value(page, "country_bars", "Array.from(m.data.shown)")
    expected = Counter(codes[min(countries[i], len(codes) - 1)] for i in chosen)
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


def test_the_panel_draws_the_strokes_and_replays_them_on_hover_and_click(page, report):
    _, sample = report
    points = np.array(page.evaluate(POINT_POSITIONS))
    k = max(range(len(sample)), key=lambda i: (len(sample[i]["stroke_ends"]), -i))
    k = most_isolated(points) if len(sample[most_isolated(points)]["stroke_ends"]) > 2 else k
    drawing = hover(page, points[k], sample, k)
    page.wait_for_function(MIDWAY)
    midway = page.evaluate(PANEL)
    assert_draws(midway, drawing, upto=midway["drawn"])  # the strokes so far, in order
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-replay-midway.png", full_page=True)
    page.wait_for_function(REPLAYED)
    panel = page.evaluate(PANEL)
    assert panel["key"] == str(drawing["key_id"])
    assert_draws(panel, drawing)
    # Simplified drawings have no timing: an even pace, each stroke after a short pause.
    at = np.array(panel["at"])
    assert np.all(np.diff(at) >= 0) and at[0] == 0 and at[-1] > 0
    page.screenshot(path=ARTIFACTS / "report-replay-done.png", full_page=True)

    panel_box = page.evaluate(f"() => ({FIND_VIEW})('panel_plot').el.getBoundingClientRect()")
    click(page, (panel_box["x"] + 40, panel_box["y"] + 60))  # a click replays it
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('panel').data.drawn[0] < "
        "Bokeh.documents[0].get_model_by_name('panel').data.total[0]"
    )
    page.wait_for_function(REPLAYED)
    assert_draws(page.evaluate(PANEL), drawing)


def test_the_tooltip_draws_the_strokes(page, report):
    _, sample = report
    points = np.array(page.evaluate(POINT_POSITIONS))
    k = most_isolated(points)
    hover(page, points[k], sample, k)
    [thumbnail] = page.evaluate(MAP_TOOLTIP_IMAGES)
    ink = page.evaluate(
        """async (src) => {
          const image = new Image(); image.src = src; await image.decode();
          const canvas = new OffscreenCanvas(image.width, image.height);
          const context = canvas.getContext('2d'); context.drawImage(image, 0, 0);
          const rgba = context.getImageData(0, 0, image.width, image.height).data;
          let dark = 0; for (let p = 0; p < rgba.length; p += 4) dark += rgba[p] < 128;
          return [image.width, dark];
        }""",
        thumbnail,
    )
    assert ink[0] == 112 and ink[1] > 50, "a crisp vector drawing, not a blank"


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(float).ravel(), b.astype(float).ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_the_toggle_shows_the_28x28_bitmap_drawn_from_the_strokes(page, report):
    _, sample = report
    points = np.array(page.evaluate(POINT_POSITIONS))
    k = most_isolated(points)
    drawing = hover(page, points[k], sample, k)
    page.get_by_role("button", name="28x28 bitmap").click()
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('panel_pixels').visible && "
        "!Bokeh.documents[0].get_model_by_name('panel_strokes').visible"
    )
    shown = np.array(
        page.evaluate(
            "() => Array.from(Bokeh.documents[0].get_model_by_name('panel_image').data.image[0])"
        ),
        np.uint8,
    )
    npy_row = np.frombuffer(drawing["bitmap"], np.uint8)
    assert correlation(shown, npy_row) >= 0.95
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-bitmap.png", full_page=True)
    page.get_by_role("button", name="strokes", exact=True).click()
    page.wait_for_function("() => Bokeh.documents[0].get_model_by_name('panel_strokes').visible")


def test_the_page_draws_google_bitmaps_from_real_strokes(heads):
    """The page's rasteriser (plain arithmetic, no canvas) against Google's recipe
    (pipeline.formats.render, which reproduces the npy rows) on every real drawing of the heads, raw
    ones simplified first: the same pixels, within one grey level, whatever the browser."""
    from conftest import read_lines

    from pipeline.formats.render import simplify_strokes

    drawings = [
        orjson.loads(line)["drawing"]
        for path in sorted((heads / "simplified").glob("*.ndjson"))
        for line in read_lines(path)
    ] + [
        [stroke.tolist() for stroke in simplify_strokes(orjson.loads(line)["drawing"])]
        for path in sorted((heads / "raw").glob("*.ndjson"))
        for line in read_lines(path)
    ]
    expected = render_bitmaps(drawings).reshape(len(drawings), -1).astype(int)
    with browser_page() as page:
        page.goto("about:blank")
        drawn = page.evaluate(f"(drawings) => {{ {RASTERIZER} {DRAW_ALL} }}", drawings)
        assert page.console_errors == []
    drawn = np.frombuffer(base64.b64decode(drawn), np.uint8).reshape(expected.shape)
    difference = np.abs(drawn.astype(int) - expected)
    assert len(drawings) >= 5000
    assert difference.max() <= 1, (
        f"{int((difference > 1).any(axis=1).sum())} of {len(drawings)} drawings differ by more "
        f"than one grey level, up to {difference.max()}"
    )


# The page's rasteriser with the constants it needs, cut out of the report's JavaScript.
RASTERIZER = scripts.CONSTANTS + scripts.RASTERIZER
# Every drawing's bitmap, one after another, as base64: a JSON array of millions of numbers
# would cost the test more than the drawing does.
DRAW_ALL = """
const all = new Uint8Array(drawings.length * SIDE * SIDE);
drawings.forEach((d, i) => {
  const strokes = d.map(([x, y]) => ({x: Uint8Array.from(x), y: Uint8Array.from(y)}));
  all.set(rasterize(strokes), i * SIDE * SIDE);
});
let text = "";
for (let i = 0; i < all.length; i += 8192) {
  text += String.fromCharCode.apply(null, all.subarray(i, i + 8192));
}
return btoa(text);
"""


def test_colour_by_category_and_back(page):
    page.get_by_role("button", name="category", exact=True).click()
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('points').glyph.fill_color.field === "
        "'category_group'"
    )
    legends = "m.center.filter((l) => l.items !== undefined && l.visible).map((l) => l.title)"
    assert model_value(page, "map", legends) == ["category"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "report-by-category.png", full_page=True)
    page.get_by_role("button", name="country", exact=True).click()
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('points').glyph.fill_color.field === 'group'"
    )
    assert model_value(page, "map", legends) == ["country"]


def choose_category(page, name: str) -> None:
    """Type into the category chooser and click the match it offers, as a user does."""
    box = page.locator(".bk-MultiChoice input[type=search]")
    box.click()
    box.press_sequentially(name)
    offered = page.locator(".choices__list--dropdown .choices__item--choice")
    offered.filter(has_text=re.compile(f"^{re.escape(name)}$")).click()


def test_the_category_chooser_filters_the_map_and_crossfilters(page, report):
    _, sample = report
    choose_category(page, "fish")
    fish = [row for row in sample if row["category"] == "fish"]
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {len(fish)}")
    visible = page.evaluate(VISIBLE_POINTS)
    keys = model_value(page, "drawings", "Array.from(m.data.key_id, String)")
    assert {keys[i] for i in visible} == {str(row["key_id"]) for row in fish}
    # the country bars count only the chosen category
    codes = model_value(page, "country_bars", "m.data.label")
    shown = model_value(page, "country_bars", "Array.from(m.data.shown)")
    expected = Counter(row["countrycode"] for row in fish)
    assert dict(zip(codes, shown, strict=True)) == {c: expected.get(c, 0) for c in codes}
    # a country bar narrows the chosen category further
    top = expected.most_common(1)[0][0]
    bars = page.evaluate(GLYPH_POSITIONS, ["countries", "country_bars"])
    click(page, bars[codes.index(top)])
    both = sum(row["countrycode"] == top for row in fish)
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {both}")
    choose_category(page, "cat")
    wanted = sum(row["countrycode"] == top and row["category"] in ("fish", "cat") for row in sample)
    page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {wanted}")


@pytest.fixture
def all_categories(heads: Path, tmp_path: Path) -> tuple[Path, pa.Table]:
    """A report of the real simplified heads relabelled round-robin over all 345 categories
    (about 7 drawings each), built straight from a sample table."""
    names = tuple((ROOT / "pipeline" / "categories.txt").read_text().splitlines())
    records = [
        orjson.loads(line)
        for path in sorted((heads / "simplified").glob("*.ndjson"))
        for line in read_lines(path)
    ]
    strokes = [
        (
            [x for stroke in r["drawing"] for x in stroke[0]],
            [y for stroke in r["drawing"] for y in stroke[1]],
            np.cumsum([len(stroke[0]) for stroke in r["drawing"]]).tolist(),
        )
        for r in records
    ]
    moments = [datetime.strptime(r["timestamp"][:19], "%Y-%m-%d %H:%M:%S") for r in records]
    sample = pa.table(
        {
            "key_id": pa.array([int(r["key_id"]) for r in records], pa.uint64()),
            "category": [names[i % len(names)] for i in range(len(records))],
            "countrycode": [r["countrycode"] for r in records],
            "recognized": [r["recognized"] for r in records],
            "timestamp": pa.array([m.replace(tzinfo=UTC) for m in moments], SAMPLE.field(4).type),
            "bitmap": pa.array(
                [row.tobytes() for row in render_bitmaps([r["drawing"] for r in records])],
                pa.binary(784),
            ),
            "position": [i // len(names) for i in range(len(records))],
            "xs": pa.array([s[0] for s in strokes], pa.list_(pa.uint8())),
            "ys": pa.array([s[1] for s in strokes], pa.list_(pa.uint8())),
            "stroke_ends": pa.array([s[2] for s in strokes], pa.list_(pa.int32())),
            "ts": pa.array([None] * len(records), pa.list_(pa.int32())),
        }
    )
    params = parse_params(
        {
            "dataset": {
                "base_url": GOOGLE_BASE_URL,
                "drawings": "simplified",
                "categories": list(names),
            },
            "sample": {"n": len(records), "seed": 1},
            "report": {"name": "all"},
        }
    )
    html = tmp_path / "all.html"
    html.write_text(render_html(ReportInputs(sample, Provenance(len(records)), params)))
    return html, sample


def test_345_categories_fit_one_screen(all_categories):
    html, sample = all_categories
    with browser_page(width=1400, height=1000) as page:
        page.goto(html.as_uri())
        page.wait_for_function(DOCUMENT_IDLE)
        height = page.evaluate("() => document.documentElement.scrollHeight")
        assert height <= 2000
        assert "drawings of 345 categories," in page.locator("header .lead").inner_text()
        names = page.locator("header details.names")
        assert "The Great Wall of China" in names.text_content()
        assert not names.evaluate("(details) => details.open"), "the names are collapsed"
        labels = model_value(page, "category_bars", "m.data.label")
        assert len(labels) == 16 and labels[-1].startswith("330 others (")
        options = model_value(page, "category_choice", "m.options")
        assert sorted(options) == sorted(set(sample["category"].to_pylist()))
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "report-345-categories.png", full_page=True)

        choose_category(page, "zebra")
        zebras = sum(c == "zebra" for c in sample["category"].to_pylist())
        page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {zebras}")
        bars = page.evaluate(GLYPH_POSITIONS, ["categories", "category_bars"])
        click(page, bars[-1])  # "others" as well: zebra is one of them
        page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === {zebras}")
        click(page, bars[0])  # the top bar alone
        click(page, bars[-1])
        page.wait_for_function(f"() => ({VISIBLE_POINTS})().length === 0")
        assert page.console_errors == []


@pytest.fixture
def raw_report(heads: Path, tmp_path: Path) -> tuple[Path, list[dict]]:
    """A report of real raw drawings (with their timing) of two categories."""
    from pipeline.formats.render import simplify_strokes

    categories = ("octopus", "cat")
    root = tmp_path / "raw"
    for category in categories:
        lines = read_lines(heads / "raw" / f"{category}.ndjson")
        drawings = [simplify_strokes(orjson.loads(line)["drawing"]) for line in lines]
        write_category(
            root, "raw", category, lines, render_bitmaps(drawings).reshape(len(lines), -1)
        )
    raw = {
        "dataset": {"base_url": "data/demo", "drawings": "raw", "categories": list(categories)},
        "sample": {"n": 30, "seed": 5},
        "report": {"name": "raw"},
    }
    params = parse_params(raw)
    run_join(root, "raw", categories, tmp_path / "store", tmp_path / "join.json")
    sample = tmp_path / "sample.parquet"
    run_sample(tmp_path / "store", categories, params.sample, sample, root, "raw")
    run_report(sample, tmp_path / "join.json", params, tmp_path / "reports")
    return tmp_path / "reports" / "raw.html", pq.read_table(sample).to_pylist()


def test_raw_drawings_replay_at_their_own_pace(raw_report):
    html, sample = raw_report
    with browser_page(width=1300, height=1100) as page:
        page.goto(html.as_uri())
        page.wait_for_function(DOCUMENT_IDLE)
        points = np.array(page.evaluate(POINT_POSITIONS))
        k = most_isolated(points)
        drawing = hover(page, points[k], sample, k)
        page.wait_for_function(REPLAYED)
        panel = page.evaluate(PANEL)
        assert_draws(panel, drawing)
        # each point when it was drawn, pauses longer than PAUSE_MS shortened to it
        ts = np.array(drawing["ts"], float)
        gaps = np.minimum(np.diff(ts, prepend=0.0), scripts.PAUSE_MS)
        at = np.cumsum(gaps)
        expected = np.insert(
            at, np.array(drawing["stroke_ends"][:-1]), at[np.array(drawing["stroke_ends"][:-1]) - 1]
        )
        np.testing.assert_allclose(panel["at"], expected)
        assert page.console_errors == []
