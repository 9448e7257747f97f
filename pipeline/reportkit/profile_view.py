"""The report's section "How countries draw it", built from the profile (every drawing).

A category picker (which follows the map's category search), the mean drawing of the
category's top countries as small multiples, and per country: the recognized share and the
clockwise share of first strokes, each with its 95% Wilson interval, and (raw drawings) the
median drawing time. Countries with fewer than `profile.min_drawings` drawings of the category
are left out of the views. At 100 and more countries the views show PAGE countries at a time,
sorted by the figure the user picks (`profile_sort`), the rest a page away (`profile_page`):
the section stays under 900 px however many countries draw a category. Every category's rows
ship in one source (`profile_store`); picking a category, a sort or a page copies the rows
shown into the sources the plots draw (`profile_rows`, `profile_means`). Hover a country for
its figures.

Named models, for tests and users' scripts: `profile_category` (the picker), `profile_sort`,
`profile_page`, `profile_heading`, `profile_rows`, `profile_means`, `profile_recognized`,
`profile_clockwise`, `profile_duration`, `profile_means_plot`.
"""

from __future__ import annotations

from collections import Counter
from html import escape
from typing import Any

import numpy as np
import pyarrow as pa
from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, CustomJS, Div, FactorRange, HoverTool, Select, Span
from bokeh.palettes import Greys256
from bokeh.plotting import figure

from pipeline.reportkit.drawings import country_name
from pipeline.store.schema import BITMAP_SIDE

INK_PALETTE = tuple(reversed(Greys256))  # 0 = white paper, 255 = black ink
COLOUR = "#4c72b0"
CELL = BITMAP_SIDE + 6  # bitmap pixels per small multiple, with its margin
MEANS_PER_ROW = 5
SCREEN_PIXELS = 2  # screen pixels per bitmap pixel in the small multiples
ROW_PIXELS = 16  # screen pixels per country in the per-country views
PAGE = 30  # countries per page of the per-country views
#: The per-country views' orders: label -> the rows' column, largest first.
SORTS = {
    "most drawings": "drawings",
    "recognized share": "recognized_share",
    "clockwise share": "clockwise",
    "median drawing time": "duration_s",
}

TOOLTIP = """
<div style="max-width: 280px">
<b>@name (@country)</b><br>
@drawings{0,0} drawings, @recognized{0,0} recognized<br>
recognized: @recognized_text<br>
clockwise first strokes: @clockwise_text<br>
median: @strokes_median{0.[0]} strokes, @points_median{0,0.[0]} points<br>
median drawing time: @duration_text
</div>
"""

#: Picking a category, a sort or a page: copy the rows shown out of the store into the views'
#: sources (a new category or sort starts at the first page).
PICK_CATEGORY = (
    f"""
const PAGE = {PAGE};
"""
    + """
const category = picker.value;
function rows_of(store) {
  const data = store.data;
  const picked = [];
  for (let i = 0; i < data.category.length; i++) {
    if (data.category[i] === category) { picked.push(i); }
  }
  return picked;
}
function copy(data, picked) {
  const out = {};
  for (const key of Object.keys(data)) { out[key] = picked.map((i) => data[key][i]); }
  return out;
}
const key = sorts[sort.value];
const figure = (i) => { const v = store.data[key][i]; return Number.isNaN(v) ? -Infinity : v; };
const all = rows_of(store);  // most drawings first: the store's order
const ordered = key === "drawings" ? all : [...all].sort((a, b) => figure(b) - figure(a) || a - b);
const pages = Math.max(Math.ceil(ordered.length / PAGE), 1);
const labels = Array.from({length: pages}, (_, p) =>
  `${p * PAGE + 1}-${Math.min((p + 1) * PAGE, ordered.length)} of ${ordered.length}`);
if (cb_obj !== page || !labels.includes(page.value)) {
  page.options = labels;
  page.value = labels[0];
}
page.visible = pages > 1;
const first = labels.indexOf(page.value) * PAGE;
const shown = copy(store.data, ordered.slice(first, first + PAGE));
rows.data = shown;
countries.factors = [...shown.country].reverse();
means.data = copy(means_store.data, rows_of(means_store));
heading.text = headings[category];
"""
)

