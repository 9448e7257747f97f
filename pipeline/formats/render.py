"""Google's Quick, Draw! preprocessing, re-implemented with numpy (and RDP in C).

`simplify_strokes` turns raw screen-space strokes into the 0..255 `simplified` form, and
`render_bitmap` reproduces the 28x28 `numpy_bitmap` images, which Google drew from the
simplified strokes with cairo (round pen of diameter 16, padding 16, ANTIALIAS_BEST). The demo
generator and the join's alignment check both depend on these matching Google's files.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from pipeline.native import _native

SIDE = 28
ORIGINAL_SIDE = 256.0
LINE_DIAMETER = 16.0
PADDING = 16.0
RDP_EPSILON = 2.0

TOTAL_PADDING = 2 * PADDING + LINE_DIAMETER
SCALE = SIDE / (ORIGINAL_SIDE + TOTAL_PADDING)  # 256-space units -> output pixels
RADIUS = LINE_DIAMETER / 2 * SCALE  # pen radius in output pixels (~0.74)
GRID_Y = 15  # cairo's scan converter samples 15 sub-rows per pixel row, x exactly
_ROWS = SIDE * GRID_Y
_BATCH = 32  # drawings rendered per vectorised batch: bounds memory (~15 MB), and no slower
_BUDGET = 200_000  # spans built at once (~30 MB): a long drawing renders piece by piece
_MAX_STROKES = 512  # strokes whose coverage is summed at once (~3 MB of cells)
FIX = 256.0  # cairo works in 24.8 fixed point: points, offsets and span ends snap to 1/256


def _fixed(v: np.ndarray | float) -> np.ndarray:
    """Round to cairo's fixed point: ties between sub-rows are decided on these values."""
    return np.rint(np.asarray(v) * FIX) / FIX


# Cairo's round pen is a polygon: acos(1 - tolerance / r) with tolerance 0.1 px and r = 0.74 px
# gives 12 vertices, at 0, 30, 60, ... degrees (in fixed point). Its half-width at height |dy|:
# (cos 30 degrees as sqrt(3) / 2: a correctly rounded square root, where libm's cos may differ)
PEN_DY = _fixed(RADIUS * np.array([0.0, 0.5, np.sqrt(3.0) / 2, 1.0]))
PEN_DX = PEN_DY[::-1].copy()
_PEN_ROWS = int(np.ceil(2 * PEN_DY[-1] * GRID_Y)) + 1  # sub-rows a pen spans at most

Stroke = Sequence[Sequence[float]]


