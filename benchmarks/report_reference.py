"""The plainest Bokeh 3 hover report of a sample, the yardstick for ours: random layout, text
tooltips from string columns, the bitmaps as one uint8 array, a CustomJS that copies the
hovered drawing into a 28x28 image panel, saved with `file_html` and inline resources.

It names its map `map`, its source `drawings` and its panel plot `panel_plot`, as ours does,
so the same browser probes measure both; its bitmaps' source is `bitmaps`, so that a probe can
tell which drawing its `panel_image` shows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from bokeh.embed import file_html
from bokeh.layouts import row
from bokeh.models import ColumnDataSource, CustomJS, HoverTool
from bokeh.palettes import Greys256
from bokeh.plotting import figure
from bokeh.resources import INLINE

from pipeline.stages.report import bitmaps_of

COPY = """
const i = cb_data.index.indices[0];
if (i === undefined) { return; }
const pixels = store.data.pixels;
panel.data.image[0].set(new Uint8Array(pixels.buffer, pixels.byteOffset + i * 784, 784));
panel.change.emit();
"""


def build(sample_path: Path, out: Path, seed: int = 42) -> None:
    """Write the reference page for the sample at `sample_path`."""
    table = pq.read_table(sample_path)
    count = table.num_rows
    points = ColumnDataSource(
        data={
            "x": np.arange(count),
            "y": np.random.default_rng(seed).random(count),
            "countrycode": table["countrycode"].to_pylist(),
            "category": table["category"].to_pylist(),
        },
        name="drawings",
    )
    store = ColumnDataSource(data={"pixels": bitmaps_of(table).reshape(-1)}, name="bitmaps")
    panel_source = ColumnDataSource(
        data={"image": [np.zeros((28, 28), np.uint8)]}, name="panel_image"
    )
    plot = figure(width=760, height=620, tools="pan,wheel_zoom,reset", name="map")
    scatter = plot.scatter("x", "y", source=points, size=8, marker="square")
    panel = figure(
        width=300, height=300, x_range=(0, 28), y_range=(0, 28), tools="", name="panel_plot"
    )
    panel.image(
        image="image",
        x=0,
        y=0,
        dw=28,
        dh=28,
        source=panel_source,
        origin="top_left",
        palette=tuple(reversed(Greys256)),
    )
    plot.add_tools(
        HoverTool(
            renderers=[scatter],
            tooltips=[("country", "@countrycode"), ("category", "@category")],
            callback=CustomJS(args={"store": store, "panel": panel_source}, code=COPY),
        )
    )
    out.write_text(file_html(row(plot, panel), INLINE, "reference"), encoding="utf-8")


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]))
