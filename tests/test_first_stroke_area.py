"""The store's `first_stroke_area`: the shoelace area of each drawing's first stroke.

Known directions in every format (the compiled scanner, the decoder and the .bin reader give
the same value), the numbers of every shape the scanner reads itself, and the real circles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from conftest import read_lines
from test_binary import records_from

from pipeline.formats import binary
from pipeline.formats.drawings import decode_line, first_stroke_area, parse_range
from pipeline.native import _native
from pipeline.stages.join import read_binary, run_join
from pipeline.store import layout

#: A 10x10 square, then the same square the other way round; in screen coordinates (y down)
#: right-then-down is clockwise.
CLOCKWISE = ([0, 10, 10, 0], [0, 0, 10, 10])
COUNTERCLOCKWISE = ([0, 0, 10, 10], [0, 10, 10, 0])
#: (first stroke, its signed area): squares both ways and from another starting point, a
#: triangle, a line and a dot (no direction), an unclosed stroke (the closing edge counts).
KNOWN = [
    (CLOCKWISE, 100.0),
    (COUNTERCLOCKWISE, -100.0),
    (([10, 10, 0, 0], [0, 10, 10, 0]), 100.0),
    (([0, 10, 0], [0, 0, 20]), 100.0),
    (([0, 0, 10], [0, 20, 0]), -100.0),
    (([0, 50], [0, 50]), 0.0),
    (([7], [9]), 0.0),
    (([0, 30, 30], [0, 0, 30]), 450.0),
]
SECOND_STROKE = [[200, 250, 200], [200, 200, 250]]  # counterclockwise: must not count


def ndjson_line(stroke: tuple[list, list], key_id: int, raw: bool) -> bytes:
    drawing = [list(stroke), SECOND_STROKE]
    if raw:
        drawing = [[*s, list(range(0, 10 * len(s[0]), 10))] for s in drawing]
    record = {
        "word": "square",
        "countrycode": "JP",
        "timestamp": "2017-03-05 10:52:22.31485 UTC",
        "recognized": True,
        "key_id": str(key_id),
        "drawing": drawing,
    }
    return orjson.dumps(record)


def areas_of(path: Path, raw: bool, compiled: bool) -> list[float]:
    table = parse_range(path, 0, path.stat().st_size, raw, compiled)
    assert not isinstance(table, Exception), table
    return table["first_stroke_area"].to_pylist()


@pytest.mark.parametrize("drawings", ["raw", "simplified"])
@pytest.mark.parametrize("compiled", [True, False], ids=["scanner", "decoder"])
def test_known_directions_in_ndjson(tmp_path, drawings, compiled):
    raw = drawings == "raw"
    path = tmp_path / "square.ndjson"
    lines = [ndjson_line(stroke, number + 1, raw) for number, (stroke, _) in enumerate(KNOWN)]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert areas_of(path, raw, compiled) == [area for _, area in KNOWN]
    if compiled:  # the scanner read them all itself (the decoder did not step in)
        shaped = _native.scan_lines(path.read_bytes(), 0, path.stat().st_size, 3 if raw else 2)[7]
        assert shaped == b"\x01" * len(KNOWN)


def test_known_directions_in_binary(tmp_path):
    records = [
        binary.Record(number + 1, "JP", True, 1488711142, [stroke, tuple(SECOND_STROKE)])
        for number, (stroke, _) in enumerate(KNOWN)
    ]
    records.append(binary.Record(99, "JP", False, 1488711142, []))  # no strokes: no direction
    path = tmp_path / "square.bin"
    binary.write_binary(path, records)
    areas = read_binary(path, "square")["first_stroke_area"].to_pylist()
    assert areas == [area for _, area in KNOWN] + [0.0]


def test_both_orders_and_any_start_flip_only_the_sign():
    rng = np.random.default_rng(12)
    for _ in range(200):
        count = int(rng.integers(3, 40))
        xs, ys = (rng.integers(0, 256, count).tolist() for _ in "xy")
        area = first_stroke_area(xs, ys)
        assert first_stroke_area(xs[::-1], ys[::-1]) == -area
        turn = int(rng.integers(len(xs)))
        assert first_stroke_area(xs[turn:] + xs[:turn], ys[turn:] + ys[:turn]) == area
        # an independent formula: numpy's shoelace over the closed polygon
        x, y = np.array(xs, float), np.array(ys, float)
        assert area == 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


#: Number texts the scanner reads itself: integers, fractions, the float32-as-double values
#: Google's raw files hold (17 significant digits, past the fast path), -0, long integers.
NUMBER_SHAPES = [
    lambda rng: str(int(rng.integers(-2000, 2000))),
    lambda rng: f"{rng.uniform(-500, 1500):.{int(rng.integers(1, 6))}f}",
    lambda rng: repr(float(np.float32(rng.uniform(0, 1500)))),
    lambda rng: repr(rng.uniform(0, 1500)),
    lambda rng: "-0" if rng.integers(2) else "-0.0",
    lambda rng: str(int(rng.integers(10**15, 10**18))),
    lambda rng: "0." + "0" * int(rng.integers(0, 20)) + str(int(rng.integers(1, 10**6))),
]


def test_numbers_of_every_shape_read_as_the_decoder_reads_them():
    rng = np.random.default_rng(2017)
    for _ in range(3000):
        count = int(rng.integers(1, 30))
        texts = [
            [NUMBER_SHAPES[int(rng.integers(len(NUMBER_SHAPES)))](rng) for _ in range(count)]
            for _ in "xy"
        ]
        texts.append([str(time) for time in range(count)])
        stroke = b"[" + b",".join(f"[{','.join(t)}]".encode() for t in texts) + b"]"
        line = (
            b'{"word":"circle","countrycode":"JP","timestamp":"2017-03-05 10:52:22.31485 UTC",'
            b'"recognized":true,"key_id":"1","drawing":[' + stroke + b",[[1,2],[3,4],[5,6]]]}"
        )
        columns = _native.scan_lines(line, 0, len(line), 3)  # raw: coordinates any number
        assert columns[7] == b"\x01", line  # read by the scanner, not handed on
        scanned = np.frombuffer(columns[8], np.float64)[0]
        assert scanned == decode_line(line, 3)[4], line


#: Numbers exactly halfway between two doubles (the scanner's fast paths must hand them to
#: strtod, which rounds them to even), and others at the edges of those paths.
EDGE_NUMBERS = [
    "9007199254740993",  # 2**53 + 1
    "9007199254740995",
    "4503599627370496.5",  # 2**52 + 1/2
    "18446744073709551615",  # 2**64 - 1: 20 digits, strtod
    "999999999999999",  # 15 digits: exact
    "9999999999999999",  # 16 digits: rounds
    "0.1000000000000000055511151231257827",
    "1234567890123456789",  # 19 digits
    "33.507999420166016",
    "0.000000000000000001",
    "-0",
    "123" + "0" * 50,
    # rounded to 64 bits these land exactly halfway, so rounding that to 53 would err
    "15.88684767050209512",
    "6.865072764486015",
    "1411920.805029960",
    "30.20597042135193",
]


@pytest.mark.parametrize("text", EDGE_NUMBERS)
def test_numbers_read_exactly_as_python_reads_them(text):
    """A triangle (v, 0), (0, 1), (0, 0) has area v / 2: the area shows the value read (a raw
    stroke: simplified coordinates are integers in 0..255)."""
    line = (
        b'{"word":"circle","countrycode":"JP","timestamp":"2017-03-05 10:52:22.31485 UTC",'
        b'"recognized":true,"key_id":"1","drawing":[[['
        + text.encode()
        + b",0,0],[0,1,0],[0,1,2]]]}"
    )
    columns = _native.scan_lines(line, 0, len(line), 3)
    assert columns[7] == b"\x01"
    assert np.frombuffer(columns[8], np.float64)[0] == float(text) / 2
    assert decode_line(line, 3)[4] == float(text) / 2


def test_decoder_refuses_a_first_stroke_that_is_not_numbers():
    line = (
        b'{"word":"circle","countrycode":"JP","timestamp":"2017-03-05 10:52:22.31485 UTC",'
        b'"recognized":true,"key_id":"1","drawing":[[["1",2],[3,4],[0,1]]]}'
    )
    with pytest.raises(ValueError, match="not a number"):
        decode_line(line, 3)


def test_real_heads_read_the_same_in_all_three_formats(tmp_path, heads):
    """The simplified heads, as ndjson (scanner and decoder) and as Google's .bin records."""
    for path in sorted((heads / "simplified").glob("*.ndjson")):
        scanned = areas_of(path, False, compiled=True)
        assert scanned == areas_of(path, False, compiled=False), path.name
        bin_path = tmp_path / f"{path.stem}.bin"
        binary.write_binary(bin_path, records_from(read_lines(path)))
        assert read_binary(bin_path, path.stem)["first_stroke_area"].to_pylist() == scanned
    for path in sorted((heads / "raw").glob("*.ndjson")):
        assert areas_of(path, True, compiled=True) == areas_of(path, True, compiled=False)


