"""Drive a real Chromium (Debian's, through Playwright) over a report: shared by browser tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--no-first-run",
    "--disable-sync",
]

# Finds a Bokeh view by its model's name, walking the view tree from the document's roots.
FIND_VIEW = """(name) => {
  function* walk(view) {
    yield view;
    for (const child of (view.child_views ?? [])) yield* walk(child);
  }
  for (const root of Bokeh.index.roots)
    for (const view of walk(root)) if (view.model.name === name) return view;
  return null;
}"""

# Screen position (page pixels) of every point of the `drawings` source in the `map` plot.
POINT_POSITIONS = """() => {
  const find = FIND_VIEW;
  const plot = find('map');
  const renderer = [...plot.renderer_views.values()].find(
      (view) => view.model.data_source && view.model.data_source.name === 'drawings');
  const box = plot.el.getBoundingClientRect();
  const glyph = renderer.glyph;
  return Array.from(glyph.sx, (sx, i) => [box.left + sx, box.top + glyph.sy[i]]);
}""".replace("FIND_VIEW", FIND_VIEW)

DOCUMENT_IDLE = (
    "() => window.Bokeh !== undefined && Bokeh.documents.length > 0 && Bokeh.documents[0].is_idle"
)


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def browser_page(width: int = 1300, height: int = 900) -> Iterator:
    """A fresh page in headless Chromium that records console errors and network requests."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.console_errors = []
            page.requests = []
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            page.on("pageerror", lambda error: page.console_errors.append(str(error)))
            page.on("request", lambda request: page.requests.append(request.url))
            yield page
        finally:
            browser.close()


# Screen position (page pixels) of each glyph drawn from source `source` in the plot `plot`:
# marker centres, or bar centres.
GLYPH_POSITIONS = """([plot_name, source_name]) => {
  const find = FIND_VIEW;
  const plot = find(plot_name);
  const renderer = [...plot.renderer_views.values()].find(
      (view) => view.model.data_source && view.model.data_source.name === source_name);
  const box = plot.el.getBoundingClientRect();
  const glyph = renderer.glyph;
  const centre = (i) => [
    glyph.sx !== undefined ? glyph.sx[i] : (glyph.sleft[i] + glyph.sright[i]) / 2,
    glyph.sy !== undefined ? glyph.sy[i] : (glyph.stop[i] + glyph.sbottom[i]) / 2,
  ];
  return Array.from({length: glyph.data_size}, (_, i) => {
    const [x, y] = centre(i);
    return [box.left + x, box.top + y];
  });
}""".replace("FIND_VIEW", FIND_VIEW)

# The text of the map's tooltip (one entry per drawing it lists), read from the HoverTool's view.
MAP_TOOLTIP = """() => {
  const find = FIND_VIEW;
  const hover = [...find('map').tool_views.values()].find((t) => t.model.type === 'HoverTool');
  return [...hover.ttmodels.values()].map((tooltip) => tooltip.content.innerText).join('\\n');
}""".replace("FIND_VIEW", FIND_VIEW)

# The `src` of the images in the map's tooltip.
MAP_TOOLTIP_IMAGES = """() => {
  const find = FIND_VIEW;
  const hover = [...find('map').tool_views.values()].find((t) => t.model.type === 'HoverTool');
  return [...hover.ttmodels.values()].flatMap(
      (tooltip) => [...tooltip.content.querySelectorAll('img')].map((img) => img.src));
}""".replace("FIND_VIEW", FIND_VIEW)

# Full-set indices of the map's points that the filter leaves visible.
VISIBLE_POINTS = """() => {
  const doc = Bokeh.documents[0];
  return [...doc.get_model_by_name('points').view.indices];
}"""


def model_value(page, name: str, expression: str):
    """Evaluate `expression` on the Bokeh model named `name` (bound as `m`) in the page."""
    return page.evaluate(
        f"(name) => {{ const m = Bokeh.documents[0].get_model_by_name(name); "
        f"return {expression}; }}",
        name,
    )