#: The map's category search leads the section: its last chosen category is shown here.
FOLLOW_MAP = """
const chosen = chooser.value;
if (chosen.length > 0 && picker.options.includes(chosen[chosen.length - 1])) {
  picker.value = chosen[chosen.length - 1];
}
"""


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _country_rows(profile: pa.Table, min_drawings: int) -> dict[str, list]:
    """The profile's rows of countries with at least `min_drawings` drawings, in the views'
    order (category, then most drawings first), with the tooltip's texts."""
    rows = profile.drop_columns(["mean_bitmap"]).to_pylist()
    rows = [r for r in rows if r["drawings"] >= min_drawings]
    rows.sort(key=lambda r: (r["category"], -r["drawings"], r["countrycode"] or "~"))
    columns: dict[str, list] = {
        key: []
        for key in (
            "category",
            "country",
            "name",
            "drawings",
            "recognized",
            "recognized_share",
            "recognized_low",
            "recognized_high",
            "recognized_text",
            "clockwise",
            "clockwise_low",
            "clockwise_high",
            "clockwise_text",
            "strokes_median",
            "points_median",
            "duration_s",
            "duration_text",
        )
    }
    for r in rows:
        code = r["countrycode"] or "??"
        duration = r["duration_ms_median"]
        values = {
            "category": r["category"],
            "country": code,
            "name": country_name(code) if r["countrycode"] else "unknown country",
            "drawings": r["drawings"],
            "recognized": r["recognized"],
            "recognized_share": r["recognized_share"],
            "recognized_low": r["recognized_low"],
            "recognized_high": r["recognized_high"],
            "recognized_text": f"{r['recognized_share']:.1%} (95% interval "
            f"{r['recognized_low']:.1%} to {r['recognized_high']:.1%})",
            "clockwise": np.nan if r["clockwise_share"] is None else r["clockwise_share"],
            "clockwise_low": np.nan if r["clockwise_low"] is None else r["clockwise_low"],
            "clockwise_high": np.nan if r["clockwise_high"] is None else r["clockwise_high"],
            "clockwise_text": f"{r['clockwise_share']:.1%} (95% interval "
            f"{r['clockwise_low']:.1%} to {r['clockwise_high']:.1%}, of {r['directed']:,})"
            if r["clockwise_share"] is not None
            else "none has a direction",
            "strokes_median": r["strokes_median"],
            "points_median": r["points_median"],
            "duration_s": np.nan if duration is None else duration / 1000,
            "duration_text": "n/a (no times in this format)"
            if duration is None
            else f"{duration / 1000:.1f} s",
        }
        for key, value in values.items():
            columns[key].append(value)
    return columns