def test_real_circles(heads):
    """Every real circle is one round first stroke: a non-zero area near pi/4 of its bounding
    box (0.69 to 0.86 in the heads), the same direction in raw and simplified."""
    directions = {}
    for drawings in ("raw", "simplified"):
        path = heads / drawings / "circle.ndjson"
        areas = areas_of(path, drawings == "raw", compiled=True)
        for line, area in zip(read_lines(path), areas, strict=True):
            record = orjson.loads(line)
            xs, ys = record["drawing"][0][:2]
            box = (max(xs) - min(xs)) * (max(ys) - min(ys))
            assert 0.5 < abs(area) / box < 1.0, record["key_id"]
            directions.setdefault(record["key_id"], set()).add(np.sign(area))
    assert len(directions) >= 25
    assert all(len(signs) == 1 for signs in directions.values())


def test_the_store_keeps_the_column(tmp_path, heads_layout):
    out = tmp_path / "processed"
    run_join(heads_layout, "simplified", ("circle", "house"), out, tmp_path / "join.json", 0)
    for category in ("circle", "house"):
        table = pq.read_table(layout.partition_dir(out, category) / "part-0.parquet")
        assert table.schema.field("first_stroke_area").type == "double"
        source = heads_layout / "simplified" / f"{category}.ndjson"
        assert table["first_stroke_area"].to_pylist() == areas_of(source, False, compiled=False)
