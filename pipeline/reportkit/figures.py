"""The Bokeh layout: the map of drawings, the hovered drawing's panel, two linked bar charts,
a searchable category chooser, and the colour switch.

Models that tests and users' scripts look up carry names: `drawings` (the map's source, with
`key_id`), `ink` and `pens` (the strokes' points and per-stroke counts), `map`, `points` (the
map's renderer), `visible` (its filter), `panel` (the shown drawing: `key_id`, the `xs`/`ys`
drawn so far, NaN between strokes, `drawn` of `total` path entries, `at` when each is drawn),
`panel_plot`, `heading` and `caption0..2` (its text), `panel_strokes` and `panel_pixels` (its
renderers), `panel_image` (the 28x28 bitmap drawn from the strokes), `panel_mode`,
`colour_by`, `category_choice`, `country_bars`, `category_bars`; `category_names` and
`name_store` (the names on the map, `map_names`), `neighbours` (the strip of drawings like the
clicked one: `key_id`, `index`, `country`) and `likeness` (every drawing's nearest, as rows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.document import Document
from bokeh.events import DocumentReady
from bokeh.layouts import column, row
from bokeh.models import (
    BooleanFilter,
    BoxSelectTool,
    CDSView,
    ColumnDataSource,
    CustomJS,
    CustomJSHover,
    Div,
    FactorRange,
    HoverTool,
    Label,
    LassoSelectTool,
    Legend,
    LegendItem,
    LinearColorMapper,
    MultiChoice,
    NumeralTickFormatter,
    RadioButtonGroup,
    Range1d,
    TapTool,
)
from bokeh.palettes import Category20, Greys256
from bokeh.plotting import figure

from pipeline.reportkit import map_names, scripts
from pipeline.reportkit.drawings import OTHER, SIDE, Drawings, country_name
from pipeline.reportkit.strokes import Strokes

INK_PALETTE = tuple(reversed(Greys256))  # 0 = white paper, 255 = black ink
OTHER_COLOUR = "#b0b0b0"
CATEGORY_COLOUR = "#4c72b0"
COLOURED_CATEGORIES = 19  # categories with their own colour when colouring by category
MAP_BACKEND = "canvas"  # measured faster than "webgl" in Chromium (benchmarks/bench_report.py)
CATEGORY_BARS = 15  # bars for the top categories; the rest share an "others" bar
COUNTRY_BARS = 29  # bars for the top countries; the rest share an "others" bar
MAP_FRAME = (850, 660)  # px: the map is the page's main element in a 1400 px wide window
COUNT_FORMAT = "0.[0]a"  # count axes read 12k, not 1.2e+4
CAPTION_STYLE = {"x": 6, "x_units": "screen", "y_units": "screen", "text_font_size": "10pt"}
MAP_TITLE = "{shown} of {total} drawings shown; hover a point to see the drawing"
JS_MAP_TITLE = MAP_TITLE.format(
    shown='${shown.toLocaleString("en-US")}', total='${total.toLocaleString("en-US")}'
)


def group_colours(drawings: Drawings) -> list[str]:
    """One colour per legend group: a distinct colour per top country, grey for `other`."""
    palette = list(Category20[20][::2] + Category20[20][1::2])
    return [OTHER_COLOUR if g == OTHER else palette[i] for i, g in enumerate(drawings.groups)]


def map_title(shown: int, total: int) -> str:
    return MAP_TITLE.format(shown=f"{shown:,}", total=f"{total:,}")


def marker_style(count: int) -> tuple[float, float]:
    """Size (px) and opacity of the map's squares: 8 px and 0.8 up to 1,000 drawings, then
    smaller and fainter as the sample grows (2 px and 0.32 at 100,000), so that dense groups
    stay darker than sparse ones instead of one carpet of colour."""
    scale = 1000 / max(count, 1000)
    return round(8 * scale**0.3, 1), round(0.8 * scale**0.2, 2)


def map_ranges(coords: np.ndarray, layout: str) -> tuple[Range1d, Range1d]:
    """Fixed ranges around the drawings (equal scales unless the layout is random), so that
    the default view, and the names placed in it, are known when the page is built."""
    if len(coords) == 0:
        return Range1d(0, 1), Range1d(0, 1)
    low, high = coords.min(axis=0).astype(np.float64), coords.max(axis=0).astype(np.float64)
    span = np.maximum(high - low, 1e-9) * 1.06
    centre = (low + high) / 2
    if layout != "random":
        per_px = max(span[0] / MAP_FRAME[0], span[1] / MAP_FRAME[1])
        span = np.array([per_px * MAP_FRAME[0], per_px * MAP_FRAME[1]])
    x0, y0 = (centre - span / 2).tolist()
    x1, y1 = (centre + span / 2).tolist()
    return Range1d(x0, x1), Range1d(y0, y1)


def point_source(drawings: Drawings, strokes: Strokes, coords: np.ndarray) -> ColumnDataSource:
    return ColumnDataSource(
        data={
            "x": coords[:, 0],
            "y": coords[:, 1],
            "key_id": drawings.key_id,
            "category": drawings.category,
            "category_group": category_groups(drawings)[0],
            "country": drawings.country,
            "group": drawings.group,
            "recognized": drawings.recognized,
            "time": drawings.time,
            "strokes": strokes.drawing_strokes,
        },
        name="drawings",
    )


def stroke_sources(strokes: Strokes) -> tuple[ColumnDataSource, ColumnDataSource]:
    """Every drawing's points (byte deltas, and ms gaps for raw data) and points per stroke."""
    ink = {"dx": strokes.dx, "dy": strokes.dy}
    if strokes.dt is not None:
        ink["dt"] = strokes.dt
    return (
        ColumnDataSource(data=ink, name="ink"),
        ColumnDataSource(data={"points": strokes.stroke_points}, name="pens"),
    )


