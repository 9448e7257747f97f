"""The report's JavaScript, run by BokehJS: which drawing is under the pointer, its strokes,
their replay, the 28x28 bitmap drawn from them, the colour switch and the crossfilter.

Every snippet is the body of a function whose parameters are the named Bokeh models (CustomJS
and CustomJSHover `args`); PRELUDE supplies the helpers they share, built once per page with
their state (the stroke index, the running replay) on `globalThis.__quickdraw`: every snippet
that uses them gets the same args (the map's sources and lookups, the panel's models).
"""

from __future__ import annotations

from pipeline.formats import render
from pipeline.store import schema

SIDE = schema.BITMAP_SIDE
PAUSE_MS = 300  # raw replay: longer pauses between points are shortened to this
EVEN_PACE = 0.5  # simplified replay: 256-space units drawn per ms
STROKE_GAP_MS = 120  # simplified replay: the pause before each stroke
BOX = render.ORIGINAL_SIDE + 2 * render.PADDING + render.LINE_DIAMETER  # Google's 304-unit frame
THUMBNAIL = 112  # canvas pixels of the tooltip's drawing (shown at 56 CSS px: crisp on HiDPI)
PANEL = 300  # screen pixels of the panel's drawing, a square
ABOVE, BELOW = 24, 68  # screen pixels of the panel's frame above it (heading), below (captions)
STRIP_COLUMNS, STRIP_ROWS = 4, 2  # the neighbour strip's cells
STRIP_LABEL = 0.22  # of a strip cell's height, below the drawing: its country

