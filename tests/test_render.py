"""pipeline.formats.render: Google's simplification and its cairo numpy_bitmap rendering,
in numpy."""

from __future__ import annotations

import base64
import math
import time
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import orjson
import pytest

from pipeline.formats.render import render_bitmap, render_bitmaps, simplify_strokes
from pipeline.native import _native

HLINE = [[[0, 255], [0, 0]]]
SQUARE = [[[0, 255, 255, 0, 0], [0, 0, 255, 255, 0]]]
DIAGONAL_AND_DOT = [[[0, 200], [0, 255]], [[255], [40]]]
VEE = [[[0, 90, 255], [0, 255, 10]]]

# Google's vector_to_raster output for the four drawings above, recorded once with libcairo
# 1.16 (ANTIALIAS_BEST, round caps and joins, line diameter 16, padding 16): zlib + base64 of
# a (4, 28, 28) uint8 array.
CAIRO_REFERENCE = (
    "eNpjYBgFdANWO3djBTut8MuNgsEBZMrKsYIyGQaGiv84QAUDQ/U/7Ob9qx6VG5Wjnhy+NIgv7ZKdHyJwy8X+T8Qpx7j2"
    "uwlOSd5rD0VwSup82cOMKbrUEUxF/G/BlGs3htAT/gXjNJXlwCdNnJLiT67z4pS0/LkcdxDk/i/ALTn/tz1OOc6zL6Rx"
    "Siq8Oc6GU9Ln72TcVjb+T8Apx7T1uxFOScE7D4RxSup93cWMUzL6fz1u90z9641TjvXwO2WckhLPLnLhrmR/LcVtZdF/"
    "H9ypMk6M0vohHLdc6j9FrOI5qgwMkn+qsEnF/AeZt/saFimpt3sYgVTSf31Mua0f5UAU37cODKnk/0kQxppHTGhS0u92"
    "MUJYwf/t0AJm+wdZKJPj/XRUuYz/sXD23LcoCVPh0yYEx/m/L7KJO99IIKW9J8tQcg1KqdL3lQfOVvy8AcVyk/8xcDMO"
    "vhZHddmNrYhID0HzbMNvqGL1b8vQw0jlXzbExMOvMNPDqaNgqvx/EGa4F4JjWPP7QizxBY5hllNPhbDFMyiGa/57YU0e"
    "wBjW+zkHe5Li+9Z75okAjvS25u8/V1xpMej/DNxlYSoXKUkeAOl0Ka4="
)


def cairo_reference() -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(CAIRO_REFERENCE))
    return np.frombuffer(raw, dtype=np.uint8).reshape(4, 28, 28).astype(int)