def simplify_flat(
    strokes: Sequence[Stroke], timed: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Google's simplification of raw strokes, flat: the kept points' x and y (uint8, all
    strokes concatenated), their times in ms since the drawing's first point (int32; None
    unless `timed`, which needs `[xs, ys, ts]` strokes) and each stroke's exclusive end.

    The steps (compiled in pipeline/native/_native.c, a few microseconds a drawing): shift to min 0,
    scale uniformly to max 255, drop repeated points, resample every 1 unit of arc length
    (keeping both ends, so RDP sees the stroke at uniform density, as Google's pipeline did,
    whatever the device's sample rate; times are interpolated along the arc), then
    Ramer-Douglas-Peucker with epsilon 2 (the classic perpendicular distance to the chord's
    infinite line: that variant reproduces Google's simplified files exactly for ~95% of the
    real heads' drawings; the kept points keep their times), round to integers. A stroke
    that is a single point comes out as that point twice, as in Google's files; empty
    strokes are dropped.
    """
    xs, ys, ts, ends = _native.simplify(strokes, timed, RDP_EPSILON)
    return (
        np.frombuffer(xs, np.uint8),
        np.frombuffer(ys, np.uint8),
        np.frombuffer(ts, np.int32) if ts is not None else None,
        np.frombuffer(ends, np.int32),
    )


def _split(rows: Sequence[np.ndarray], ends: np.ndarray) -> list[np.ndarray]:
    stacked = np.vstack(rows).astype(np.int64)
    return np.split(stacked, ends[:-1], axis=1) if len(ends) else []


def simplify_strokes(strokes: Sequence[Stroke]) -> list[np.ndarray]:
    """simplify_flat per stroke: each stroke `[xs, ys]` or `[xs, ys, ts]` (times are ignored)
    becomes an int64 array of shape (2, k), row 0 = x, row 1 = y, values in 0..255."""
    xs, ys, _, ends = simplify_flat(strokes)
    return _split((xs, ys), ends)


def simplify_strokes_timed(strokes: Sequence[Stroke]) -> list[np.ndarray]:
    """simplify_strokes for raw strokes `[xs, ys, ts]`, keeping each kept point's time: each
    result has a third row, the time in ms since the drawing's first point."""
    xs, ys, ts, ends = simplify_flat(strokes, timed=True)
    return _split((xs, ys, ts), ends)


def _device_strokes(drawings: Sequence[Sequence[Stroke]]) -> tuple[list[np.ndarray], np.ndarray]:
    """Each stroke as a (k, 2) array in output pixels, placed as Google's vector_to_raster did
    (bounding box centred in the 256 square, then padding), and the drawing of each stroke."""
    strokes, owner = [], []
    for d, drawing in enumerate(drawings):
        arrays = [np.asarray(s[:2], dtype=np.float64).reshape(2, -1) for s in drawing]
        arrays = [a for a in arrays if a.shape[1]]
        if not arrays:
            continue
        offset = (ORIGINAL_SIDE - np.hstack(arrays).max(axis=1)) / 2 + TOTAL_PADDING / 2
        for a in arrays:
            p = _fixed((a + offset[:, None]) * SCALE).T
            keep = np.concatenate(([True], np.any(p[1:] != p[:-1], axis=1)))
            strokes.append(p[keep])
            owner.append(d)
    return strokes, np.asarray(owner, dtype=np.int64)


def pen_half_width(dy: np.ndarray) -> np.ndarray:
    """The pen polygon's half-width at heights 0 <= dy < its top: numpy.interp's formula,
    spelled out in single IEEE operations so that the page's JavaScript can repeat it."""
    j = np.searchsorted(PEN_DY, dy, side="right") - 1
    slope = (PEN_DX[j + 1] - PEN_DX[j]) / (PEN_DY[j + 1] - PEN_DY[j])
    return slope * (dy - PEN_DY[j]) + PEN_DX[j]


def _pen_spans(px: np.ndarray, py: np.ndarray, sid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sub-row spans of the pen polygon at every point (cairo's round caps, joins and dots)."""
    top = PEN_DY[-1]
    k0 = np.ceil((py - top) * GRID_Y - 0.5).astype(np.int64)
    k = k0[:, None] + np.arange(_PEN_ROWS)
    dy = np.abs((k + 0.5) / GRID_Y - py[:, None])
    ok = dy < top
    half = np.full(dy.shape, -1.0)
    half[ok] = pen_half_width(dy[ok])
    ok &= half > 0
    rows = np.nonzero(ok)[0]
    return sid[rows], k[ok], (px[:, None] - half)[ok], (px[:, None] + half)[ok]


def _solve_x(
    coef: np.ndarray, const: np.ndarray, low: float, high: float
) -> tuple[np.ndarray, ...]:
    """x-interval where low <= coef * x + const <= high; for coef == 0, all or nothing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = (low - const) / coef, (high - const) / coef
    flat = coef == 0
    ok = ~flat | ((const >= low) & (const <= high))
    lo = np.where(flat, -np.inf, np.minimum(a, b))
    hi = np.where(flat, np.inf, np.maximum(a, b))
    return lo, hi, ok


def _body_spans(
    ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, sid: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Sub-row spans of each segment's body: points a + s * (b - a) + t * o, 0 <= s <= 1,
    |t| <= 1, where o is the pen's offset normal to the segment, rounded to fixed point
    as cairo's stroker does (so the body is a parallelogram, very nearly a rectangle)."""
    dx, dy = bx - ax, by - ay
    # exact squares and sum of fixed-point values, then IEEE's correctly rounded square root:
    # the correctly rounded hypot on every machine, which libm's hypot need not be
    length = np.sqrt(dx * dx + dy * dy)
    ox, oy = _fixed(-dy / length * RADIUS), _fixed(dx / length * RADIUS)
    corners_y = np.stack((ay + oy, ay - oy, by + oy, by - oy))
    # Cairo rounds edge ends to sub-rows half up: rows [round(15 y_top), round(15 y_bottom)).
    k0 = np.floor(corners_y.min(axis=0) * GRID_Y + 0.5).astype(np.int64)
    k1 = np.floor(corners_y.max(axis=0) * GRID_Y + 0.5).astype(np.int64) - 1
    count = np.maximum(k1 - k0 + 1, 0)
    seg = np.repeat(np.arange(len(ax)), count)
    k = k0[seg] + np.arange(len(seg)) - np.repeat(np.cumsum(count) - count, count)
    y = (k + 0.5) / GRID_Y - ay[seg]
    dx, dy, ox, oy = dx[seg], dy[seg], ox[seg], oy[seg]
    det = dx * oy - dy * ox
    # With x measured from a: s = (x * oy - y * ox) / det and t = (dx * y - dy * x) / det.
    s_lo, s_hi, s_ok = _solve_x(oy / det, -y * ox / det, 0.0, 1.0)
    t_lo, t_hi, t_ok = _solve_x(-dy / det, dx * y / det, -1.0, 1.0)
    lo, hi = np.maximum(s_lo, t_lo), np.minimum(s_hi, t_hi)
    ok = s_ok & t_ok & (lo < hi)
    x0 = ax[seg]
    return sid[seg][ok], k[ok], (x0 + lo)[ok], (x0 + hi)[ok]


def _mul_un8(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b / 255 with pixman's rounding (cairo composites each stroke in 8 bits)."""
    t = a * b + 128
    return (t + (t >> 8)) >> 8


def _spans(pts: np.ndarray, psid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sub-row spans inside the bitmap (group = stroke * _ROWS + sub-row, left, right) of the
    pen at every point and of the segment between consecutive points of one stroke."""
    nxt = np.flatnonzero(psid[1:] == psid[:-1])
    parts = [
        _pen_spans(pts[:, 0], pts[:, 1], psid),
        _body_spans(pts[nxt, 0], pts[nxt, 1], pts[nxt + 1, 0], pts[nxt + 1, 1], psid[nxt]),
    ]
    sid, k, xl, xr = (np.concatenate(v) for v in zip(*parts, strict=True))
    inside = (k >= 0) & (k < _ROWS)
    sid, k = sid[inside], k[inside]
    xl, xr = (np.clip(_fixed(v[inside]), -1.0, SIDE + 1.0) for v in (xl, xr))
    return sid * _ROWS + k, xl, xr


def _union(group: np.ndarray, xl: np.ndarray, xr: np.ndarray) -> tuple[np.ndarray, ...]:
    """The union of the spans of each group (non-zero fill): its maximal runs, in (group,
    left) order. Exact: each run's ends are ends of its spans."""
    # by (group, xl), |xl| < 2 * SIDE; stable: one order whichever sort numpy dispatches to
    order = np.argsort(group * (8.0 * SIDE) + (xl + 2.0 * SIDE), kind="stable")
    group, xl, xr = group[order], xl[order], xr[order]
    first = np.concatenate(([True], group[1:] != group[:-1]))
    gidx = np.cumsum(first) - 1
    shift = gidx * 4.0 * SIDE  # keeps the running maximum inside each group
    reach = np.maximum.accumulate(xr + shift) - shift
    new_run = first.copy()
    new_run[1:] |= xl[1:] > reach[:-1]
    starts = np.flatnonzero(new_run)
    ends = np.concatenate((starts[1:], [len(xl)])) - 1
    return group[starts], xl[starts], reach[ends]


def _costs(pts: np.ndarray, psid: np.ndarray) -> np.ndarray:
    """At most how many spans each point brings: its pen's, and its segment's to the next."""
    dy = np.zeros(len(pts))
    dy[:-1] = np.where(psid[1:] == psid[:-1], np.abs(np.diff(pts[:, 1])), 0.0)
    return _PEN_ROWS + np.ceil((dy + 2 * RADIUS) * GRID_Y) + 2


def _runs(pts: np.ndarray, psid: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, ...]:
    """The union runs of the strokes, built from about _BUDGET spans at a time: a union of
    unions is the same union, so a drawing of a million points renders in bounded memory
    and exactly as it would at once (ordinary batches take one piece)."""
    piece = (np.cumsum(costs) - costs) // _BUDGET
    cuts = [0, *(np.flatnonzero(np.diff(piece)) + 1), len(pts)]
    runs: tuple[np.ndarray, ...] = ()
    for a, b in itertools.pairwise(cuts):
        # one point past the piece: its segment to the next piece (the pen there repeats)
        spans = _spans(pts[a : b + 1], psid[a : b + 1])
        if runs:
            spans = tuple(np.concatenate(v) for v in zip(runs, spans, strict=True))
        runs = _union(*spans)
    return runs


def _alpha(group: np.ndarray, xl: np.ndarray, reach: np.ndarray, count: int) -> np.ndarray:
    """Each stroke's 8-bit coverage (count, 784) from its union runs."""
    left = np.clip(xl, 0.0, SIDE)
    right = np.clip(reach, 0.0, SIDE)
    # Exact coverage of [left, right) per pixel column, as in cairo's cells: a step of +1
    # height at floor(left), -1 at floor(right), minus the uncovered fractions.
    row = (group // _ROWS) * SIDE + (group % _ROWS) // GRID_Y  # (stroke, pixel row)
    cl, cr = np.floor(left).astype(np.int64), np.floor(right).astype(np.int64)
    cells = count * SIDE * (SIDE + 1)
    idx_l, idx_r = row * (SIDE + 1) + cl, row * (SIDE + 1) + cr
    height = np.bincount(idx_l, minlength=cells) - np.bincount(idx_r, minlength=cells)
    area = np.bincount(idx_l, left - cl, cells) - np.bincount(idx_r, right - cr, cells)
    cover = np.cumsum(height.reshape(-1, SIDE + 1), axis=1) - area.reshape(-1, SIDE + 1)
    alpha = np.rint(cover[:, :SIDE] * (255.0 / GRID_Y)).astype(np.int64)
    return np.clip(alpha, 0, 255).reshape(count, SIDE * SIDE)


def _stroke_groups(costs: np.ndarray) -> Iterator[tuple[int, int]]:
    """Runs of consecutive strokes of about _BUDGET spans and at most _MAX_STROKES strokes
    (a longer stroke alone), rendered together."""
    lo, total = 0, 0.0
    for i, cost in enumerate(costs.tolist()):
        if i > lo and (total + cost > _BUDGET or i - lo >= _MAX_STROKES):
            yield lo, i
            lo, total = i, 0.0
        total += cost
    yield lo, len(costs)


def _render_batch(drawings: Sequence[Sequence[Stroke]]) -> np.ndarray:
    """Render a batch the way cairo's scan converter does, vectorised over all strokes.

    Each stroke is the union of its segments' rectangles and a pen 12-gon at each point.
    Every shape is cut into spans on 15 sub-rows per pixel row; the spans of one stroke on
    one sub-row are merged (non-zero fill = union), and their exact x-coverage is summed
    per pixel. Strokes are then composited one after another (white OVER, 8 bits), a group
    of strokes at a time, so memory is bounded whatever a drawing's length.
    """
    n = len(drawings)
    out = np.zeros((n, SIDE * SIDE), dtype=np.int64)
    strokes, owner = _device_strokes(drawings)
    if not strokes:
        return out.reshape(n, SIDE, SIDE).astype(np.uint8)
    sizes = np.array([len(s) for s in strokes])
    bounds = np.concatenate(([0], np.cumsum(sizes)))
    pts = np.vstack(strokes)
    psid = np.repeat(np.arange(len(strokes)), sizes)
    costs = _costs(pts, psid)
    for lo, hi in _stroke_groups(np.add.reduceat(costs, bounds[:-1])):
        a, b = bounds[lo], bounds[hi]
        alpha = _alpha(*_runs(pts[a:b], psid[a:b] - lo, costs[a:b]), hi - lo)
        # Composite: the r-th stroke of every drawing at once (in drawing order across groups).
        mine = owner[lo:hi]
        rank = np.arange(hi - lo) - np.searchsorted(mine, mine)
        for r in range(int(rank.max()) + 1):
            m = rank == r
            a8 = alpha[m]
            out[mine[m]] = a8 + _mul_un8(out[mine[m]], 255 - a8)
    return out.reshape(n, SIDE, SIDE).astype(np.uint8)


def render_bitmap(strokes: Sequence[Stroke]) -> np.ndarray:
    """Google's 28x28 numpy_bitmap of one simplified drawing: uint8, ink 255 on 0, row 0 = top."""
    return _render_batch([strokes])[0]


def render_bitmaps(drawings: Iterable[Sequence[Stroke]]) -> np.ndarray:
    """Render many simplified drawings at once, shape (n, 28, 28) uint8 (vectorised in batches)."""
    drawings = list(drawings)
    if not drawings:
        return np.zeros((0, SIDE, SIDE), dtype=np.uint8)
    return np.concatenate(
        [_render_batch(drawings[i : i + _BATCH]) for i in range(0, len(drawings), _BATCH)]
    )