#: The page's 28x28 bitmap (Google's numpy_bitmap), drawn with pipeline/formats/render.py's recipe
#: step for step in plain IEEE double arithmetic (no canvas: Skia's antialiasing differs by
#: browser and CPU), so it has the same pixels as the Python rendering in every browser.
#: Its constants come from render.py, printed so that they round-trip exactly.
RASTERIZER = (
    f"const RENDER = {{scale: {render.SCALE!r}, radius: {render.RADIUS!r}, grid: {render.GRID_Y},"
    f" fix: {render.FIX!r}, pen_dy: [{', '.join(map(repr, render.PEN_DY.tolist()))}],"
    f" pen_dx: [{', '.join(map(repr, render.PEN_DX.tolist()))}]}};\n"
    + """
// numpy.rint: to the nearest integer, ties to even (Math.round sends ties up).
function rint(v) {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
// cairo's 24.8 fixed point (render._fixed)
function fixed(v) { return rint(v * RENDER.fix) / RENDER.fix; }
// The pen 12-gon's spans at a point (render._pen_spans, render.pen_half_width).
function pen_spans(px, py, spans) {
  const {grid, pen_dy, pen_dx} = RENDER;
  const top = pen_dy[pen_dy.length - 1];
  const k0 = Math.ceil((py - top) * grid - 0.5);
  const rows = Math.ceil(2 * top * grid) + 1;
  for (let r = 0; r < rows; r++) {
    const k = k0 + r;
    const dy = Math.abs((k + 0.5) / grid - py);
    if (!(dy < top)) { continue; }
    let j = 0;
    while (pen_dy[j + 1] <= dy) { j++; }
    const slope = (pen_dx[j + 1] - pen_dx[j]) / (pen_dy[j + 1] - pen_dy[j]);
    const half = slope * (dy - pen_dy[j]) + pen_dx[j];
    if (half > 0) { spans.push([k, px - half, px + half]); }
  }
}
// x-interval where low <= coef * x + c <= high, or null (render._solve_x).
function solve_x(coef, c, low, high) {
  if (coef === 0) { return c >= low && c <= high ? [-Infinity, Infinity] : null; }
  const a = (low - c) / coef, b = (high - c) / coef;
  return [Math.min(a, b), Math.max(a, b)];
}
// A segment's body, a parallelogram, cut into sub-row spans (render._body_spans).
function body_spans(ax, ay, bx, by, spans) {
  const {grid, radius} = RENDER;
  const dx = bx - ax, dy = by - ay;
  const length = Math.sqrt(dx * dx + dy * dy);
  const ox = fixed(-dy / length * radius), oy = fixed(dx / length * radius);
  const ys = [ay + oy, ay - oy, by + oy, by - oy];
  const k0 = Math.floor(Math.min(...ys) * grid + 0.5);
  const k1 = Math.floor(Math.max(...ys) * grid + 0.5) - 1;
  const det = dx * oy - dy * ox;
  for (let k = k0; k <= k1; k++) {
    const y = (k + 0.5) / grid - ay;
    const s = solve_x(oy / det, -y * ox / det, 0, 1);
    const t = solve_x(-dy / det, dx * y / det, -1, 1);
    if (s === null || t === null) { continue; }
    const lo = Math.max(s[0], t[0]), hi = Math.min(s[1], t[1]);
    if (lo < hi) { spans.push([k, ax + lo, ax + hi]); }
  }
}
// One stroke's alpha per pixel: the union of its spans on each sub-row, its exact
// x-coverage summed per pixel as cairo's cells do (render._render_batch).
function stroke_alpha(points) {
  const {grid} = RENDER;
  const spans = [];
  points.forEach(([x, y], p) => {
    pen_spans(x, y, spans);
    if (p > 0) { body_spans(points[p - 1][0], points[p - 1][1], x, y, spans); }
  });
  const clip = (v, low, high) => Math.min(Math.max(v, low), high);
  const rows = SIDE * grid;
  const by_row = new Map();
  for (const [k, xl, xr] of spans) {
    if (k < 0 || k >= rows) { continue; }
    if (!by_row.has(k)) { by_row.set(k, []); }
    by_row.get(k).push([clip(fixed(xl), -1, SIDE + 1), clip(fixed(xr), -1, SIDE + 1)]);
  }
  const height = new Float64Array(SIDE * (SIDE + 1)), area = new Float64Array(height.length);
  const cell = (row, x, h, a) => {
    height[row * (SIDE + 1) + x] += h;
    area[row * (SIDE + 1) + x] += a;
  };
  for (const [k, list] of by_row) {
    list.sort((u, v) => u[0] - v[0]);
    const row = Math.floor(k / grid);
    for (let i = 0; i < list.length;) {
      const start = list[i][0];
      let reach = list[i][1];
      for (i++; i < list.length && !(list[i][0] > reach); i++) {
        reach = Math.max(reach, list[i][1]);
      }
      const left = clip(start, 0, SIDE), right = clip(reach, 0, SIDE);
      const cl = Math.floor(left), cr = Math.floor(right);
      cell(row, cl, 1, left - cl);
      cell(row, cr, -1, -(right - cr));
    }
  }
  const alpha = new Uint8Array(SIDE * SIDE);
  for (let row = 0; row < SIDE; row++) {
    let cover = 0;
    for (let x = 0; x < SIDE; x++) {
      cover += height[row * (SIDE + 1) + x];
      const level = rint((cover - area[row * (SIDE + 1) + x]) * (255 / grid));
      alpha[row * SIDE + x] = clip(level, 0, 255);
    }
  }
  return alpha;
}
// Google's placement: the bounding box centred in the 256 square, then the padding.
function placement(strokes) {
  let mx = 0, my = 0;
  for (const {x, y} of strokes) {
    for (let p = 0; p < x.length; p++) { mx = Math.max(mx, x[p]); my = Math.max(my, y[p]); }
  }
  return [(256 - mx) / 2 + HALF_PAD, (256 - my) / 2 + HALF_PAD];
}
// The 28x28 bitmap as Google drew it (numpy_bitmap): white round pen of 16 on black in the
// 304-unit frame scaled to 28 pixels, each stroke composited over the last in 8 bits
// (pixman's rounding). Row 0 at the top, ink = 255.
function rasterize(strokes) {
  const [ox, oy] = placement(strokes);
  const ink = new Uint8Array(SIDE * SIDE);
  for (const {x, y} of strokes) {
    const points = [];
    for (let p = 0; p < x.length; p++) {
      const point = [fixed((x[p] + ox) * RENDER.scale), fixed((y[p] + oy) * RENDER.scale)];
      const last = points[points.length - 1];
      if (last === undefined || last[0] !== point[0] || last[1] !== point[1]) {
        points.push(point);
      }
    }
    if (points.length === 0) { continue; }
    const alpha = stroke_alpha(points);
    for (let p = 0; p < ink.length; p++) {
      const t = ink[p] * (255 - alpha[p]) + 128;
      ink[p] = alpha[p] + ((t + (t >> 8)) >> 8);
    }
  }
  return ink;
}
"""
)

