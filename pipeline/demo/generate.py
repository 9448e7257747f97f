"""The bundled offline demo dataset: synthetic doodles in Google's exact file layout and formats.

The pipeline must run end to end without network access, so `python -m pipeline demo` writes a
small stand-in for Google's bucket: `raw/`, `simplified/` and `numpy_bitmap/` files for a few
categories, generated deterministically (seeded numpy Generator only) so the files are
byte-identical on every machine. Simplified drawings and bitmaps are derived from the raw ones
with the same code (`pipeline.formats.render`) that reproduces Google's preprocessing.
"""

from __future__ import annotations

import calendar
import io
import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from pipeline.formats.binary import Record, write_binary
from pipeline.formats.render import render_bitmaps, simplify_strokes
from pipeline.store.atomic import write_bytes
from pipeline.store.layout import bitmap_object, drawings_object

DEMO_CATEGORIES = ("octopus", "cat", "fish", "flower", "house", "The Eiffel Tower")

# Country mix shaped like the real heads (US first, long tail); weights are relative.
_COUNTRIES = {
    "US": 370, "GB": 60, "CA": 45, "DE": 40, "RU": 30, "BR": 25, "AU": 25, "PL": 20,
    "FR": 20, "SE": 15, "IT": 15, "CZ": 12, "TH": 12, "KR": 12, "FI": 10, "NL": 10,
    "IN": 10, "NO": 8, "IE": 8, "JP": 8, "ES": 8, "UA": 6, "TW": 6, "HU": 5, "RO": 5,
    "CH": 5, "AE": 4, "VN": 4, "SA": 3, "PH": 3, "IL": 2, "EE": 2, "KW": 1,
}  # fmt: skip
_RECOGNIZED_P = 0.87
_START = datetime(2017, 1, 1)
_SPAN_S = 90 * 24 * 3600  # timestamps spread over January to March 2017

Points = np.ndarray  # (n, 2) float, unit drawing space: x right, y down, roughly -1..1
Shape = Callable[[np.random.Generator], list[Points]]


# --- primitives -------------------------------------------------------------------------


def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 24) -> Points:
    """Elliptic arc from angle a0 to a1 (y down, so increasing angles turn clockwise)."""
    a = np.linspace(a0, a1, n)
    return np.column_stack((cx + rx * np.cos(a), cy + ry * np.sin(a)))


def _poly(*corners: tuple[float, float], n: int = 6) -> Points:
    """Polyline through the corners, densified so wobble can bend its sides."""
    c = np.asarray(corners, dtype=float)
    t = np.linspace(0.0, 1.0, n, endpoint=False)[:, None]
    parts = [a + t * (b - a) for a, b in itertools.pairwise(c)]
    return np.vstack([*parts, c[-1:]])


def _dot(rng: np.random.Generator, x: float, y: float, r: float) -> Points:
    """An eye: a tiny circle or a dab (people do both)."""
    if rng.random() < 0.5:
        return _arc(x, y, r, r * rng.uniform(0.8, 1.2), 0, 2 * np.pi * rng.uniform(0.9, 1.1), 10)
    return _poly((x, y), (x + rng.normal(0, r / 3), y + rng.normal(0, r / 3)), n=1)


def _wavy(
    rng: np.random.Generator, x: float, y: float, angle: float, length: float, amp: float
) -> Points:
    """A wavy tentacle/stem: a sine wave along a direction, damped at its root."""
    t = np.linspace(0.0, 1.0, 14)
    freq, phase = rng.uniform(1.0, 2.2), rng.uniform(0, 2 * np.pi)
    side = amp * np.sin(2 * np.pi * freq * t + phase) * np.minimum(1.0, 3 * t)
    d = np.array([np.cos(angle), np.sin(angle)])
    normal = np.array([-d[1], d[0]])
    return np.array([x, y]) + (t * length)[:, None] * d + side[:, None] * normal


# --- categories -------------------------------------------------------------------------


