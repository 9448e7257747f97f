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