def ranked_categories(drawings: Drawings) -> np.ndarray:
    """Category indices, most drawings first (then params order)."""
    counts = drawings.category_counts()
    return np.lexsort((np.arange(len(counts)), -counts))


def category_groups(drawings: Drawings) -> tuple[np.ndarray, list[str]]:
    """Each drawing's colour group by category: the top categories, then `other`."""
    ranked = ranked_categories(drawings)
    top = COLOURED_CATEGORIES if len(ranked) > COLOURED_CATEGORIES + 1 else len(ranked)
    group_of = np.full(len(ranked), top, np.uint8)
    group_of[ranked[:top]] = np.arange(top)
    labels = [drawings.categories[k] for k in ranked[:top]]
    if top < len(ranked):
        labels.append(f"{OTHER} ({len(ranked) - top} categories)")
    return group_of[drawings.category], labels


def category_colours(count: int) -> list[str]:
    palette = list(Category20[20][::2] + Category20[20][1::2])
    return [palette[i] for i in range(min(count, COLOURED_CATEGORIES))] + [OTHER_COLOUR] * max(
        count - COLOURED_CATEGORIES, 0
    )


def _legend(title: str, labels: list[str], groups: np.ndarray, renderer: Any) -> Legend:
    items = []
    for index, label in enumerate(labels):
        members = np.flatnonzero(groups == index)
        if len(members):
            items.append(LegendItem(label=label[:20], renderers=[renderer], index=int(members[0])))
    return Legend(
        items=items,
        title=title,
        label_text_font_size="8pt",
        spacing=0,
        glyph_width=12,
        glyph_height=12,
        label_height=12,
        padding=4,
        location="top_right",
        background_fill_alpha=0.75,
    )


def country_labels(drawings: Drawings) -> list[str]:
    labels = []
    for group in drawings.groups:
        if group == OTHER:
            others = len(drawings.countries) - (len(drawings.groups) - 1)
            labels.append(f"other ({others} countries)")
        else:
            labels.append(f"{group} {country_name(group)}")
    return labels


def colour_mapper(colours: list[str]) -> LinearColorMapper:
    return LinearColorMapper(
        palette=colours or [OTHER_COLOUR], low=-0.5, high=max(len(colours), 1) - 0.5
    )


#: The map's axis labels for each `report.layout`.
AXES = {
    "tsne": ("t-SNE 1 (of the strokes' directions)", "t-SNE 2"),
    "pca": ("first principal component of the bitmaps", "second principal component"),
    "random": ("drawing", "random height"),
}