def _octopus(rng: np.random.Generator) -> list[Points]:
    rx = rng.uniform(0.32, 0.45)
    ry = rx * rng.uniform(0.8, 1.2)
    cx, cy = 0.0, -0.45 + rng.uniform(-0.05, 0.05)
    gap = rng.uniform(0.15, 0.6)
    if rng.random() < 0.6:  # head open at the bottom, where the tentacles start
        head = _arc(cx, cy, rx, ry, np.pi - gap, 2 * np.pi + gap, 28)
    else:
        a0 = rng.uniform(0, 2 * np.pi)
        head = _arc(cx, cy, rx, ry, a0, a0 + 2 * np.pi * rng.uniform(0.97, 1.08), 30)
    strokes = [head]
    ex, ey, er = rx * rng.uniform(0.3, 0.45), cy - ry * rng.uniform(0.0, 0.25), rx * 0.12
    strokes += [_dot(rng, cx - ex, ey, er), _dot(rng, cx + ex, ey, er)]
    if rng.random() < 0.4:
        strokes.append(_arc(cx, cy + ry * 0.25, rx * 0.3, ry * 0.2, 0.3, np.pi - 0.3, 8))
    n = int(rng.choice([8, 8, 8, 8, 8, 7, 6, 9]))
    spread = rng.uniform(0.75, 0.95)
    for i in range(n):
        u = (i + 0.5) / n
        bx = cx + rx * spread * (2 * u - 1)
        by = cy + ry * np.sqrt(max(0.0, 1 - (spread * (2 * u - 1)) ** 2)) * 0.85
        angle = np.pi / 2 + (0.5 - u) * rng.uniform(1.6, 2.4) + rng.normal(0, 0.08)
        strokes.append(_wavy(rng, bx, by, angle, rng.uniform(0.55, 0.9), rng.uniform(0.04, 0.09)))
    return strokes


def _cat(rng: np.random.Generator) -> list[Points]:
    r = rng.uniform(0.42, 0.55)
    ry = r * rng.uniform(0.85, 1.05)
    a0 = rng.uniform(-0.5, 0.5) + np.pi / 2
    strokes = [_arc(0, 0.1, r, ry, a0, a0 + 2 * np.pi * rng.uniform(0.97, 1.06), 30)]
    for s in (-1, 1):  # ears: up from the head outline to a tip and back down
        b1, b2 = np.deg2rad(270 + s * rng.uniform(45, 70)), np.deg2rad(270 + s * rng.uniform(8, 22))
        tip = (s * r * rng.uniform(0.55, 0.85), 0.1 - ry - rng.uniform(0.25, 0.45))
        p1 = (r * np.cos(b1), 0.1 + ry * np.sin(b1))
        p2 = (r * np.cos(b2), 0.1 + ry * np.sin(b2))
        strokes.append(_poly(p1, tip, p2, n=4))
    ex, ey = r * rng.uniform(0.3, 0.45), 0.1 - ry * rng.uniform(0.1, 0.3)
    strokes += [_dot(rng, -ex, ey, r * 0.1), _dot(rng, ex, ey, r * 0.1)]
    ny = 0.1 + ry * 0.15
    strokes.append(_poly((-0.05, ny), (0.05, ny), (0.0, ny + 0.06), (-0.05, ny), n=2))
    if rng.random() < 0.7:  # mouth: a small "w"
        strokes.append(_poly((-0.14, ny + 0.12), (-0.07, ny + 0.17), (0.0, ny + 0.08),
                             (0.07, ny + 0.17), (0.14, ny + 0.12), n=2))  # fmt: skip
    for s in (-1, 1):
        for k in range(int(rng.choice([2, 2, 3]))):
            y0 = ny + 0.05 + 0.06 * k
            end = (s * r * rng.uniform(1.2, 1.55), y0 + (k - 1) * 0.12 + rng.normal(0, 0.03))
            strokes.append(_poly((s * r * 0.35, y0), end, n=3))
    return strokes