def read_ndjson(path: Path) -> list[dict]:
    """Parse complete lines only: the raw heads end with a line cut by the byte-range download."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return out


# --- simplify_strokes ---------------------------------------------------------------------


def test_simplified_is_aligned_scaled_and_integer() -> None:
    raw = [
        [[400.5, 520, 610, 700.25], [310.2, 300, 420, 380], [0, 16, 33, 50]],
        [[450, 470], [500, 505.5], [400, 417]],
    ]
    out = simplify_strokes(raw)
    assert len(out) == 2
    allpts = np.hstack(out)
    assert all(s.dtype.kind == "i" and s.shape[0] == 2 for s in out)
    assert allpts.min() >= 0 and allpts.max() <= 255
    assert allpts[0].min() == 0 and allpts[1].min() == 0
    assert allpts.max() == 255  # the longer side (x here) spans 0..255
    assert allpts[0].max() == 255 and allpts[1].max() < 255


def test_times_are_ignored() -> None:
    xy = [[[10, 50, 90, 60], [5, 80, 20, 100]]]
    xyt = [[[10, 50, 90, 60], [5, 80, 20, 100], [0, 10, 20, 30]]]
    assert [s.tolist() for s in simplify_strokes(xy)] == [s.tolist() for s in simplify_strokes(xyt)]


def test_rdp_keeps_only_the_ends_of_a_straight_line() -> None:
    xs = list(np.linspace(100, 400, 37))
    ys = list(np.linspace(50, 350, 37) + np.tile([0.0, 0.3, -0.3], 13)[:37])  # jitter < eps
    (stroke,) = simplify_strokes([[xs, ys]])
    assert stroke.tolist() == [[0, 255], [0, 255]]


def test_rdp_keeps_a_corner_and_a_single_point_is_doubled() -> None:
    corner = [[0, 50, 100, 100, 100], [0, 0, 0, 50, 100]]
    dot = [[30], [70]]
    out = simplify_strokes([corner, dot])
    assert out[0].tolist() == [[0, 255, 255], [0, 0, 255]]
    assert out[1].tolist() == [[76, 76], [178, 178]]  # Google writes a dot as two equal points


# --- render_bitmap ------------------------------------------------------------------------


def test_horizontal_line_lands_in_the_middle_rows_symmetric() -> None:
    img = render_bitmap(HLINE).astype(int)
    assert img.shape == (28, 28)
    rows = np.flatnonzero(img.sum(axis=1))
    cols = np.flatnonzero(img.sum(axis=0))
    assert rows.tolist() == [13, 14]  # the line's bbox is centred vertically
    assert cols.min() == 1 and cols.max() == 26
    assert np.array_equal(img, img[::-1]) and np.array_equal(img, img[:, ::-1])
    assert img[13, 5] == 187  # 16/304 of 28 px of a 1-px row, as cairo quantises it


def test_square_outline_is_symmetric_with_an_empty_middle() -> None:
    img = render_bitmap(SQUARE).astype(int)
    # Not exactly transpose-symmetric: like cairo, y is sampled on 15 sub-rows, x is exact.
    assert np.abs(img - img.T).max() <= 6
    assert np.array_equal(img, img[::-1]) and np.array_equal(img, img[:, ::-1])
    assert img[5:23, 5:23].max() == 0
    assert img[2, 3:25].min() > 150 and img[3:25, 2].min() > 150


def test_right_side_up() -> None:
    # A bar at the top of the drawing and a dot at its bottom: the bar must be in the top rows.
    img = render_bitmap([[[0, 255], [0, 0]], [[128, 128], [255, 255]]]).astype(int)
    bar_row = int(np.argmax(img.sum(axis=1)))
    assert bar_row < 5
    assert img[20:].sum() > 0 and img[20:, :10].sum() == 0


def test_matches_cairo_reference() -> None:
    ours = render_bitmaps([HLINE, SQUARE, DIAGONAL_AND_DOT, VEE]).astype(int)
    ref = cairo_reference()
    # Axis-aligned strokes are bit-exact; slanted edges differ by a few levels at most where
    # cairo switches to exact-area rows.
    assert np.array_equal(ours[:2], ref[:2])
    diff = np.abs(ours - ref)
    assert diff.max() <= 8
    assert diff.mean() < 0.5
    assert (diff > 2).mean() < 0.02


def test_render_bitmaps_matches_render_bitmap_and_handles_edges() -> None:
    drawings = [HLINE, SQUARE, DIAGONAL_AND_DOT, VEE]
    batch = render_bitmaps(drawings)
    assert batch.shape == (4, 28, 28) and batch.dtype == np.uint8
    for d, img in zip(drawings, batch, strict=True):
        assert np.array_equal(render_bitmap(d), img)
    assert render_bitmaps([]).shape == (0, 28, 28)
    assert render_bitmap([]).max() == 0
    assert render_bitmaps(iter(drawings)).shape == (4, 28, 28)


def test_strokes_composite_over_each_other_not_add() -> None:
    # The same line drawn twice: cairo composites OVER, so ink saturates instead of summing.
    once = render_bitmap(HLINE).astype(int)
    twice = render_bitmap(HLINE + HLINE).astype(int)
    assert (twice >= once).all() and twice.max() <= 255
    assert twice[13, 5] == 187 + round(187 * (255 - 187) / 255)


# --- real heads ---------------------------------------------------------------------------


def simplified_heads(heads: Path) -> dict[str, list[list]]:
    return {
        p.stem: [d["drawing"] for d in read_ndjson(p)]
        for p in sorted((heads / "simplified").glob("*.ndjson"))
    }


def test_real_simplified_heads_render_plausibly(heads: Path) -> None:
    by_cat = simplified_heads(heads)
    assert len(by_cat) >= 5
    drawings = [d for ds in by_cat.values() for d in ds]
    imgs = render_bitmaps(drawings).astype(float)
    ink = imgs.sum(axis=(1, 2)) / (255 * 28 * 28)
    # Every drawing leaves ink and none fills the square; real drawings vary (a scribbled
    # `brain` covers 59% of its bitmap, a `rain` 2%), so the band holds for nearly all only.
    assert ((ink > 0) & (ink < 1)).all()
    assert np.mean((ink > 0.02) & (ink < 0.5)) > 0.99
    assert 0.05 < np.median(ink) < 0.3
    assert imgs.max() == 255
    ys, xs = np.mgrid[0:28, 0:28]
    total = imgs.sum(axis=(1, 2))
    cy = (imgs * ys).sum(axis=(1, 2)) / total
    cx = (imgs * xs).sum(axis=(1, 2)) / total
    # Google centres each drawing's bounding box (not its ink: an `L` leans to one side)
    for axis in (1, 2):
        inked = imgs.max(axis=axis) > 0
        first, last = inked.argmax(axis=1), 27 - inked[:, ::-1].argmax(axis=1)
        assert np.abs((first + last) / 2 - 13.5).max() <= 0.5
    assert abs(np.mean(cy) - 13.5) < 1.5 and abs(np.mean(cx) - 13.5) < 1.5
    # The 4-pixel border is padding: nothing drawn there but the pen's antialiased fringe.
    assert imgs[:, :1].max() == 0 and imgs[:, -1:].max() == 0


def test_simplify_of_raw_heads_matches_googles_simplified(heads: Path) -> None:
    compared = exact = 0
    correlations = []
    for simple_path in sorted((heads / "simplified").glob("*.ndjson")):
        simple = read_ndjson(simple_path)
        raw = read_ndjson(heads / "raw" / simple_path.name)
        for r, s in zip(raw, simple, strict=False):
            assert r["key_id"] == s["key_id"]
            ours = [st.tolist() for st in simplify_strokes(r["drawing"])]
            compared += 1
            exact += ours == s["drawing"]
            a, b = render_bitmaps([ours, s["drawing"]]).reshape(2, -1).astype(float)
            correlations.append(np.corrcoef(a, b)[0, 1])
    assert compared >= 100
    correlations = np.asarray(correlations)
    assert (correlations > 0.9).mean() > 0.95
    assert np.median(correlations) > 0.99
    # Same algorithm, same parameters: most drawings come out identical to the last integer.
    assert exact / compared > 0.8


def test_rendering_is_fast(heads: Path) -> None:
    drawings = [d for ds in simplified_heads(heads).values() for d in ds]
    drawings = (drawings * (1000 // len(drawings) + 1))[:1000]
    start = time.perf_counter()
    render_bitmaps(drawings)
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"rendering 1000 drawings took {elapsed:.1f} s"


@pytest.mark.parametrize("bad", [[], [[[], []]]])
def test_empty_drawings_render_blank(bad: list) -> None:
    assert render_bitmap(bad).max() == 0
    assert simplify_strokes(bad) == []


def correctly_rounded(x: float, y: float, result: float) -> bool:
    """Whether `result` is sqrt(x^2 + y^2) rounded to the nearest double (exact rationals)."""
    exact = Fraction(x) ** 2 + Fraction(y) ** 2
    up, down = math.nextafter(result, math.inf), math.nextafter(result, 0.0)
    return (
        (Fraction(result) + Fraction(down)) ** 2 / 4
        <= exact
        <= (Fraction(result) + Fraction(up)) ** 2 / 4
    )


def test_hypot_exact_is_correctly_rounded() -> None:
    """The lengths simplify and RDP measure: within half an ulp everywhere, so the same on
    every C library (glibc's hypot differs from it in about 0.6% of such pairs)."""
    rng = np.random.default_rng(0)
    pairs = [tuple(p) for p in rng.uniform(-300, 300, (20_000, 2)).tolist()]
    pairs += [
        (math.ldexp(a, int(e)), math.ldexp(b, int(f)))
        for a, b, e, f in zip(
            rng.random(5_000),
            rng.random(5_000),
            rng.integers(-1000, 1000, 5_000),
            rng.integers(-1000, 1000, 5_000),
            strict=True,
        )
    ]
    pairs += [(3.0, 4.0), (0.0, 0.0), (-5.0, 0.0), (1e308, 1e308), (5e-324, 5e-324), (1.0, 1e-17)]
    wrong = [(x, y) for x, y in pairs if not correctly_rounded(x, y, _native.hypot_exact(x, y))]
    assert wrong == []
    assert _native.hypot_exact(3.0, 4.0) == 5.0
    assert _native.hypot_exact(math.inf, math.nan) == math.inf
    assert math.isnan(_native.hypot_exact(1.0, math.nan))


def test_rendering_in_pieces_gives_the_same_bytes_on_real_heads(
    heads: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget that bounds memory renders a drawing in pieces: a union of unions is the
    same union, so even pieces of a few points and two strokes change no byte."""
    from pipeline.formats import render

    drawings = [d for lines in simplified_heads(heads).values() for d in lines[:12]]
    whole = render_bitmaps(drawings)
    monkeypatch.setattr(render, "_BUDGET", 300)
    monkeypatch.setattr(render, "_MAX_STROKES", 2)
    assert np.array_equal(render_bitmaps(drawings), whole)


LONG_DRAWING = """
from pathlib import Path
from pipeline.formats.render import render_bitmap
n = 125_000  # a 1 MB simplified line: one long stroke, then 60,000 dots
strokes = [[[i % 256 for i in range(n)], [i % 251 for i in range(n)]]]
strokes += [[[i % 256], [i % 241]] for i in range(60_000)]
assert render_bitmap(strokes).max() == 255
status = Path("/proc/self/status").read_text()  # VmHWM: this program's peak, not its parent's
print(next(int(x.split()[1]) // 1024 for x in status.splitlines() if x.startswith("VmHWM")))
"""


def test_a_1_mb_drawing_renders_in_bounded_memory() -> None:
    """It took 0.85 GB (one stroke) and 2.4 GB (dots) before: now the usual ~100 MB."""
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", LONG_DRAWING], capture_output=True, text=True, check=True
    )
    assert int(run.stdout) < 200, f"peak {run.stdout.strip()} MB"