def map_figure(
    drawings: Drawings,
    coords: np.ndarray,
    layout: str,
    points: ColumnDataSource,
    backend: str = MAP_BACKEND,
):
    """The scatter of drawings, coloured by country group (or category), filtered by the bar
    charts and the category chooser; the legend of each colouring, one of them visible."""
    x_range, y_range = map_ranges(coords, layout)
    plot = figure(
        frame_width=MAP_FRAME[0],
        frame_height=MAP_FRAME[1],
        x_range=x_range,
        y_range=y_range,
        title=map_title(len(drawings), len(drawings)),
        x_axis_label=AXES[layout][0],
        y_axis_label=AXES[layout][1],
        tools="pan,wheel_zoom,box_zoom,box_select,lasso_select,tap,reset",
        active_scroll="wheel_zoom",
        active_drag="pan",
        toolbar_location="above",  # beside the title: the width is the map's
        output_backend=backend,
        name="map",
    )
    colours = group_colours(drawings)
    size, alpha = marker_style(len(drawings))
    renderer = plot.scatter(
        "x",
        "y",
        source=points,
        view=CDSView(filter=BooleanFilter(name="visible")),
        size=size,
        marker="square",
        alpha=alpha,
        line_color=None,
        fill_color={"field": "group", "transform": colour_mapper(colours)},
        nonselection_alpha=0.15,
        name="points",
    )
    by_category, category_labels = category_groups(drawings)
    legends = {
        "country_legend": _legend("country", country_labels(drawings), drawings.group, renderer),
        "category_legend": _legend("category", category_labels, by_category, renderer),
        "country_colours": renderer.glyph.fill_color.transform,
        "category_colours": colour_mapper(category_colours(len(category_labels))),
    }
    legends["category_legend"].visible = False
    for name in ("country_legend", "category_legend"):
        plot.add_layout(legends[name])  # in the frame: the map keeps the page's width
    for tool in plot.select({"type": (TapTool, BoxSelectTool, LassoSelectTool)}):
        tool.renderers = [renderer]  # the drawings, not the names
    name_layer(plot, drawings, coords)
    return plot, renderer, legends


def name_layer(plot: Any, drawings: Drawings, coords: np.ndarray) -> None:
    """Each category's name at its densest group of drawings (`map_names`), placed again by
    the page whenever the map's ranges change; drawn when the sample has several categories."""
    store = map_names.anchors(coords, drawings.category, drawings.categories)
    view = ((plot.x_range.start, plot.x_range.end), (plot.y_range.start, plot.y_range.end))
    names = ColumnDataSource(data=map_names.place(store, *view, MAP_FRAME), name="category_names")
    plot.text(
        "x",
        "y",
        text="text",
        source=names,
        text_align="center",
        text_baseline="middle",
        text_font_size=f"{map_names.FONT_PX}px",
        text_font_style="bold",
        text_color="#222222",
        background_fill_color="white",
        background_fill_alpha=0.65,
        visible=len(store["text"]) > 1,
        name="names",
    )
    store_source = ColumnDataSource(data=store, name="name_store")
    place = CustomJS(
        args={"plot": plot, "store": store_source, "names": names}, code=map_names.PLACE_NAMES
    )
    for axis in (plot.x_range, plot.y_range):
        axis.js_on_change("start", place)
        axis.js_on_change("end", place)


def neighbour_strip(neighbours: np.ndarray) -> tuple[Any, dict[str, Any]]:
    """The strip under the panel: the clicked drawing's nearest drawings, each with its country
    (`likeness`); filled in the page on a click, a click on one shows it in the panel."""
    strip = ColumnDataSource(
        data={"key_id": [], "index": [], "country": [], "xs": [], "ys": [], "x": [], "y": []},
        name="neighbours",
    )
    rows = ColumnDataSource(data={"rows": neighbours.reshape(-1)}, name="likeness")
    cell = scripts.PANEL / scripts.STRIP_COLUMNS
    plot = figure(
        frame_width=scripts.PANEL,
        frame_height=round(scripts.STRIP_ROWS * cell * (1 + scripts.STRIP_LABEL)),
        x_range=Range1d(0, scripts.STRIP_COLUMNS * scripts.BOX),
        y_range=Range1d(
            scripts.STRIP_ROWS * scripts.BOX * (1 + scripts.STRIP_LABEL), 0
        ),  # y down, as drawn
        title="most like the clicked drawing (click one)",
        tools="",
        toolbar_location=None,
        name="neighbour_plot",
        min_border=4,
        outline_line_color="#dddddd",
    )
    plot.title.text_font_size = "9pt"
    plot.axis.visible = False
    plot.grid.visible = False
    plot.multi_line(xs="xs", ys="ys", source=strip, line_color="#111111", line_width=1.5)
    plot.text(
        x="x",
        y="y",
        text="country",
        source=strip,
        text_align="center",
        text_baseline="top",
        text_font_size="8pt",
        text_color="#555555",
    )
    return plot, {"neighbours": strip, "likeness": rows, "k": int(neighbours.shape[1])}