def _fish(rng: np.random.Generator) -> list[Points]:
    rx, ry = rng.uniform(0.5, 0.65), rng.uniform(0.25, 0.4)
    cx, cy = -0.15, 0.0
    if rng.random() < 0.5:  # one loop for the body
        a0 = np.pi + rng.uniform(-0.2, 0.2)
        strokes = [_arc(cx, cy, rx, ry, a0, a0 + 2 * np.pi * rng.uniform(0.95, 1.05), 30)]
    else:  # two arcs meeting at nose and tail, slightly crossing at the tail
        strokes = [_arc(cx, cy, rx, ry, np.pi, 2 * np.pi + 0.25, 16),
                   _arc(cx, cy, rx, ry, np.pi, 0.0 - 0.25, 16)]  # fmt: skip
    tx = cx + rx * 0.95
    tw, tl = rng.uniform(0.2, 0.35), rng.uniform(0.3, 0.45)
    strokes.append(_poly((tx, cy), (tx + tl, cy - tw), (tx + tl * rng.uniform(0.85, 1.1), cy + tw),
                         (tx, cy), n=4))  # fmt: skip
    strokes.append(_dot(rng, cx - rx * 0.6, cy - ry * 0.25, 0.04))
    if rng.random() < 0.5:  # gill
        strokes.append(_arc(cx - rx * 0.7, cy, rx * 0.35, ry * 0.6, -0.9, 0.9, 8))
    if rng.random() < 0.5:  # top fin
        strokes.append(_poly((cx - rx * 0.2, cy - ry * 0.95), (cx + rx * 0.1, cy - ry * 1.5),
                             (cx + rx * 0.45, cy - ry * 0.85), n=3))  # fmt: skip
    if rng.random() < 0.25:  # bubbles
        for k in range(int(rng.integers(1, 4))):
            bx, by = cx - rx * 1.25 - 0.05 * k, cy - ry - 0.15 * k
            strokes.append(_arc(bx, by, 0.05, 0.05, 0, 2 * np.pi, 10))
    return strokes


def _flower(rng: np.random.Generator) -> list[Points]:
    cy, rc = -0.35, rng.uniform(0.1, 0.17)
    rp = rng.uniform(0.38, 0.5)
    strokes = [_arc(0, cy, rc, rc, 0, 2 * np.pi * rng.uniform(0.95, 1.08), 16)]
    k = int(rng.integers(5, 9))
    phase, half = rng.uniform(0, 2 * np.pi), np.pi / k * rng.uniform(0.7, 0.95)
    if rng.random() < 0.7:  # one loop per petal
        for i in range(k):
            phi = phase + 2 * np.pi * i / k
            s = np.linspace(0.0, np.pi, 12)
            rad = rc + (rp - rc) * np.sin(s) ** 0.8
            ang = phi - half + 2 * half * s / np.pi
            strokes.append(np.column_stack((rad * np.cos(ang), cy + rad * np.sin(ang))))
    else:  # one scalloped stroke around the centre
        s = np.linspace(0.0, 2 * np.pi, 12 * k)
        rad = rc + (rp - rc) * np.abs(np.sin(k * s / 2)) ** 0.7
        strokes.append(np.column_stack((rad * np.cos(s + phase), cy + rad * np.sin(s + phase))))
    bend = rng.uniform(-0.12, 0.12)
    t = np.linspace(0.0, 1.0, 10)
    top = cy + rp * 0.95
    stem = np.column_stack((bend * np.sin(np.pi * t), top + t * (0.95 - top)))
    strokes.append(stem)
    for side in rng.permutation([-1, 1])[: int(rng.integers(1, 3))]:
        y0 = top + (0.95 - top) * rng.uniform(0.35, 0.7)
        ln, w = rng.uniform(0.25, 0.4), rng.uniform(0.07, 0.12)
        s = np.linspace(0.0, np.pi, 10)
        u = (1 - np.cos(s)) / 2  # leaf: out along one edge, back along the other
        lx = side * ln * np.concatenate((u, u[::-1]))
        ly = y0 - 0.5 * lx * side * 0.6 + np.concatenate((-w * np.sin(s), w * np.sin(s[::-1])))
        strokes.append(np.column_stack((lx, ly)))
    return strokes