#: The constants the helpers share.
CONSTANTS = (
    f"const SIDE = {SIDE}, BOX = {BOX:g}, HALF_PAD = {(BOX - render.ORIGINAL_SIDE) / 2:g};\n"
    f"const PAUSE_MS = {PAUSE_MS}, EVEN_PACE = {EVEN_PACE};\n"
    f"const STROKE_GAP_MS = {STROKE_GAP_MS}, THUMBNAIL = {THUMBNAIL};\n"
    f"const PANEL = {PANEL}, ABOVE = {ABOVE}, BELOW = {BELOW};\n"
)

#: The helpers, built once per page by whichever snippet runs first (all get the same args,
#: `page_args` in figures.build_layout) and shared through `globalThis.__quickdraw`: one
#: compiled copy, warmed up once (`WARM_UP`), one state (the stroke index, the running
#: replay, the thumbnails).
HELPERS = (
    CONSTANTS
    + RASTERIZER
    + """
const state = {shown: -1, replay: null, thumbs: new Map()};
// The drawing the user sees under the pointer: the one painted last. BokehJS paints selected
// points above the others, and each group in index order.
function topmost(source) {
  const hits = source.inspected.indices;
  if (hits.length === 0) { return -1; }
  const picked = source.selected.indices;
  let mask = null;
  if (picked.length > 0) {
    const masks = (state.masks ??= new WeakMap());
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
// Where each drawing's strokes and each stroke's points start: prefix sums, built once.
function stroke_index() {
  if (state.index === undefined) {
    const per_drawing = points.data.strokes;
    const per_stroke = pens.data.points;
    const first_stroke = new Uint32Array(per_drawing.length + 1);
    for (let i = 0; i < per_drawing.length; i++) {
      first_stroke[i + 1] = first_stroke[i] + per_drawing[i];
    }
    const first_point = new Uint32Array(per_stroke.length + 1);
    for (let s = 0; s < per_stroke.length; s++) {
      first_point[s + 1] = first_point[s] + per_stroke[s];
    }
    state.index = {first_stroke, first_point};
  }
  return state.index;
}
// Drawing i's strokes: {x, y} (0..255, y down) and t (ms since the first point, or null).
function strokes_of(i) {
  const {first_stroke, first_point} = stroke_index();
  const {dx, dy, dt} = ink.data;
  const out = [];
  let clock = 0;
  for (let s = first_stroke[i]; s < first_stroke[i + 1]; s++) {
    const a = first_point[s];
    const k = first_point[s + 1] - a;
    const x = new Uint8Array(k), y = new Uint8Array(k);  // uint8: the sums wrap mod 256
    const t = dt === undefined ? null : new Float64Array(k);
    for (let p = 0; p < k; p++) {
      x[p] = p === 0 ? dx[a] : x[p - 1] + dx[a + p];
      y[p] = p === 0 ? dy[a] : y[p - 1] + dy[a + p];
      if (t !== null) { clock += dt[a + p]; t[p] = clock; }
    }
    out.push({x, y, t});
  }
  return out;
}
function trace(context, strokes) {
  for (const {x, y} of strokes) {
    context.beginPath();
    context.moveTo(x[0], y[0]);
    for (let p = 1; p < x.length; p++) { context.lineTo(x[p], y[p]); }
    if (x.length === 1) { context.lineTo(x[0], y[0]); }
    context.stroke();
  }
}
// The tooltip's drawing: its strokes as thin vectors, framed as in the panel.
function thumbnail(i) {
  let url = state.thumbs.get(i);
  if (url !== undefined) { return url; }
  const canvas = document.createElement("canvas");
  canvas.width = THUMBNAIL;
  canvas.height = THUMBNAIL;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, THUMBNAIL, THUMBNAIL);
  const strokes = strokes_of(i);
  const [ox, oy] = placement(strokes);
  const scale = THUMBNAIL / BOX;
  context.setTransform(scale, 0, 0, scale, ox * scale, oy * scale);
  context.strokeStyle = "#111";
  context.lineWidth = 2.5 / scale;
  context.lineCap = "round";
  context.lineJoin = "round";
  trace(context, strokes);
  url = canvas.toDataURL();
  if (state.thumbs.size > 64) { state.thumbs.clear(); }
  state.thumbs.set(i, url);
  return url;
}
// The panel's path: every stroke's points, NaN between strokes, and when each point is drawn.
// Raw drawings keep their pace (long pauses shortened); others go at an even pace.
function replay_path(strokes) {
  const total = strokes.reduce((sum, s) => sum + s.x.length, 0) + strokes.length - 1;
  const xs = new Float64Array(Math.max(total, 0)), ys = new Float64Array(xs.length);
  const at = new Float64Array(xs.length);
  let n = 0, clock = 0, previous = 0;
  strokes.forEach((stroke, s) => {
    if (s > 0) { xs[n] = NaN; ys[n] = NaN; at[n] = clock; n++; }
    for (let p = 0; p < stroke.x.length; p++) {
      if (stroke.t !== null) {
        clock += Math.min(stroke.t[p] - previous, PAUSE_MS);
        previous = stroke.t[p];
      } else if (p === 0) {
        clock += s > 0 ? STROKE_GAP_MS : 0;
      } else {
        const step = Math.hypot(stroke.x[p] - stroke.x[p - 1], stroke.y[p] - stroke.y[p - 1]);
        clock += step / EVEN_PACE;
      }
      xs[n] = stroke.x[p]; ys[n] = stroke.y[p]; at[n] = clock; n++;
    }
  });
  return {xs, ys, at};
}
// Show drawing i in the panel and (re)start its replay; `frame` draws the part due by now.
function show(i) {
  state.shown = i;
  const strokes = strokes_of(i);
  const [ox, oy] = placement(strokes);
  panel_plot.x_range.setv({start: -ox, end: BOX - ox});
  const unit = BOX / PANEL;  // the heading above the drawing, the captions below it
  panel_plot.y_range.setv({start: BOX - oy + BELOW * unit, end: -oy - ABOVE * unit});
  const image = bitmap.data;
  image.x[0] = -ox;
  image.y[0] = -oy;
  if (mode.active === 1) {
    image.image[0].set(rasterize(strokes));
    bitmap.change.emit();
  }
  const path = replay_path(strokes);
  const total = path.at.length;
  const key = points.data.key_id[i];
  if (state.replay !== null) { cancelAnimationFrame(state.replay.request); }
  const replay = {path, start: performance.now(), request: 0};
  state.replay = replay;
  // Each frame shows a prefix of the path, the pen's position between two points in the slot
  // after it: views of one copy of the path, no array built per frame.
  const xs = path.xs.slice(), ys = path.ys.slice();
  let pen = -1;  // the slot that holds the pen's position, or -1
  const frame = (now) => {
    const elapsed = now - replay.start;
    let drawn = pen < 0 ? 0 : pen;
    while (drawn < total && path.at[drawn] <= elapsed) { drawn++; }
    if (pen >= 0) { xs[pen] = path.xs[pen]; ys[pen] = path.ys[pen]; pen = -1; }
    if (drawn > 0 && drawn < total && !isNaN(path.xs[drawn]) && !isNaN(path.xs[drawn - 1])) {
      // the pen between two points: part of the next segment
      const share = (elapsed - path.at[drawn - 1]) / (path.at[drawn] - path.at[drawn - 1]);
      xs[drawn] = path.xs[drawn - 1] + share * (path.xs[drawn] - path.xs[drawn - 1]);
      ys[drawn] = path.ys[drawn - 1] + share * (path.ys[drawn] - path.ys[drawn - 1]);
      pen = drawn;
    }
    const shown = pen < 0 ? drawn : drawn + 1;
    const data = panel.data;  // changed in place: one change event, no deep comparison
    data.key_id[0] = key;
    data.xs[0] = xs.subarray(0, shown);
    data.ys[0] = ys.subarray(0, shown);
    data.drawn[0] = drawn;
    data.total[0] = total;
    data.at[0] = path.at;
    panel.change.emit();
    if (drawn < total && state.replay === replay) {
      replay.request = requestAnimationFrame(frame);
    }
  };
  frame(replay.start);
  const info = describe(i);
  heading.text = `${info.country} (${info.code})`;
  captions[0].text = `${info.category}, recognized: ${info.recognized}`;
  captions[1].text = info.date;
  captions[2].text = `key_id ${info.key}`;
}
// Ahead of the first hover, when the page is idle: the stroke index, and one drawing taken
// through the hover's path (its strokes, tooltip picture, replay path), so that the first
// hover finds these compiled and the index built. And an invisible popover shown for two
// frames: the browser's first popover (the tooltip is one) re-uploads every canvas of the
// page (measured: 11 ms at 12 canvases in Chromium), a cost paid here instead.
function warm_up() {
  stroke_index();
  if (points.get_length() > 0) {
    describe(0);
    thumbnail(0);
    replay_path(strokes_of(0));
  }
  const probe = document.createElement("div");
  probe.popover = "manual";
  probe.style.opacity = "0";
  document.body.append(probe);
  probe.showPopover();
  requestAnimationFrame(() => requestAnimationFrame(() => probe.remove()));
}
return {
  SIDE, BOX, state, topmost, describe, strokes_of, placement, rasterize, thumbnail,
  replay_path, show, warm_up,
};
"""
)