def panel_figure() -> tuple[Any, dict[str, Any]]:
    """The hovered drawing, drawn: its strokes as vectors in Google's 304-unit frame (y down),
    replayed as drawn; or, one toggle away, its 28x28 bitmap drawn from them in the page."""
    panel = ColumnDataSource(
        data={"key_id": [""], "xs": [[]], "ys": [[]], "drawn": [0], "total": [0], "at": [[]]},
        name="panel",
    )
    bitmap = ColumnDataSource(
        data={
            "image": [np.zeros((SIDE, SIDE), np.uint8)],
            "x": [0.0],
            "y": [0.0],
            "dw": [scripts.BOX],
            "dh": [scripts.BOX],
        },
        name="panel_image",
    )
    plot = figure(
        frame_width=scripts.PANEL,
        frame_height=scripts.ABOVE + scripts.PANEL + scripts.BELOW,
        x_range=Range1d(0, scripts.BOX),
        y_range=Range1d(  # y down, as drawn; room for the heading and captions
            scripts.BOX * (1 + scripts.BELOW / scripts.PANEL),
            -scripts.BOX * scripts.ABOVE / scripts.PANEL,
        ),
        tools="",
        toolbar_location=None,
        name="panel_plot",
        min_border=4,
        outline_line_color="#dddddd",
        title=None,  # no axes, grids or title: nothing but the drawing repainted per frame
        x_axis_location=None,
        y_axis_location=None,
    )
    plot.grid.visible = False
    pixels = plot.image(
        image="image",
        x="x",
        y="y",
        dw="dw",
        dh="dh",
        source=bitmap,
        origin="bottom_left",  # the y axis points down: row 0 at the top
        color_mapper=LinearColorMapper(palette=INK_PALETTE, low=0, high=255),
        visible=False,
        name="panel_pixels",
    )
    vectors = plot.multi_line(
        xs="xs",
        ys="ys",
        source=panel,
        line_color="#111111",
        line_width=3,
        line_cap="round",
        line_join="round",
        name="panel_strokes",
    )
    # Text as canvas labels in the frame (Bokeh clips them to it): changing them repaints the
    # panel alone, where a Title's new text would lay the whole page out again on every hover.
    # On the overlay layer: the replay's frames repaint the strokes' layer, not the text.
    heading = Label(
        text="hover a drawing",
        name="heading",
        text_font_style="bold",
        y=scripts.BELOW + scripts.PANEL + 4,
        level="overlay",
        **CAPTION_STYLE,
    )
    lines = [
        Label(
            text="",
            name=f"caption{i}",
            y=scripts.BELOW - 20 * (i + 1),
            level="overlay",
            **CAPTION_STYLE,
        )
        for i in range(3)
    ]
    for label in (heading, *lines):
        plot.add_layout(label)
    mode = RadioButtonGroup(labels=["strokes", "28x28 bitmap"], active=0, name="panel_mode")
    models = {
        "panel_plot": plot,
        "panel": panel,
        "bitmap": bitmap,
        "captions": lines,
        "heading": heading,
        "mode": mode,
        "vectors": vectors,
        "pixels": pixels,
    }
    return plot, models


def _bars_source(
    source_name: str, labels: list[str], totals: np.ndarray, **extra: list[str]
) -> ColumnDataSource:
    return ColumnDataSource(
        data={
            "label": labels,
            "total": totals.astype(np.int32),
            "shown": totals.astype(np.int32),
            **extra,
        },
        name=source_name,
    )


