"""Category names on the map, where their drawings are: each category's name sits at the centre
of its densest block of drawings (a GRID x GRID grid over the map), names of larger categories
first, a name left out where it would overlap one already placed or cross the frame's edge.
The default view's names are placed here; the page places them again whenever the map's
ranges change (PLACE_NAMES, the same rule), so more names appear as the user zooms in.

Named models: `category_names` (the names drawn: `x`, `y`, `text`, `rank`) and `name_store`
(every category's anchor, largest first).
"""

from __future__ import annotations

import numpy as np

GRID = 48  # blocks per side of the map for "densest group"
FONT_PX = 11
CHAR_PX = 7.0  # a generous width per character at FONT_PX (no text is measured in Python)
PAD_PX = 6.0
LINE_PX = 15.0


def anchors(coords: np.ndarray, category: np.ndarray, names: list[str]) -> dict[str, list]:
    """Every sampled category's name at the mean position of its drawings in its densest
    grid block, largest categories first (then params order)."""
    out: dict[str, list] = {"x": [], "y": [], "text": [], "count": []}
    if len(coords) == 0:
        return out
    low, high = coords.min(axis=0), coords.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    cell = np.minimum(((coords - low) / span * GRID).astype(np.int64), GRID - 1)
    block = cell[:, 0] * GRID + cell[:, 1]
    counts = np.bincount(category, minlength=len(names))
    for k in np.lexsort((np.arange(len(names)), -counts)):
        if counts[k] == 0:
            break
        members = np.flatnonzero(category == k)
        densest = np.bincount(block[members]).argmax()
        centre = coords[members[block[members] == densest]].mean(axis=0)
        out["x"].append(float(centre[0]))
        out["y"].append(float(centre[1]))
        out["text"].append(names[k])
        out["count"].append(int(counts[k]))
    return out


def box(text: str) -> tuple[float, float]:
    """A name's width and height on screen (px), generously estimated."""
    return len(text) * CHAR_PX + PAD_PX, LINE_PX


def place(
    store: dict[str, list], x_range: tuple[float, float], y_range: tuple[float, float], frame
) -> dict[str, list]:
    """The names shown in a view: in store order (largest first), each inside the frame and
    overlapping none placed before it. `frame` is the map's (width, height) in px."""
    width, height = frame
    (x0, x1), (y0, y1) = x_range, y_range
    placed: list[tuple[float, float, float, float]] = []
    out: dict[str, list] = {"x": [], "y": [], "text": [], "rank": []}
    for rank, (x, y, text) in enumerate(zip(store["x"], store["y"], store["text"], strict=True)):
        sx, sy = (x - x0) / (x1 - x0) * width, (y1 - y) / (y1 - y0) * height
        w, h = box(text)
        left, top = sx - w / 2, sy - h / 2
        if left < 0 or top < 0 or left + w > width or top + h > height:
            continue
        if any(left < r and left + w > a and top < b and top + h > t for a, t, r, b in placed):
            continue
        placed.append((left, top, left + w, top + h))
        for key, value in (("x", x), ("y", y), ("text", text), ("rank", rank)):
            out[key].append(value)
    return out


#: The same rule in the page, on every change of the map's ranges (CustomJS args: `plot`,
#: `store`, `names`).
PLACE_NAMES = f"""
const CHAR_PX = {CHAR_PX}, PAD_PX = {PAD_PX}, LINE_PX = {LINE_PX};
const width = plot.inner_width ?? plot.frame_width, height = plot.inner_height ?? plot.frame_height;
const x0 = plot.x_range.start, x1 = plot.x_range.end;
const y0 = plot.y_range.start, y1 = plot.y_range.end;
const s = store.data;
const placed = [];
const out = {{x: [], y: [], text: [], rank: []}};
for (let i = 0; i < s.text.length; i++) {{
  const sx = (s.x[i] - x0) / (x1 - x0) * width, sy = (y1 - s.y[i]) / (y1 - y0) * height;
  const w = s.text[i].length * CHAR_PX + PAD_PX, h = LINE_PX;
  const left = sx - w / 2, top = sy - h / 2;
  if (left < 0 || top < 0 || left + w > width || top + h > height) {{ continue; }}
  let free = true;
  for (const [l, t, r, b] of placed) {{
    if (left < r && left + w > l && top < b && top + h > t) {{ free = false; break; }}
  }}
  if (!free) {{ continue; }}
  placed.push([left, top, left + w, top + h]);
  out.x.push(s.x[i]); out.y.push(s.y[i]); out.text.push(s.text[i]); out.rank.push(i);
}}
names.data = out;
"""
