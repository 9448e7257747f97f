"""Report stage: a self-contained, byte-deterministic Bokeh 3 hover report plus DVC metrics."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from bokeh.embed import json_item
from bokeh.layouts import row
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    HoverTool,
    Legend,
    LegendItem,
    LinearColorMapper,
    Title,
)
from bokeh.palettes import Category20, Greys256
from bokeh.plotting import figure
from bokeh.resources import Resources
from bokeh.transform import factor_cmap
from iso3166 import countries_by_alpha2

from pipeline import atomic, schema
from pipeline.params import Params

OTHER = "other"
SIDE = schema.BITMAP_SIDE
INK_PALETTE = tuple(reversed(Greys256))  # 0 = white paper, 255 = black ink
COORDINATE_DECIMALS = 4

# Sets the image panel and its caption to the first hovered drawing.
SHOW_HOVERED = """
const hovered = cb_data.index.indices;
if (hovered.length === 0) { return; }
const i = hovered[0];
const size = SIDE * SIDE;
// The panel's 28x28 array is reused: copy the drawing's pixels in and announce the change.
const pixels = store.data.pixels;  // a typed array: view its bytes, do not subarray() it
panel.data.image[0].set(new Uint8Array(pixels.buffer, pixels.byteOffset + i * size, size));
panel.change.emit();
const d = points.data;
heading.text = `${d.country_name[i]} (${d.countrycode[i]})`;
caption.text = `${d.category[i]}, recognized: ${d.recognized[i]}, ${d.date[i]}`;
""".replace("SIDE", str(SIDE))

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
{resources}
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }}
header p {{ margin: 0.2rem 0; }}
.attribution {{ font-size: 0.85rem; color: #555; }}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
{header}
</header>
<div id="report"></div>
<p class="attribution">Data: <a href="https://quickdraw.withgoogle.com/data">The Quick, Draw!
Dataset</a> by Google, Inc., licensed under
<a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>.</p>
<script type="application/json" id="report-item">{item}</script>
<script>
Bokeh.embed.embed_item(JSON.parse(document.getElementById("report-item").textContent));
</script>
</body>
</html>
"""


@dataclass(frozen=True)
class ReportInputs:
    sample: pa.Table
    total_drawings: int
    params: Params


def country_name(code: str | None) -> str:
    if not code:
        return "unknown"
    country = countries_by_alpha2.get(code)
    return country.apolitical_name if country else code


def bitmaps_of(sample: pa.Table) -> np.ndarray:
    """The sample's bitmaps as one (n, 28, 28) uint8 array, row 0 at the top."""
    column_ = sample["bitmap"].combine_chunks()
    data = np.frombuffer(column_.buffers()[1], dtype=np.uint8)
    start = column_.offset * schema.BITMAP_BYTES
    return data[start : start + len(column_) * schema.BITMAP_BYTES].reshape(-1, SIDE, SIDE)


def map_coordinates(bitmaps: np.ndarray, layout: str, seed: int) -> np.ndarray:
    """(n, 2) positions: a PCA projection of the bitmaps, or the original's random heights."""
    count = len(bitmaps)
    if layout == "random":
        rng = np.random.default_rng(seed)
        coords = np.column_stack([np.arange(count, dtype=np.float64), rng.random(count)])
    else:
        pixels = bitmaps.reshape(count, -1).astype(np.float64) / 255.0
        centred = pixels - pixels.mean(axis=0)
        _, vectors = np.linalg.eigh(centred.T @ centred)
        axes = vectors[:, ::-1][:, :2]
        # An eigenvector's sign is arbitrary: fix it so the layout is the same everywhere.
        axes *= np.sign(axes[np.abs(axes).argmax(axis=0), [0, 1]])
        coords = centred @ axes
    return np.round(coords, COORDINATE_DECIMALS)


def country_groups(codes: list[str | None], top: int) -> tuple[list[str], list[str]]:
    """Each drawing's colour group (its country, or `other`) and the groups in legend order."""
    counts: dict[str, int] = {}
    for code in codes:
        counts[code or "??"] = counts.get(code or "??", 0) + 1
    ranked = sorted(counts, key=lambda code: (-counts[code], code))[:top]
    groups = [code if code in ranked else OTHER for code in (c or "??" for c in codes)]
    order = ranked + ([OTHER] if OTHER in groups else [])
    return groups, order


def _palette(count: int) -> list[str]:
    return list(Category20[20][::2] + Category20[20][1::2])[:count]