def _house(rng: np.random.Generator) -> list[Points]:
    w, top, bottom = rng.uniform(0.5, 0.7), rng.uniform(-0.2, 0.0), rng.uniform(0.75, 0.9)
    if rng.random() < 0.7:
        strokes = [_poly((-w, top), (-w, bottom), (w, bottom), (w, top), n=5)]
    else:
        strokes = [_poly((-w, top), (w, top), (w, bottom), (-w, bottom), (-w, top), n=5)]
    apex = top - rng.uniform(0.5, 0.8)
    eave = w * rng.uniform(1.0, 1.2)
    strokes.append(_poly((-eave, top), (rng.normal(0, 0.04), apex), (eave, top), n=6))
    dw, dh = rng.uniform(0.1, 0.16), (bottom - top) * rng.uniform(0.4, 0.6)
    dx = rng.uniform(-0.25, 0.25) * w
    strokes.append(_poly((dx - dw, bottom), (dx - dw, bottom - dh), (dx + dw, bottom - dh),
                         (dx + dw, bottom), n=3))  # fmt: skip
    for wx in rng.permutation([-0.6 * w, 0.6 * w])[: int(rng.integers(1, 3))]:
        if abs(wx - dx) < dw + 0.15:
            continue
        s, wy = 0.12, top + (bottom - top) * 0.35
        strokes.append(_poly((wx - s, wy - s), (wx + s, wy - s), (wx + s, wy + s), (wx - s, wy + s),
                             (wx - s, wy - s), n=2))  # fmt: skip
        if rng.random() < 0.6:
            strokes.append(_poly((wx, wy - s), (wx, wy + s), n=2))
            strokes.append(_poly((wx - s, wy), (wx + s, wy), n=2))
    if rng.random() < 0.4:  # chimney on the right slope
        c0 = w * rng.uniform(0.35, 0.55)
        y_roof = top + (apex - top) * (1 - c0 / eave)
        y_end = y_roof + 0.15 * (apex - top) / eave
        strokes.append(_poly((c0, y_roof), (c0, y_roof - 0.25), (c0 + 0.15, y_roof - 0.25),
                             (c0 + 0.15, y_end), n=2))  # fmt: skip
    return strokes


def _eiffel(rng: np.random.Generator) -> list[Points]:
    top, base = -0.85, 0.95
    half, power, neck = rng.uniform(0.4, 0.55), rng.uniform(1.6, 2.4), rng.uniform(0.02, 0.06)
    u = np.linspace(0.0, 1.0, 16)

    def leg_x(v: np.ndarray | float) -> np.ndarray:
        return neck + (half - neck) * np.asarray(v) ** power

    ys = top + (base - top) * u
    left = np.column_stack((-leg_x(u), ys))[::-1]  # drawn bottom to top
    right = np.column_stack((leg_x(u), ys))
    # Up one leg and down the other in one go, or two strokes.
    strokes = [np.vstack((left, right))] if rng.random() < 0.5 else [left, right]
    strokes.append(_poly((0, top), (rng.normal(0, 0.01), top - rng.uniform(0.12, 0.2)), n=3))
    for v in sorted(rng.choice([0.15, 0.45, 0.72], size=int(rng.integers(2, 4)), replace=False)):
        x, y = float(leg_x(v)) * rng.uniform(1.05, 1.25), top + (base - top) * v
        strokes.append(_poly((-x, y), (x, y), n=4))
        if rng.random() < 0.3:  # a double line for the platform
            strokes.append(_poly((-x, y + 0.05), (x, y + 0.05), n=4))
    arch_y = top + (base - top) * 0.82
    ax = float(leg_x(1.0)) * 0.75
    strokes.append(_arc(0, base, ax, base - arch_y, np.pi, 2 * np.pi, 14))
    if rng.random() < 0.35:  # lattice between the two lower platforms
        v0, v1 = 0.45, 0.72
        y0, y1 = top + (base - top) * v0, top + (base - top) * v1
        x0, x1 = float(leg_x(v0)), float(leg_x(v1))
        strokes += [_poly((-x0, y0), (x1, y1), n=3), _poly((x0, y0), (-x1, y1), n=3)]
    return strokes


_SHAPES: dict[str, Shape] = {
    "octopus": _octopus,
    "cat": _cat,
    "fish": _fish,
    "flower": _flower,
    "house": _house,
    "The Eiffel Tower": _eiffel,
}


# --- from a shape to a raw drawing -----------------------------------------------------


