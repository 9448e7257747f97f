"""The PNG contact sheet: drawings grouped by country, drawn from their strokes, identical bytes."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
from PIL import Image

from pipeline.formats.render import render_bitmap
from pipeline.formats.strokes import Strokes
from pipeline.formats.verify import correlations
from pipeline.reportkit import contact_sheet
from pipeline.reportkit.drawings import from_sample
from pipeline.store.schema import SAMPLE

# Four unlike drawings, [[xs, ys], ...] aligned to 0 like Google's simplified ones: a bar, a
# post, an L and a triangle with a dot.
SHAPES = [
    [[[0, 255], [0, 0]]],
    [[[0, 0], [0, 255]]],
    [[[0, 0, 200], [0, 255, 255]]],
    [[[0, 255, 128, 0], [255, 255, 0, 255]], [[128, 128], [180, 180]]],
]


def sample_of(countries: list[str], categories: list[str]) -> pa.Table:
    count = len(countries)
    drawings = [SHAPES[i % len(SHAPES)] for i in range(count)]
    return pa.table(
        {
            "key_id": pa.array(range(1, count + 1), pa.uint64()),
            "category": categories,
            "countrycode": countries,
            "recognized": [True] * count,
            "timestamp": pa.array([0] * count, pa.timestamp("us", tz="UTC")),
            "bitmap": [render_bitmap(d).tobytes() for d in drawings],
            "position": list(range(count)),
            "xs": [[x for xs, _ in d for x in xs] for d in drawings],
            "ys": [[y for _, ys in d for y in ys] for d in drawings],
            "stroke_ends": [np.cumsum([len(xs) for xs, _ in d]).tolist() for d in drawings],
            "ts": [None] * count,
        },
        schema=SAMPLE,
    )


def sheet_of(sample: pa.Table, categories: tuple, top: int, **options) -> tuple:
    drawings = from_sample(sample, categories, top=top)
    strokes = Strokes.from_sample(sample)
    colours = ["#1f77b4", "#b0b0b0", "#ff7f0e"][: len(drawings.groups)]
    return drawings, contact_sheet.render(drawings, strokes, colours, ["heading"], **options)


def cell(pixels: np.ndarray, row: int, slot: int) -> np.ndarray:
    top = contact_sheet.MARGIN + contact_sheet.LINE_HEIGHT + contact_sheet.GAP
    x = contact_sheet.MARGIN + contact_sheet.LABEL_WIDTH + slot * (contact_sheet.CELL + 4)
    y = top + row * contact_sheet.ROW_HEIGHT
    return pixels[y : y + contact_sheet.CELL, x : x + contact_sheet.CELL]


def test_groups_take_categories_in_turn():
    sample = sample_of(["US"] * 6, ["cat", "cat", "cat", "fish", "fish", "owl"])
    drawings = from_sample(sample, ("cat", "fish", "owl"), top=3)
    assert contact_sheet.pick(drawings, 0, 4).tolist() == [0, 3, 5, 1]


def test_strokes_come_back_per_drawing_even_from_a_slice():
    strokes = Strokes.from_sample(sample_of(["US"] * 6, ["cat"] * 6).slice(2, 4))
    assert [s.tolist() for s in strokes.of(1)] == SHAPES[3]
    assert [s.tolist() for s in strokes.of(3)] == SHAPES[1]


def test_each_drawing_is_drawn_from_its_strokes_in_its_country_row():
    sample = sample_of(["US", "GB", "US", "FR"], ["cat"] * 4)
    drawings, image = sheet_of(sample, ("cat",), top=1, per_group=3)  # US, then other (GB, FR)
    assert image.size[1] == (
        contact_sheet.MARGIN * 2
        + contact_sheet.LINE_HEIGHT
        + contact_sheet.GAP
        + 2 * contact_sheet.ROW_HEIGHT
    )
    pixels = np.asarray(image.convert("L"))
    cells = [cell(pixels, row, slot) for row, slot in [(0, 0), (1, 0), (0, 1), (1, 1)]]
    # Averaged down to 28x28, each cell looks like Google's bitmap of its own strokes (the
    # same centring, a similar pen) and unlike the other drawings'.
    small = np.stack(
        [np.asarray(Image.fromarray(255 - c).resize((28, 28), Image.Resampling.BOX)) for c in cells]
    )
    for index in range(4):
        scores = correlations(np.repeat(small[index : index + 1], 4, axis=0), drawings.bitmaps)
        assert scores[index] > 0.9, scores
        assert scores.argmax() == index, scores


def test_lines_are_crisp_and_antialiased():
    sample = sample_of(["US"], ["cat"])  # the bar
    _, image = sheet_of(sample, ("cat",), top=1)
    bar = 255 - cell(np.asarray(image.convert("L")), 0, 0).astype(int)
    profile = bar[:, contact_sheet.CELL // 2]  # down through the middle of the bar
    assert (profile > 128).sum() <= 2  # under 2 px of solid ink (the 28x28 bitmap: 1.5 of 28)
    assert 1 <= ((profile > 0) & (profile < 200)).sum() <= 4  # soft edges, not a blur
    columns = np.flatnonzero(bar.max(axis=0) > 128)
    assert columns.min() <= contact_sheet.INSET + 1  # the bar spans the cell, inset and all
    assert columns.max() >= contact_sheet.CELL - contact_sheet.INSET - 2


def test_png_has_no_metadata_and_identical_bytes():
    sample = sample_of(["US", "GB"], ["cat", "cat"])
    first = contact_sheet.png_bytes(sheet_of(sample, ("cat",), top=2)[1])
    again = contact_sheet.png_bytes(sheet_of(sample, ("cat",), top=2)[1])
    assert first == again
    assert Image.open(io.BytesIO(first)).info == {}