#: Each snippet's start: the shared helpers (built by the first snippet that runs), by name.
#: A function declaration, not an expression called in place: V8 compiles it only when called,
#: so a snippet that finds the helpers built does not compile them again.
PRELUDE = (
    "function helpers() {\n"
    + HELPERS
    + "}\n"
    + "const {SIDE, BOX, state, topmost, describe, strokes_of, placement, rasterize, thumbnail,\n"
    + "  replay_path, show, warm_up} = (globalThis.__quickdraw ??= helpers());\n"
)

#: Document ready: the helpers built and warmed up when the page is next idle.
WARM_UP = PRELUDE + "\n(globalThis.requestIdleCallback ?? setTimeout)(warm_up);\n"

#: HoverTool filter: a tooltip only for the drawing the panel shows.
ONLY_TOPMOST = PRELUDE + "\nreturn cb_data.vars.index === topmost(points);\n"

#: HoverTool callback: the panel shows the hovered drawing and replays it.
SHOW_HOVERED = (
    PRELUDE
    + """
const i = topmost(points);
if (i >= 0 && i !== state.shown) { show(i); }
"""
)

#: A click in the map or the panel replays the shown drawing.
REPLAY = PRELUDE + "\nif (state.shown >= 0) { show(state.shown); }\n"

#: The neighbour strip (args `neighbours`, `likeness`, `k`): drawing i's nearest, each framed in
#: its cell as in the panel, with its country below it.
STRIP = (
    f"""
const COLUMNS = {STRIP_COLUMNS}, LABEL = {STRIP_LABEL};
"""
    + """
function fill_strip(i) {
  const rows = likeness.data.rows;
  const out = {key_id: [], index: [], country: [], xs: [], ys: [], x: [], y: []};
  for (let j = 0; j < k; j++) {
    const n = rows[i * k + j];
    const strokes = strokes_of(n);
    const [ox, oy] = placement(strokes);
    const left = (j % COLUMNS) * BOX, top = Math.floor(j / COLUMNS) * BOX * (1 + LABEL);
    const path = replay_path(strokes);
    out.xs.push(path.xs.map((x) => x + left + ox));
    out.ys.push(path.ys.map((y) => y + top + oy));
    out.key_id.push(points.data.key_id[n]);
    out.index.push(n);
    out.country.push(describe(n).code);
    out.x.push(left + BOX / 2);
    out.y.push(top + BOX);
  }
  neighbours.data = out;
}
"""
)