def _smooth_noise(rng: np.random.Generator, n: int, amp: float) -> np.ndarray:
    """Low-frequency (n, 2) noise: a hand drifts slowly, it does not jitter point to point."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    out = np.zeros((n, 2))
    for _ in range(2):
        freq = rng.uniform(0.5, 2.0, size=2)
        out += amp * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 7, 2))
    return out


def _hand(
    rng: np.random.Generator, strokes: list[Points], sloppy: bool
) -> tuple[list[Points], float]:
    """Per-drawing variation: wobble, dropped strokes for sloppy ones, then a random
    similarity transform (size, rotation, aspect, position) into screen pixels.
    Returns the strokes and the drawing's half-size in pixels."""
    if sloppy:
        keep = rng.random(len(strokes)) < rng.uniform(0.3, 0.7)
        keep[rng.integers(len(strokes))] = True
        strokes = [s for s, k in zip(strokes, keep, strict=True) if k]
    amp = rng.uniform(0.01, 0.025) * (3.0 if sloppy else 1.0)
    strokes = [s + _smooth_noise(rng, len(s), amp) for s in strokes]
    angle = rng.normal(0, 0.08) + (rng.normal(0, 0.4) if sloppy else 0.0)
    c, s_ = np.cos(angle), np.sin(angle)
    aspect = rng.uniform(0.85, 1.15)
    size = rng.uniform(90, 260)
    m = size * np.array([[c * aspect, -s_], [s_ * aspect, c]])
    out = [p @ m.T for p in strokes]
    low = np.vstack(out).min(axis=0)
    origin = rng.uniform([20, 10], [700, 250]) - low
    return [p + origin for p in out], size


def _raw_stroke(
    rng: np.random.Generator,
    pts: Points,
    t0: int,
    ms_per_point: float,
    spacing: float,
    floats: float,
) -> tuple[list[list[float]], int]:
    """Sample a screen-space polyline like a pen reporting at a steady rate: the pen slows in
    curves, so points crowd there and thin out on straight runs (which also keeps files small).
    Returns [xs, ys, ts] with ts in ms, strictly increasing, and the stroke's end time."""
    step = np.diff(pts, axis=0)
    seg = np.hypot(*step.T)
    heading = np.arctan2(step[:, 1], step[:, 0])
    turn = np.abs(np.angle(np.exp(1j * np.diff(heading, prepend=heading[:1]))))
    cost = np.concatenate(([0.0], np.cumsum(seg / spacing + turn / 1.35)))
    arc = np.concatenate(([0.0], np.cumsum(seg)))
    n = max(2, int(np.ceil(cost[-1])) + 1)
    at = np.interp(np.linspace(0.0, cost[-1], n), cost, arc)
    xs, ys = np.interp(at, arc, pts[:, 0]), np.interp(at, arc, pts[:, 1])
    gaps = np.maximum(1, np.rint(ms_per_point * rng.uniform(0.7, 1.3, n - 1))).astype(np.int64)
    ts = t0 + np.concatenate(([0], np.cumsum(gaps)))
    if floats:  # some devices report float32 coordinates, e.g. 309.1999969482422
        xr = [int(v) for v in np.rint(xs)]
        yr = [float(np.float32(v)) for v in np.rint(ys) + floats]
    else:
        xr, yr = [int(v) for v in np.rint(xs)], [int(v) for v in np.rint(ys)]
    return [xr, yr, [int(v) for v in ts]], int(ts[-1])


def _raw_drawing(rng: np.random.Generator, category: str, sloppy: bool) -> list[list[list[float]]]:
    """One raw drawing ([[xs, ys, ts], ...]) of `category`."""
    strokes, size = _hand(rng, _SHAPES[category](rng), sloppy)
    spacing = size * rng.uniform(0.3, 0.4)  # px between reported points on straight runs
    ms = rng.uniform(22, 45)  # ms between reported points
    floats = float(rng.choice([0.2, 0.4, 0.6, 0.8])) if rng.random() < 0.08 else 0.0
    t, out = 0, []
    for pts in strokes:
        stroke, t = _raw_stroke(rng, pts, t, ms * rng.uniform(0.8, 1.2), spacing, floats)
        out.append(stroke)
        t += int(rng.uniform(120, 650) if rng.random() < 0.9 else rng.uniform(800, 2500))
    return out


# --- metadata and files -----------------------------------------------------------------


def _timestamp(rng: np.random.Generator) -> str:
    """Google's format: `2017-03-05 10:52:22.31485 UTC` (trailing zeros of the fraction cut)."""
    when = _START + timedelta(seconds=int(rng.integers(_SPAN_S)))
    frac = f"{int(rng.integers(1, 100_000)):05d}".rstrip("0")
    return f"{when:%Y-%m-%d %H:%M:%S}.{frac} UTC"


