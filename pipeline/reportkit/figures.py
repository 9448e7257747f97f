"""The Bokeh layout: the map of drawings, the hovered drawing's panel, and two linked bar charts.

Models that tests and users' scripts look up carry names: `drawings` (the map's source, with
`key_id`), `bitmaps`, `panel_image`, `map`, `panel`, `points` (the map's renderer), `visible`
(its filter), `country_bars`, `category_bars`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bokeh.layouts import column, row
from bokeh.models import (
    BooleanFilter,
    BoxSelectTool,
    CDSView,
    ColumnDataSource,
    CustomJS,
    CustomJSHover,
    FactorRange,
    HoverTool,
    Legend,
    LegendItem,
    LinearColorMapper,
    TapTool,
    Title,
)
from bokeh.palettes import Category20, Greys256
from bokeh.plotting import figure

from pipeline.reportkit import scripts
from pipeline.reportkit.drawings import OTHER, SIDE, Drawings, country_name

INK_PALETTE = tuple(reversed(Greys256))  # 0 = white paper, 255 = black ink
OTHER_COLOUR = "#b0b0b0"
CATEGORY_COLOUR = "#4c72b0"
PANEL_PIXELS = 10  # screen pixels per bitmap pixel in the panel
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


def point_source(drawings: Drawings, coords: np.ndarray) -> ColumnDataSource:
    return ColumnDataSource(
        data={
            "x": coords[:, 0],
            "y": coords[:, 1],
            "key_id": drawings.key_id,
            "category": drawings.category,
            "country": drawings.country,
            "group": drawings.group,
            "recognized": drawings.recognized,
            "time": drawings.time,
        },
        name="drawings",
    )


def _legend(drawings: Drawings, renderer: Any) -> Legend:
    items = []
    for index, group in enumerate(drawings.groups):
        members = np.flatnonzero(drawings.group == index)
        if group == OTHER:
            others = len(drawings.countries) - (len(drawings.groups) - 1)
            label = f"other ({others} countries)"
        else:
            label = f"{group} {country_name(group)}"[:24]
        items.append(LegendItem(label=label, renderers=[renderer], index=int(members[0])))
    return Legend(items=items, title="country", label_text_font_size="9pt", spacing=1)


def map_figure(drawings: Drawings, coords: np.ndarray, is_pca: bool, points: ColumnDataSource):
    """The scatter of drawings, coloured by country group, filtered by the bar charts."""
    plot = figure(
        width=820,
        height=600,
        title=map_title(len(drawings), len(drawings)),
        x_axis_label="first principal component of the bitmaps" if is_pca else "drawing",
        y_axis_label="second principal component" if is_pca else "random height",
        tools="pan,wheel_zoom,box_zoom,box_select,lasso_select,tap,reset",
        active_scroll="wheel_zoom",
        active_drag="pan",
        match_aspect=is_pca,
        name="map",
    )
    colours = group_colours(drawings)
    renderer = plot.scatter(
        "x",
        "y",
        source=points,
        view=CDSView(filter=BooleanFilter(name="visible")),
        size=8,
        marker="square",
        alpha=0.8,
        line_color=None,
        fill_color={
            "field": "group",
            "transform": LinearColorMapper(
                palette=colours or [OTHER_COLOUR], low=-0.5, high=max(len(colours), 1) - 0.5
            ),
        },
        nonselection_alpha=0.15,
        name="points",
    )
    if drawings.groups:
        plot.add_layout(_legend(drawings, renderer), "right")
    return plot, renderer


def panel_figure():
    """The hovered drawing at 10 screen pixels per bitmap pixel: square, right side up."""
    source = ColumnDataSource(
        data={
            "image": [np.zeros((SIDE, SIDE), np.uint8)],
            "x": [0],
            "y": [0],
            "dw": [SIDE],
            "dh": [SIDE],
        },
        name="panel_image",
    )
    plot = figure(
        frame_width=SIDE * PANEL_PIXELS,
        frame_height=SIDE * PANEL_PIXELS,
        x_range=(0, SIDE),
        y_range=(0, SIDE),
        title="hover a drawing",
        tools="",
        toolbar_location=None,
        name="panel",
        min_border=4,
    )
    plot.axis.visible = False
    plot.grid.visible = False
    plot.image(
        image="image",
        x="x",
        y="y",
        dw="dw",
        dh="dh",
        source=source,
        origin="top_left",
        color_mapper=LinearColorMapper(palette=INK_PALETTE, low=0, high=255),
    )
    lines = [
        Title(text="", align="left", text_font_style="normal", name=f"caption{i}") for i in range(3)
    ]
    for line in lines:  # the first added sits right under the frame
        plot.add_layout(line, "below")
    return plot, source, lines


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


def country_bars(drawings: Drawings) -> tuple[Any, ColumnDataSource]:
    """Drawings per country in the sample; click or box-select bars to filter the map."""
    colours = group_colours(drawings)
    groups = np.minimum(np.arange(len(drawings.countries)), max(len(colours) - 1, 0))
    source = _bars_source(
        "country_bars",
        drawings.countries,
        drawings.country_counts(),
        name=[country_name(code) for code in drawings.countries],
        colour=[colours[g] for g in groups] if colours else [],
    )
    plot = figure(
        width=1140,
        height=210,
        x_range=FactorRange(*drawings.countries),
        title="drawings per country: click bars to show or hide countries in the map",
        tools=[TapTool(mode="xor"), BoxSelectTool(dimensions="width")],
        toolbar_location=None,  # every view costs start-up time; these tools need no buttons
        name="countries",
    )
    _bars(plot, source, vertical=True, colour="colour")
    plot.xaxis.major_label_orientation = np.pi / 2 if len(drawings.countries) > 30 else 0
    plot.xaxis.major_label_text_font_size = "7pt" if len(drawings.countries) > 60 else "9pt"
    plot.xgrid.grid_line_color = None
    plot.y_range.start = 0
    return plot, source


def category_bars(drawings: Drawings) -> tuple[Any, ColumnDataSource]:
    """Drawings per category; click bars to show only those categories in the map."""
    source = _bars_source(
        "category_bars",
        drawings.categories,
        drawings.category_counts(),
        name=[""] * len(drawings.categories),
    )
    plot = figure(
        width=SIDE * PANEL_PIXELS + 30,
        height=70 + 22 * max(len(drawings.categories), 1),
        y_range=FactorRange(*reversed(drawings.categories)),
        title="categories: click to filter",  # a click toggles one bar
        y_axis_location="right",  # keeps this frame's left edge under the panel's
        tools=[TapTool(mode="xor"), BoxSelectTool(dimensions="height")],
        toolbar_location=None,
        name="categories",
    )
    _bars(plot, source, vertical=False, colour=CATEGORY_COLOUR)
    plot.ygrid.grid_line_color = None
    plot.x_range.start = 0
    return plot, source


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


def build_layout(drawings: Drawings, coords: np.ndarray, is_pca: bool):
    """The whole report's Bokeh layout, with its hover and crossfilter callbacks wired."""
    points = point_source(drawings, coords)
    store = ColumnDataSource(data={"pixels": drawings.bitmaps.reshape(-1)}, name="bitmaps")
    map_plot, renderer = map_figure(drawings, coords, is_pca, points)
    panel_plot, panel_source, captions = panel_figure()
    countries_plot, countries = country_bars(drawings)
    categories_plot, categories = category_bars(drawings)
    lookups = {
        "points": points,
        "store": store,
        "codes": drawings.countries,
        "names": [country_name(code) for code in drawings.countries],
        "categories": drawings.categories,
    }
    map_plot.add_tools(
        HoverTool(
            renderers=[renderer],
            tooltips=scripts.TOOLTIP,
            formatters={"$index": CustomJSHover(args=lookups, code=scripts.TOOLTIP_FIELD)},
            filters={"$index": CustomJS(args=lookups, code=scripts.ONLY_TOPMOST)},
            callback=CustomJS(
                args={
                    **lookups,
                    "panel": panel_source,
                    "heading": panel_plot.title,
                    "captions": captions,
                },
                code=scripts.SHOW_HOVERED,
            ),
        )
    )
    crossfilter = CustomJS(
        args={
            "points": points,
            "visible": renderer.view.filter,
            "country_bars": countries,
            "category_bars": categories,
            "title": map_plot.title,
        },
        code=scripts.crossfilter_code(JS_MAP_TITLE),
    )
    for source in (points, countries, categories):
        source.selected.js_on_change("indices", crossfilter)
    return column(row(map_plot, column(panel_plot, categories_plot)), countries_plot)