def country_bars(drawings: Drawings, width: int) -> tuple[Any, ColumnDataSource, list[int]]:
    """Drawings per country in the sample, the top ones and "others"; click or box-select bars
    to filter the map. Returns the plot, its source, and each country's bar."""
    colours = group_colours(drawings)
    codes = list(drawings.countries)
    counts = drawings.country_counts()
    shown = len(codes) if len(codes) <= COUNTRY_BARS + 1 else COUNTRY_BARS
    bar_of = [min(c, shown) for c in range(len(codes))]
    groups = np.minimum(np.arange(shown), max(len(colours) - 1, 0))
    labels = codes[:shown]
    names = [country_name(code) for code in labels]
    bar_colours = [colours[g] for g in groups] if colours else []
    totals = counts[:shown].tolist()
    others = int(counts[shown:].sum())
    if shown < len(codes):
        labels.append(f"{len(codes) - shown} others")
        names.append(f"{len(codes) - shown} other countries ({others:,} drawings)")
        bar_colours.append(OTHER_COLOUR)
        totals.append(others)
    source = _bars_source(
        "country_bars", labels, np.array(totals, np.int64), name=names, colour=bar_colours
    )
    plot = figure(
        width=width,
        height=230,
        x_range=FactorRange(*labels),
        title="drawings per country: click bars to show or hide countries in the map",
        tools=[TapTool(mode="xor"), BoxSelectTool(dimensions="width")],
        toolbar_location=None,  # every view costs start-up time; these tools need no buttons
        name="countries",
    )
    _bars(plot, source, vertical=True, colour="colour")
    plot.xaxis.major_label_orientation = np.pi / 2 if len(labels) > 20 else 0
    plot.xaxis.major_label_text_font_size = "8pt"
    plot.yaxis.formatter = NumeralTickFormatter(format=COUNT_FORMAT)
    plot.xgrid.grid_line_color = None
    plot.y_range.start = 0
    top = max(totals[:shown], default=0)
    if shown < len(codes) and others > 1.5 * top:
        plot.y_range.end = 1.5 * top  # "others" runs off the chart; the title gives its count
        plot.title.text += f" (the {len(codes) - shown} others: {others:,}, off the scale)"
    return plot, source, bar_of


def category_bars(drawings: Drawings) -> tuple[Any, ColumnDataSource, list[int]]:
    """Drawings per category, the top ones and "others"; click bars to filter the map.

    Returns the plot, its source, and each category's bar."""
    ranked = ranked_categories(drawings).tolist()
    shown = ranked if len(ranked) <= CATEGORY_BARS + 1 else ranked[:CATEGORY_BARS]
    labels = [drawings.categories[k] for k in shown]
    bar_of = [len(shown)] * len(ranked)
    for bar, k in enumerate(shown):
        bar_of[k] = bar
    counts = drawings.category_counts()
    totals = [int(counts[k]) for k in shown]
    others = int(counts.sum()) - sum(totals)
    if len(shown) < len(ranked):
        labels.append(f"{len(ranked) - len(shown)} others ({others:,})")
        totals.append(others)
    source = _bars_source("category_bars", labels, np.array(totals), name=[""] * len(labels))
    plot = figure(
        width=scripts.PANEL + 40,
        height=60 + 20 * max(len(labels), 1),
        y_range=FactorRange(*reversed(labels)),
        title="categories: click to filter",  # a click toggles one bar
        y_axis_location="right",  # keeps this frame's left edge under the panel's
        tools=[TapTool(mode="xor"), BoxSelectTool(dimensions="height")],
        toolbar_location=None,
        name="categories",
    )
    _bars(plot, source, vertical=False, colour=CATEGORY_COLOUR)
    plot.ygrid.grid_line_color = None
    plot.xaxis.formatter = NumeralTickFormatter(format=COUNT_FORMAT)
    plot.x_range.start = 0
    top = max(totals[: len(shown)], default=0)
    if len(shown) < len(ranked) and others > 1.5 * top:
        plot.x_range.end = 1.5 * top  # "others" runs off the chart; its label gives its count
    return plot, source, bar_of


def category_chooser(drawings: Drawings) -> MultiChoice:
    """A searchable list of every category: choosing some shows only those in the map."""
    ranked = ranked_categories(drawings)
    return MultiChoice(
        options=[drawings.categories[k] for k in ranked],
        value=[],
        placeholder=f"search {len(ranked)} categories",
        width=scripts.PANEL + 40,
        name="category_choice",
    )


