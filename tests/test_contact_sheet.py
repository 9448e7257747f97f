"""The PNG contact sheet: drawings grouped by country, exact pixels, identical bytes."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
from PIL import Image

from pipeline import contact_sheet
from pipeline.reportkit.drawings import from_sample
from pipeline.schema import SAMPLE


def sample_of(countries: list[str], categories: list[str]) -> pa.Table:
    count = len(countries)
    bitmaps = np.zeros((count, 784), np.uint8)
    bitmaps[np.arange(count), np.arange(count) * 7 % 784] = 255  # one ink pixel each
    return pa.table(
        {
            "key_id": pa.array(range(1, count + 1), pa.uint64()),
            "category": categories,
            "countrycode": countries,
            "recognized": [True] * count,
            "timestamp": pa.array([0] * count, pa.timestamp("us", tz="UTC")),
            "bitmap": pa.array([b.tobytes() for b in bitmaps], pa.binary(784)),
            "position": list(range(count)),
            "xs": [[0, 255]] * count,
            "ys": [[0, 255]] * count,
            "stroke_ends": [[2]] * count,
            "ts": [None] * count,
        },
        schema=SAMPLE,
    )


def test_groups_take_categories_in_turn():
    sample = sample_of(["US"] * 6, ["cat", "cat", "cat", "fish", "fish", "owl"])
    drawings = from_sample(sample, ("cat", "fish", "owl"), top=3)
    assert contact_sheet.pick(drawings, 0, 4).tolist() == [0, 3, 5, 1]


def test_sheet_shows_each_drawing_dark_on_white_in_its_country_row():
    sample = sample_of(["US", "GB", "US", "FR"], ["cat"] * 4)
    drawings = from_sample(sample, ("cat",), top=1)  # US, then other (GB, FR)
    image = contact_sheet.render(drawings, ["#1f77b4", "#b0b0b0"], ["heading"], per_group=3)
    assert image.size[1] == (
        contact_sheet.MARGIN * 2
        + contact_sheet.LINE_HEIGHT
        + contact_sheet.GAP
        + 2 * contact_sheet.ROW_HEIGHT
    )
    pixels = np.asarray(image.convert("L"))
    top = contact_sheet.MARGIN + contact_sheet.LINE_HEIGHT + contact_sheet.GAP
    step = contact_sheet.SIDE * contact_sheet.SCALE + contact_sheet.GAP
    for row, members in enumerate([[0, 2], [1, 3]]):
        for slot, index in enumerate(members):
            x = contact_sheet.MARGIN + contact_sheet.LABEL_WIDTH + slot * step
            y = top + row * contact_sheet.ROW_HEIGHT
            tile = pixels[y : y + 56 : 2, x : x + 56 : 2]
            np.testing.assert_array_equal(tile, 255 - drawings.bitmaps[index])


def test_png_has_no_metadata_and_identical_bytes():
    drawings = from_sample(sample_of(["US", "GB"], ["cat", "cat"]), ("cat",), top=2)
    first = contact_sheet.png_bytes(contact_sheet.render(drawings, ["#000", "#111"], ["x"]))
    again = contact_sheet.png_bytes(contact_sheet.render(drawings, ["#000", "#111"], ["x"]))
    assert first == again
    assert Image.open(io.BytesIO(first)).info == {}