def build_layout(inputs: ReportInputs):
    """The Bokeh layout: the map of drawings beside the hovered drawing's bitmap."""
    sample, params = inputs.sample, inputs.params
    bitmaps = bitmaps_of(sample)
    coords = map_coordinates(bitmaps, params.report.layout, params.sample.seed)
    codes = sample["countrycode"].to_pylist()
    groups, order = country_groups(codes, params.report.top_countries)
    colours = _palette(len(order) - (OTHER in order)) + (["#b0b0b0"] if OTHER in order else [])
    points = ColumnDataSource(
        data={
            "x": coords[:, 0],
            "y": coords[:, 1],
            "key_id": [str(k) for k in sample["key_id"].to_pylist()],
            "category": sample["category"].to_pylist(),
            "countrycode": [code or "??" for code in codes],
            "country_name": [country_name(code) for code in codes],
            "country_group": groups,
            "recognized": ["yes" if r else "no" for r in sample["recognized"].to_pylist()],
            "date": [t.strftime("%Y-%m-%d %H:%M UTC") for t in sample["timestamp"].to_pylist()],
        },
        name="drawings",
    )
    store = ColumnDataSource(data={"pixels": bitmaps.reshape(-1)}, name="bitmaps")
    panel_source = ColumnDataSource(
        data={
            "image": [np.zeros((SIDE, SIDE), np.uint8)],
            "x": [0],
            "y": [0],
            "dw": [SIDE],
            "dh": [SIDE],
        },
        name="panel_image",
    )
    is_pca = params.report.layout == "pca"
    scatter_plot = figure(
        width=760,
        height=620,
        title="Hover a point to see the drawing",
        x_axis_label="first principal component of the bitmaps" if is_pca else "drawing",
        y_axis_label="second principal component" if is_pca else "random height",
        tools="pan,wheel_zoom,box_zoom,reset,tap",
        active_scroll="wheel_zoom",
        match_aspect=is_pca,
        name="map",
    )
    scatter = scatter_plot.scatter(
        "x",
        "y",
        source=points,
        size=8,
        marker="square",
        alpha=0.75,
        line_color=None,
        fill_color=factor_cmap("country_group", colours, order),
    )
    first_of = {group: groups.index(group) for group in order}
    scatter_plot.add_layout(
        Legend(
            items=[LegendItem(label=g, renderers=[scatter], index=first_of[g]) for g in order],
            title="country",
        ),
        "right",
    )
    image_plot = figure(
        width=300,
        height=300,
        x_range=(0, SIDE),
        y_range=(0, SIDE),
        title="hovered drawing",
        tools="",
        toolbar_location=None,
        name="panel",
    )
    image_plot.axis.visible = False
    image_plot.grid.visible = False
    image_plot.image(
        image="image",
        x="x",
        y="y",
        dw="dw",
        dh="dh",
        source=panel_source,
        origin="top_left",
        color_mapper=LinearColorMapper(palette=INK_PALETTE, low=0, high=255),
    )
    caption = Title(text="", align="center", text_font_style="normal", name="caption")
    image_plot.add_layout(caption, "below")
    callback = CustomJS(
        args={
            "store": store,
            "panel": panel_source,
            "points": points,
            "heading": image_plot.title,
            "caption": caption,
        },
        code=SHOW_HOVERED,
    )
    scatter_plot.add_tools(
        HoverTool(
            renderers=[scatter],
            callback=callback,
            tooltips=[
                ("country", "@country_name (@countrycode)"),
                ("category", "@category"),
                ("recognized", "@recognized"),
                ("date", "@date"),
            ],
        )
    )
    return row(scatter_plot, image_plot)


def stable_ids(item: dict) -> dict:
    """Renumber Bokeh's per-process model ids in order of appearance, for identical bytes."""
    mapping: dict[str, str] = {}

    def rename(value: str) -> str:
        return mapping.setdefault(value, f"q{len(mapping) + 1}")

    def walk(node):
        if isinstance(node, dict):
            return {
                key: rename(value)
                if key in ("id", "root_id") and isinstance(value, str)
                else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, (list, tuple)):  # Bokeh emits map entries as tuples
            return [walk(value) for value in node]
        return node

    return walk(item)


def header_html(inputs: ReportInputs) -> str:
    params = inputs.params
    sample_params = params.sample
    filters = [
        f"seed {sample_params.seed}",
        f"countries {', '.join(sample_params.countries) or 'all'}",
        f"recognized {sample_params.recognized}",
        f"stratify {sample_params.stratify}",
    ]
    lines = [
        f"Categories: {', '.join(params.dataset.categories)}",
        f"{inputs.sample.num_rows:,} of {inputs.total_drawings:,} drawings, sampled with "
        + "; ".join(filters),
        f"Source: {params.dataset.base_url} ({params.dataset.drawings} drawings"
        + (f", first {params.dataset.limit:,} per category" if params.dataset.limit else "")
        + ")",
    ]
    return "\n".join(f"<p>{html.escape(line)}</p>" for line in lines)


def render_html(inputs: ReportInputs) -> str:
    """The whole page: BokehJS inline, the plot as JSON, no ids that change between runs."""
    item = stable_ids(json_item(build_layout(inputs), target="report"))
    payload = json.dumps(item, separators=(",", ":")).replace("</", "<\\/")
    resources = Resources(mode="inline", components=["bokeh"]).render_js()
    return PAGE.format(
        title=html.escape(inputs.params.report.title),
        resources=resources,
        header=header_html(inputs),
        item=payload,
    )


def metrics(inputs: ReportInputs, html_bytes: int) -> dict:
    sample = inputs.sample
    codes = [code or "??" for code in sample["countrycode"].to_pylist()]
    counts: dict[str, int] = {}
    for code in codes:
        counts[code] = counts.get(code, 0) + 1
    top = sorted(counts, key=lambda code: (-counts[code], code))[
        : inputs.params.report.top_countries
    ]
    recognized = sum(sample["recognized"].to_pylist())
    return {
        "sample_size": sample.num_rows,
        "source_drawings": inputs.total_drawings,
        "countries": len(counts),
        "recognized_share": round(recognized / max(sample.num_rows, 1), 4),
        "top_countries": {code: counts[code] for code in top},
        "report_bytes": html_bytes,
    }


def run_report(sample_path: Path, join_summary: Path, params: Params, out_dir: Path) -> dict:
    """Write reports/<name>.html and reports/metrics.json atomically; return the metrics."""
    total = json.loads(join_summary.read_text(encoding="utf-8"))["drawings"]
    inputs = ReportInputs(pq.read_table(sample_path), total, params)
    page = render_html(inputs).encode("utf-8")
    atomic.write_bytes(out_dir / f"{params.report.name}.html", page)
    result = metrics(inputs, len(page))
    atomic.write_text(out_dir / "metrics.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result