#: A click in the map: the panel replays the shown drawing, the strip shows the most like it.
FILL_STRIP = (
    PRELUDE + STRIP + "\nif (state.shown >= 0) { show(state.shown); fill_strip(state.shown); }\n"
)

#: A click in the strip: the panel shows that drawing.
STRIP_PICK = (
    PRELUDE
    + STRIP
    + """
const j = Math.floor(cb_obj.x / BOX) + COLUMNS * Math.floor(cb_obj.y / (BOX * (1 + LABEL)));
const picked = neighbours.data.index;
if (j >= 0 && j < picked.length) { show(picked[j]); }
"""
)

#: The panel's toggle: the strokes, or the 28x28 bitmap drawn from them.
PANEL_MODE = (
    PRELUDE
    + """
const as_bitmap = mode.active === 1;
stroke_renderer.visible = !as_bitmap;
bitmap_renderer.visible = as_bitmap;
if (as_bitmap && state.shown >= 0) {
  bitmap.data.image[0].set(rasterize(strokes_of(state.shown)));
  bitmap.change.emit();
}
"""
)

#: CustomJSHover for `$index{...}`: the tooltip's fields, and the drawing as a small PNG.
#: BokehJS compiles it again for every field of every tooltip, so it is short: it uses the
#: helpers that the filter (ONLY_TOPMOST), run before any field is formatted, has built.
TOOLTIP_FIELD = """
const {thumbnail, describe} = globalThis.__quickdraw;
const i = special_vars.index;
return format === "thumbnail" ? thumbnail(i) : describe(i)[format];
"""

