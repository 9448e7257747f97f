"""One self-contained, byte-deterministic HTML page around a Bokeh layout.

`file_html` gives every model a fresh uuid4 id, so the same report would differ on every build.
The page embeds `json_item` in its own template instead, renumbers the ids in order of
appearance, and inlines only the BokehJS bundles the models need (widgets only when the layout
has one, no WebGL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bokeh.embed import json_item
from bokeh.models import Widget
from bokeh.resources import Resources
from bokeh.settings import settings

COMPRESSION_LEVEL = 9  # Bokeh's default (2) costs about 27 more bytes per drawing

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
{resources}
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem 1.5rem; color: #222; }}
h1 {{ margin: 0 0 0.3rem; font-size: 1.5rem; }}
header p {{ margin: 0.15rem 0; }}
.attribution {{ font-size: 0.85rem; color: #555; }}
details {{ margin: 0.3rem 0 0.6rem; font-size: 0.85rem; }}
table {{ border-collapse: collapse; margin: 0.4rem 0; }}
td, th {{ border: 1px solid #ddd; padding: 1px 6px; text-align: left; }}
.manifest td {{ font-family: ui-monospace, monospace; font-size: 0.75rem; }}
</style>
</head>
<body>
<header>
<h1>{title}</h1>
{header}
</header>
<div id="report"></div>
<script type="application/json" id="report-item">{item}</script>
<script>
Bokeh.embed.embed_item(JSON.parse(document.getElementById("report-item").textContent));
</script>
</body>
</html>
"""


@contextmanager
def compression(level: int) -> Iterator[None]:
    """Bokeh's gzip level for array buffers, for one build only."""
    settings.compression_level.set_value(level)
    try:
        yield
    finally:
        settings.compression_level.unset_value()


def stable_ids(item: Any) -> Any:
    """Renumber Bokeh's per-process model ids in order of appearance, for identical bytes."""
    mapping: dict[str, str] = {}

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: mapping.setdefault(value, f"q{len(mapping) + 1}")
                if key in ("id", "root_id") and isinstance(value, str)
                else walk(value)
                for key, value in node.items()
            }
        if isinstance(node, (list, tuple)):  # Bokeh emits map entries as tuples
            return [walk(value) for value in node]
        return node

    return walk(item)


def render_page(layout: Any, title: str, header: str) -> str:
    """The page: BokehJS inline, the layout as JSON, no ids that change between runs.

    `title` and `header` must already be escaped HTML.
    """
    with compression(COMPRESSION_LEVEL):
        item = stable_ids(json_item(layout, target="report"))
    payload = json.dumps(item, separators=(",", ":")).replace("</", "<\\/")
    widgets = any(isinstance(model, Widget) for model in layout.references())
    components = ["bokeh", "bokeh-widgets"] if widgets else ["bokeh"]
    resources = Resources(mode="inline", components=components).render_js()
    return PAGE.format(title=title, resources=resources, header=header, item=payload)