def _bars(plot: Any, source: ColumnDataSource, *, vertical: bool, colour: str) -> None:
    """A pale bar for all drawings, a solid one for those the other filters leave."""
    for field, alpha in (("total", 0.25), ("shown", 0.9)):
        style = {
            "source": source,
            "fill_color": colour,
            "line_color": None,
            "fill_alpha": alpha,
            "nonselection_fill_alpha": alpha * 0.3,
            "selection_fill_alpha": alpha,
        }
        if vertical:
            plot.vbar(x="label", top=field, width=0.8, **style)
        else:
            plot.hbar(y="label", right=field, height=0.8, **style)


def build_layout(
    drawings: Drawings,
    strokes: Strokes,
    coords: np.ndarray,
    layout: str,
    sections: tuple[Any, ...] = (),
    backend: str = MAP_BACKEND,
    neighbours: np.ndarray | None = None,
):
    """The whole report's Bokeh layout, with its hover and crossfilter callbacks wired;
    `sections` (other Bokeh layouts) follow below it; `backend` draws the map ("canvas" or
    "webgl"); `neighbours`: each drawing's nearest (`likeness.neighbours`), for the strip."""
    points = point_source(drawings, strokes, coords)
    ink, pens = stroke_sources(strokes)
    map_plot, renderer, legends = map_figure(drawings, coords, layout, points, backend)
    panel_plot, panel = panel_figure()
    if neighbours is None:
        neighbours = np.zeros((len(drawings), 0), np.uint32)
    strip_plot, strip = neighbour_strip(neighbours)
    countries_plot, countries, country_bar_of = country_bars(drawings, map_plot.frame_width + 60)
    categories_plot, categories, bar_of = category_bars(drawings)
    chooser = category_chooser(drawings)
    # The args of every snippet that uses the shared helpers (scripts.PRELUDE): whichever runs
    # first builds the helpers with its args, so each gets these (plus its own).
    page_args = {
        "points": points,
        "ink": ink,
        "pens": pens,
        "codes": drawings.countries,
        "names": [country_name(code) for code in drawings.countries],
        "categories": drawings.categories,
        **{k: panel[k] for k in ("panel_plot", "panel", "bitmap", "captions", "heading", "mode")},
    }
    map_plot.add_tools(
        HoverTool(
            renderers=[renderer],
            tooltips=scripts.TOOLTIP,
            formatters={"$index": CustomJSHover(args=page_args, code=scripts.TOOLTIP_FIELD)},
            filters={"$index": CustomJS(args=page_args, code=scripts.ONLY_TOPMOST)},
            callback=CustomJS(args=page_args, code=scripts.SHOW_HOVERED),
        )
    )
    replay = CustomJS(args=page_args, code=scripts.REPLAY)
    map_plot.js_on_event("tap", CustomJS(args={**page_args, **strip}, code=scripts.FILL_STRIP))
    panel_plot.js_on_event("tap", replay)
    strip_plot.js_on_event("tap", CustomJS(args={**page_args, **strip}, code=scripts.STRIP_PICK))
    panel["mode"].js_on_change(
        "active",
        CustomJS(
            args={
                **page_args,
                "stroke_renderer": panel["vectors"],
                "bitmap_renderer": panel["pixels"],
            },
            code=scripts.PANEL_MODE,
        ),
    )
    colour_by = RadioButtonGroup(labels=["country", "category"], active=0, name="colour_by")
    colour_by.js_on_change(
        "active",
        CustomJS(
            args={"colour_by": colour_by, "renderer": renderer, **legends},
            code=scripts.COLOUR_BY,
        ),
    )
    crossfilter = CustomJS(
        args={
            "points": points,
            "visible": renderer.view.filter,
            "country_bars": countries,
            "category_bars": categories,
            "bar_of": bar_of,
            "country_bar_of": country_bar_of,
            "categories": drawings.categories,
            "chooser": chooser,
            "title": map_plot.title,
        },
        code=scripts.crossfilter_code(JS_MAP_TITLE),
    )
    for source in (points, countries, categories):
        source.selected.js_on_change("indices", crossfilter)
    chooser.js_on_change("value", crossfilter)
    controls = row(Div(text="colour:"), colour_by)
    side = column(panel_plot, panel["mode"], strip_plot, chooser, categories_plot)
    layout = column(row(column(map_plot, controls, countries_plot), side), *sections)
    # The hover's helpers built and warmed up while the page is idle, not on the first hover.
    Document().add_root(layout)
    layout.document.js_on_event(DocumentReady, CustomJS(args=page_args, code=scripts.WARM_UP))
    return layout