def _key_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Unique 16-digit ids in the range App Engine used for the real ones (2**52 .. 1.5*2**52)."""
    ids: list[int] = []
    seen: set[int] = set()
    while len(ids) < n:
        for v in rng.integers(2**52, 3 * 2**51, size=n - len(ids)).tolist():
            if v not in seen:
                seen.add(v)
                ids.append(v)
    return [str(v) for v in ids]


def _line(meta: dict[str, object], drawing: object) -> bytes:
    record = {**meta, "drawing": drawing}
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def _readme(per_category: int, seed: int) -> str:
    rows = "\n".join(f"- {c}: {per_category} drawings" for c in DEMO_CATEGORIES)
    return f"""# Demo dataset (synthetic)

Synthetic Quick, Draw!-style doodles for running the pipeline offline. They are NOT Google's
data: every drawing was generated by `python -m pipeline demo`
(`pipeline/demo/generate.py`, seed {seed}), deterministically, so regenerating gives
byte-identical files.

Layout and formats mirror Google's `full/` bucket folder:

- `raw/<category>.ndjson`: one drawing per line, keys `word, countrycode, timestamp,
  recognized, key_id, drawing`; `drawing` is `[[xs, ys, ts], ...]` in screen pixels, `ts` in
  milliseconds since the first point.
- `simplified/<category>.ndjson`: the same drawings in the same order, simplified as Google
  did (aligned to 0, scaled to 0..255, resampled, Ramer-Douglas-Peucker 2.0): `[[xs, ys], ...]`.
- `binary/<category>.bin`: the simplified drawings in Google's compact binary records
  (key_id u64, country, recognized, timestamp in whole seconds, strokes of u8 x and y).
- `numpy_bitmap/<category>.npy`: uint8 array of shape (n, 784), row i = line i rendered as a
  28x28 image (white ink on black), as Google rendered its bitmaps.

Categories ({len(DEMO_CATEGORIES)}, {per_category * len(DEMO_CATEGORIES)} drawings in all):

{rows}
"""


def _record(meta: dict, strokes: list) -> Record:
    """The drawing as a record of Google's binary format (whole seconds, like Google's)."""
    moment = datetime.strptime(meta["timestamp"][:19], "%Y-%m-%d %H:%M:%S")
    return Record(
        key_id=int(meta["key_id"]),
        countrycode=meta["countrycode"],
        recognized=meta["recognized"],
        timestamp=calendar.timegm(moment.timetuple()),
        strokes=[(xs, ys) for xs, ys in strokes],
    )


def generate_demo(out: Path, per_category: int = 600, seed: int = 2017) -> None:
    """Write the demo dataset under `out` (Google's layout), each file atomically.

    Deterministic: the same `per_category` and `seed` always give byte-identical files.
    """
    out = Path(out)
    countries = list(_COUNTRIES)
    weights = np.array(list(_COUNTRIES.values()), dtype=float)
    weights /= weights.sum()
    keys = _key_ids(np.random.default_rng([seed, 0]), per_category * len(DEMO_CATEGORIES))
    for ci, category in enumerate(DEMO_CATEGORIES):
        rng = np.random.default_rng([seed, ci + 1])
        raw_lines, simple_lines, simplified, records = [], [], [], []
        for i in range(per_category):
            recognized = bool(rng.random() < _RECOGNIZED_P)
            meta = {
                "word": category,
                "countrycode": countries[int(rng.choice(len(countries), p=weights))],
                "timestamp": _timestamp(rng),
                "recognized": recognized,
                "key_id": keys[ci * per_category + i],
            }
            raw = _raw_drawing(rng, category, sloppy=not recognized and rng.random() < 0.8)
            simple = [s.tolist() for s in simplify_strokes(raw)]
            raw_lines.append(_line(meta, raw))
            simple_lines.append(_line(meta, simple))
            simplified.append(simple)
            records.append(_record(meta, simple))
        bitmaps = render_bitmaps(simplified).reshape(per_category, 28 * 28)
        buf = io.BytesIO()
        np.save(buf, bitmaps)
        write_bytes(out / drawings_object("raw", category), b"".join(raw_lines))
        write_bytes(out / drawings_object("simplified", category), b"".join(simple_lines))
        write_bytes(out / bitmap_object(category), buf.getvalue())
        write_binary(out / drawings_object("binary", category), records)
    write_bytes(out / "README.md", _readme(per_category, seed).encode("utf-8"))