def _means(profile: pa.Table, rows: dict[str, list], top: int) -> dict[str, list]:
    """The mean bitmaps of each category's `top` countries (of those shown), laid out in a grid
    of MEANS_PER_ROW."""
    index = {
        (c, code or "??"): i
        for i, (c, code) in enumerate(
            zip(profile["category"].to_pylist(), profile["countrycode"].to_pylist(), strict=True)
        )
    }
    bitmaps = profile["mean_bitmap"]
    means: dict[str, list] = {k: [] for k in ("category", "label", "image", "x", "y", "ly")}
    place: dict[str, int] = {}
    for category, code, drawings in zip(
        rows["category"], rows["country"], rows["drawings"], strict=True
    ):
        slot = place.get(category, 0)
        if slot >= top:
            continue
        place[category] = slot + 1
        pixels = np.frombuffer(bitmaps[index[(category, code)]].as_py(), np.uint8)
        means["category"].append(category)
        means["label"].append(f"{code} ({drawings:,})")
        means["image"].append(pixels.reshape(BITMAP_SIDE, BITMAP_SIDE).copy())
        means["x"].append((slot % MEANS_PER_ROW) * CELL)
        means["y"].append(-(slot // MEANS_PER_ROW) * (CELL + 6))
        means["ly"].append(-(slot // MEANS_PER_ROW) * (CELL + 6) - 1)
    return means


def _pick(data: dict[str, list], category: str, limit: int | None = None) -> dict[str, list]:
    keep = [i for i, c in enumerate(data["category"]) if c == category][:limit]
    return {key: [values[i] for i in keep] for key, values in data.items()}


def _headings(
    profile: pa.Table, categories: tuple[str, ...], rows: dict[str, list], min_drawings: int
) -> dict[str, str]:
    """Each category's heading, from one pass over the profile (not a filter per category)."""
    drawings: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    for category, count in zip(
        profile["category"].to_pylist(), profile["drawings"].to_pylist(), strict=True
    ):
        drawings[category] += count
        countries[category] += 1
    shown = Counter(rows["category"])
    return {
        c: f"<b>{escape(c)}</b>: {drawings[c]:,} drawings from {countries[c]} countries; "
        f"{shown[c]} with at least {min_drawings} drawings are shown (profile.min_drawings)."
        for c in categories
    }


def _means_plot(means: ColumnDataSource, most: int) -> Any:
    """The small multiples, room for `most` of them (the most any category has)."""
    columns = min(most, MEANS_PER_ROW)
    lines = -(-most // MEANS_PER_ROW)
    plot = figure(
        frame_width=columns * CELL * SCREEN_PIXELS,
        frame_height=lines * (CELL + 6) * SCREEN_PIXELS,
        x_range=(-2, columns * CELL - 4),
        y_range=(-(lines - 1) * (CELL + 6) - 8, BITMAP_SIDE + 2),
        title="mean drawing, top countries",
        tools="",
        toolbar_location=None,
        name="profile_means_plot",
    )
    plot.axis.visible = False
    plot.grid.visible = False
    plot.outline_line_color = None
    plot.image(
        image="image",
        x="x",
        y="y",
        dw=BITMAP_SIDE,
        dh=BITMAP_SIDE,
        source=means,
        origin="top_left",  # row 0 of a bitmap is its top
        palette=INK_PALETTE,
        level="image",
    )
    plot.text(x="x", y="ly", text="label", source=means, text_font_size="9pt", text_baseline="top")
    return plot


def _share_plot(
    name: str,
    title: str,
    prefix: str,
    share: str,
    countries: FactorRange,
    height: int,
    rows: ColumnDataSource,
) -> tuple[Any, Any]:
    """A share per country as a dot on its Wilson interval (columns prefix_low/high)."""
    plot = _country_plot(name, f"{title} (95% interval)", countries, height, x_range=(0, 1))
    dots = plot.scatter(x=share, y="country", source=rows, size=7, color=COLOUR)
    plot.segment(
        x0=f"{prefix}_low",
        y0="country",
        x1=f"{prefix}_high",
        y1="country",
        source=rows,
        line_color=COLOUR,
        line_width=2,
    )
    return plot, dots


def _country_plot(name: str, title: str, countries: FactorRange, height: int, **extra: Any):
    plot = figure(
        width=300,
        height=height,
        y_range=countries,
        title=title,
        tools="",
        toolbar_location=None,
        name=name,
        **extra,
    )
    plot.ygrid.grid_line_color = None
    plot.yaxis.major_label_text_font_size = "8pt"
    plot.title.text_font_size = "10pt"
    return plot


def build_profile_view(
    profile: pa.Table, categories: tuple[str, ...], min_drawings: int, top: int
) -> Any:
    """The section's layout: picker, heading, small multiples and the per-country views."""
    data = _country_rows(profile, min_drawings)
    means_data = _means(profile, data, top)
    first = categories[0]
    store = ColumnDataSource(data=data, name="profile_store")
    rows = ColumnDataSource(data=_pick(data, first, PAGE), name="profile_rows")
    means_store = ColumnDataSource(data=means_data, name="profile_means_store")
    means = ColumnDataSource(data=_pick(means_data, first), name="profile_means")
    largest = min(max([data["category"].count(c) for c in categories] + [1]), PAGE)
    countries = FactorRange(factors=list(reversed(rows.data["country"])))
    height = 60 + ROW_PIXELS * largest
    headings = _headings(profile, categories, data, min_drawings)
    heading = Div(text=headings[first], name="profile_heading", width=560)
    picker = Select(
        title="category", value=first, options=list(categories), width=220, name="profile_category"
    )
    sort = Select(
        title="countries by",
        value="most drawings",
        options=list(SORTS),
        width=170,
        name="profile_sort",
    )
    count = data["category"].count(first)
    labels = [f"{p + 1}-{min(p + PAGE, count)} of {count}" for p in range(0, max(count, 1), PAGE)]
    page = Select(
        title="countries",
        value=labels[0],
        options=labels,
        width=130,
        name="profile_page",
        visible=len(labels) > 1,
    )

    recognized, marks = _share_plot(
        "profile_recognized",
        "recognized share",
        "recognized",
        "recognized_share",
        countries,
        height,
        rows,
    )
    clockwise, dots = _share_plot(
        "profile_clockwise", "clockwise share", "clockwise", "clockwise", countries, height, rows
    )
    clockwise.add_layout(Span(location=0.5, dimension="height", line_color="#999"))
    views = [recognized, clockwise]
    renderers = [marks, dots]
    if profile["duration_ms_median"].null_count < profile.num_rows:
        duration = _country_plot(
            "profile_duration", "median drawing time (seconds)", countries, height
        )
        duration.x_range.start = 0
        renderers.append(
            duration.hbar(
                y="country", right="duration_s", height=0.7, source=rows, color=COLOUR, alpha=0.8
            )
        )
        views.append(duration)
    for plot, renderer in zip(views, renderers, strict=True):
        plot.add_tools(HoverTool(renderers=[renderer], tooltips=TOOLTIP))
    pick = CustomJS(
        args={
            "picker": picker,
            "sort": sort,
            "sorts": SORTS,
            "page": page,
            "store": store,
            "rows": rows,
            "means_store": means_store,
            "means": means,
            "countries": countries,
            "heading": heading,
            "headings": headings,
        },
        code=PICK_CATEGORY,
    )
    for control in (picker, sort, page):
        control.js_on_change("value", pick)
    total = sum(profile["drawings"].to_pylist())
    intro = Div(
        text=(
            "<h2>How countries draw it</h2><p>Built from <b>all</b> "
            f"{total:,} drawings of the store (data/profile/profile.parquet), not from the "
            "sample in the map above. A first stroke is clockwise when its signed area, in "
            "screen coordinates, is positive; lines and dots count for neither direction.</p>"
        ),
        width=1140,
        name="profile_intro",
    )
    most = max([means_data["category"].count(c) for c in categories] + [1])
    return column(intro, row(picker, sort, page, heading), row(_means_plot(means, most), *views))


def follow(chooser: Any, section: Any) -> None:
    """The section shows the category last chosen in the map's search (`chooser`)."""
    picker = section.select_one({"name": "profile_category"})
    chooser.js_on_change(
        "value", CustomJS(args={"chooser": chooser, "picker": picker}, code=FOLLOW_MAP)
    )
