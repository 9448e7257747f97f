"""The report's JavaScript, run by BokehJS: which drawing is under the pointer, and the views.

Every snippet is the body of a function whose parameters are the named Bokeh models (CustomJS
and CustomJSHover `args`); PRELUDE supplies the helpers they share.
"""

from __future__ import annotations

from pipeline import schema

SIDE = schema.BITMAP_SIDE

#: Helpers; they read the CustomJS args `points`, `store`, `codes`, `names`, `categories`.
PRELUDE = (
    f"const SIDE = {SIDE};\n"
    + """
// The drawing the user sees under the pointer: the one painted last. BokehJS paints selected
// points above the others, and each group in index order.
function topmost(source) {
  const hits = source.inspected.indices;
  if (hits.length === 0) { return -1; }
  const picked = source.selected.indices;
  let mask = null;
  if (picked.length > 0) {
    const masks = (globalThis.__quickdraw_masks ??= new WeakMap());
    mask = masks.get(picked);
    if (mask === undefined) {
      mask = new Uint8Array(source.get_length());
      for (const i of picked) { mask[i] = 1; }
      masks.set(picked, mask);
    }
  }
  let best = -1;
  let best_selected = 0;
  for (const i of hits) {
    const selected = mask === null ? 0 : mask[i];
    if (selected > best_selected || (selected === best_selected && i > best)) {
      best = i;
      best_selected = selected;
    }
  }
  return best;
}
function describe(i) {
  const d = points.data;
  const date = new Date(d.time[i] * 1000).toISOString();
  return {
    code: codes[d.country[i]],
    country: names[d.country[i]],
    category: categories[d.category[i]],
    recognized: d.recognized[i] ? "yes" : "no",
    date: `${date.slice(0, 10)} ${date.slice(11, 16)} UTC`,
    key: String(d.key_id[i]),
  };
}
// A view of drawing i's 784 bytes inside the one big array (no copy).
function bitmap(i) {
  const pixels = store.data.pixels;
  return new Uint8Array(pixels.buffer, pixels.byteOffset + i * SIDE * SIDE, SIDE * SIDE);
}
"""
)

#: HoverTool filter: a tooltip only for the drawing the panel shows.
ONLY_TOPMOST = PRELUDE + "\nreturn cb_data.vars.index === topmost(points);\n"

#: HoverTool callback: the large panel shows the hovered drawing, with its details.
SHOW_HOVERED = (
    PRELUDE
    + """
const i = topmost(points);
if (i < 0) { return; }
panel.data.image[0].set(bitmap(i));  // the panel's own 28x28 array, reused
panel.change.emit();
const info = describe(i);
heading.text = `${info.country} (${info.code})`;
captions[0].text = `${info.category}, recognized: ${info.recognized}`;
captions[1].text = info.date;
captions[2].text = `key_id ${info.key}`;
"""
)

#: CustomJSHover for `$index{...}`: the tooltip's fields, and the drawing as a small PNG.
TOOLTIP_FIELD = (
    PRELUDE
    + """
const i = special_vars.index;
if (format !== "thumbnail") { return describe(i)[format]; }
const canvas = document.createElement("canvas");
canvas.width = SIDE;
canvas.height = SIDE;
const context = canvas.getContext("2d");
const image = context.createImageData(SIDE, SIDE);
const ink = bitmap(i);
for (let p = 0; p < ink.length; p++) {
  const paper = 255 - ink[p];
  image.data[4 * p] = paper;
  image.data[4 * p + 1] = paper;
  image.data[4 * p + 2] = paper;
  image.data[4 * p + 3] = 255;
}
context.putImageData(image, 0, 0);
return canvas.toDataURL();
"""
)

TOOLTIP = """<div style="display:flex;gap:8px;align-items:center;max-width:320px">
<img src="$index{thumbnail}" width="56" height="56" alt=""
 style="image-rendering:pixelated;border:1px solid #ccc">
<div><b>$index{country}</b> ($index{code})<br>$index{category}, recognized: $index{recognized}
<br>$index{date}<br><span style="color:#666">key_id $index{key}</span></div></div>"""

#: On any selection (country bars, category bars, the map): filter the map by the bars, and
#: show in each bar how many drawings pass the other chart's filter and the map's selection.
CROSSFILTER = """
const d = points.data;
const n = d.country.length;
function allowed(bars) {
  const picked = bars.selected.indices;
  const ok = new Uint8Array(bars.data.total.length).fill(picked.length > 0 ? 0 : 1);
  for (const j of picked) { ok[j] = 1; }
  return ok;
}
const country_ok = allowed(country_bars);
const category_ok = allowed(category_bars);
const picked = points.selected.indices;
let chosen = null;
if (picked.length > 0) {
  chosen = new Uint8Array(n);
  for (const i of picked) { chosen[i] = 1; }
}
const per_country = country_bars.data.shown;
const per_category = category_bars.data.shown;
per_country.fill(0);
per_category.fill(0);
const booleans = new Array(n);
let shown = 0;
for (let i = 0; i < n; i++) {
  const c = d.country[i];
  const k = d.category[i];
  const in_map = chosen === null || chosen[i] === 1;
  booleans[i] = country_ok[c] === 1 && category_ok[k] === 1;
  if (booleans[i]) { shown++; }
  if (category_ok[k] === 1 && in_map) { per_country[c]++; }
  if (country_ok[c] === 1 && in_map) { per_category[k]++; }
}
country_bars.change.emit();
category_bars.change.emit();
const before = visible.booleans;
const unchanged = before == null
  ? shown === n
  : before.length === n && booleans.every((b, i) => b === before[i]);
if (!unchanged) {
  visible.booleans = shown === n ? null : booleans;
  title.text = TITLE(shown, n);
}
"""


def crossfilter_code(title_template: str) -> str:
    """CROSSFILTER with the map's title as a JS template of `shown` and `total`."""
    return f"const TITLE = (shown, total) => `{title_template}`;\n{CROSSFILTER}"
