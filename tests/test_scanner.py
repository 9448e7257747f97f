"""The compiled scanner (pipeline/native/_native.c) against the complete decoder, line by line.

The scanner may hand any line to the decoder, but a line it accepts must be one the decoder
accepts too, with the same values: checked on real lines, every prefix of them, and thousands
of seeded mutations of them.
"""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from conftest import read_lines

from pipeline.formats.drawings import decode_line
from pipeline.native import _native

FORMATS = {"raw": 3, "simplified": 2}
#: Bytes that matter to JSON or to the scanner, as replacements and insertions.
SIGNIFICANT = b'0123456789,[]{}":-+.eE tfn\\\n'


def scanned(line: bytes, lists: int) -> dict | None:
    """What the scanner reads from one line, or None when it hands the line to the decoder."""
    columns = _native.scan_lines(line, 0, len(line), lists)
    if columns[7] != b"\x01":  # one line, in Google's shape
        return None
    value = {
        name: np.frombuffer(columns[index], dtype)[0].item()
        for index, (name, dtype) in enumerate(
            [
                ("start", np.int64),
                ("length", np.int32),
                ("strokes", np.int32),
                ("points", np.int32),
                ("duration", np.int64),
                ("recognized", np.uint8),
                ("key_id", np.uint64),
                ("shaped", np.uint8),
                ("area", np.float64),
            ]
        )
    }
    del value["shaped"]
    for name, ends, data in (("word", 9, 12), ("countrycode", 10, 13), ("timestamp", 11, 14)):
        end = np.frombuffer(columns[ends], np.int32)[1]
        value[name] = columns[data][:end].decode("utf-8")
    return value


def decoded(line: bytes, lists: int) -> dict | None:
    """What the decoder reads from one line, or None when it rejects the line."""
    try:
        record, strokes, points, duration, area = decode_line(line, lists)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
    return {
        "start": 0,
        "length": len(line),
        "strokes": strokes,
        "points": points,
        "duration": duration if lists == 3 else 0,
        "recognized": int(record["recognized"]),
        "key_id": int(record["key_id"]),
        "area": area,
        "word": record["word"],
        "countrycode": record["countrycode"],
        "timestamp": record["timestamp"],
    }


@pytest.fixture(params=sorted(FORMATS))
def real_lines(request, heads) -> tuple[list[bytes], int]:
    lines = [
        line
        for path in sorted((heads / request.param).glob("*.ndjson"))
        for line in read_lines(path)
    ]
    return lines, FORMATS[request.param]


def test_real_lines_read_the_same(real_lines):
    lines, lists = real_lines
    for line in lines:
        assert scanned(line, lists) == decoded(line, lists) is not None, line[:80]


def test_no_prefix_of_a_line_is_accepted(real_lines):
    """A truncated line is never taken as a drawing (and the scanner reads no byte past it)."""
    lines, lists = real_lines
    for line in lines[:: max(1, len(lines) // 20)]:
        for cut in range(len(line)):
            assert scanned(line[:cut], lists) is None, (cut, line[:cut][-40:])


def mutate(line: bytes, rng: np.random.Generator) -> bytes:
    """One seeded edit: a byte replaced, deleted, doubled or inserted."""
    at = int(rng.integers(len(line)))
    byte = SIGNIFICANT[int(rng.integers(len(SIGNIFICANT)))].to_bytes(1, "little")
    edit = int(rng.integers(4))
    if edit == 0:
        return line[:at] + byte + line[at + 1 :]
    if edit == 1:
        return line[:at] + line[at + 1 :]
    if edit == 2:
        return line[: at + 1] + line[at:]
    return line[:at] + byte + line[at:]


def test_mutated_lines_are_accepted_only_as_the_decoder_reads_them(real_lines):
    lines, lists = real_lines
    rng = np.random.default_rng(2017)
    accepted = rejected = 0
    for _ in range(6000):
        line = mutate(lines[int(rng.integers(len(lines)))], rng)
        found = scanned(line, lists)
        if found is None:
            rejected += 1
            continue
        accepted += 1
        assert found == decoded(line, lists), line
    # Both verdicts were exercised: most edits of a digit keep a valid line, most others do not.
    assert accepted > 1000 and rejected > 1000, (accepted, rejected)