TOOLTIP = """<div style="display:flex;gap:8px;align-items:center;max-width:320px">
<img src="$index{thumbnail}" width="56" height="56" alt="" style="border:1px solid #ccc">
<div><b>$index{country}</b> ($index{code})<br>$index{category}, recognized: $index{recognized}
<br>$index{date}<br><span style="color:#666">key_id $index{key}</span></div></div>"""

#: The colour switch: the map's points (and legend) by country or by category.
COLOUR_BY = """
const by_category = colour_by.active === 1;
renderer.glyph.fill_color = by_category
  ? {field: "category_group", transform: category_colours}
  : {field: "group", transform: country_colours};
country_legend.visible = !by_category;
category_legend.visible = by_category;
"""

#: On any selection (country bars, category bars, the category chooser, the map): filter the
#: map by the bars and the chooser, and show in each bar how many drawings pass the other
#: filters and the map's selection. Category bars are the top categories plus "others":
#: `bar_of[k]` is category k's bar; so are the country bars (`country_bar_of[c]`).
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
const bar_ok = allowed(category_bars);
const lookup = (globalThis.__quickdraw_categories ??= new Map(categories.map((c, k) => [c, k])));
const chooser_ok = new Uint8Array(categories.length).fill(chooser.value.length > 0 ? 0 : 1);
for (const name of chooser.value) { chooser_ok[lookup.get(name)] = 1; }
const category_ok = new Uint8Array(categories.length);
for (let k = 0; k < categories.length; k++) { category_ok[k] = bar_ok[bar_of[k]] & chooser_ok[k]; }
const picked = points.selected.indices;
let chosen = null;
if (picked.length > 0) {
  chosen = new Uint8Array(n);
  for (const i of picked) { chosen[i] = 1; }
}
const per_country = country_bars.data.shown;
const per_bar = category_bars.data.shown;
per_country.fill(0);
per_bar.fill(0);
const booleans = new Array(n);
let shown = 0;
for (let i = 0; i < n; i++) {
  const c = country_bar_of[d.country[i]];
  const k = d.category[i];
  const in_map = chosen === null || chosen[i] === 1;
  booleans[i] = country_ok[c] === 1 && category_ok[k] === 1;
  if (booleans[i]) { shown++; }
  if (category_ok[k] === 1 && in_map) { per_country[c]++; }
  if (country_ok[c] === 1 && chooser_ok[k] === 1 && in_map) { per_bar[bar_of[k]]++; }
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
