"""Google's compact binary format: our writer, the join reading it, and its refusals."""

from __future__ import annotations

import calendar
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from conftest import read_lines, rendered_bitmaps

from pipeline.download import download_category
from pipeline.errors import PipelineError
from pipeline.formats import binary
from pipeline.stages.join import run_join
from pipeline.store import layout


def records_from(lines: list[bytes]) -> list[binary.Record]:
    """The simplified heads as binary records (Google's .bin keeps whole seconds)."""
    records = []
    for line in lines:
        record = orjson.loads(line)
        moment = datetime.strptime(record["timestamp"][:19], "%Y-%m-%d %H:%M:%S")
        records.append(
            binary.Record(
                key_id=int(record["key_id"]),
                countrycode=record["countrycode"],
                recognized=record["recognized"],
                timestamp=calendar.timegm(moment.timetuple()),
                strokes=[(stroke[0], stroke[1]) for stroke in record["drawing"]],
            )
        )
    return records


@pytest.fixture
def binary_layout(tmp_path: Path, heads: Path) -> tuple[Path, list[bytes]]:
    root = tmp_path / "source"
    lines = read_lines(heads / "simplified" / "The Eiffel Tower.ndjson")
    (root / "numpy_bitmap").mkdir(parents=True)
    np.save(root / "numpy_bitmap" / "The Eiffel Tower.npy", rendered_bitmaps(lines))
    binary.write_binary(root / "binary" / "The Eiffel Tower.bin", records_from(lines))
    return root, lines


def test_writer_round_trip(heads):
    lines = read_lines(heads / "simplified" / "cat.ndjson")
    records = records_from(lines)
    data = b"".join(binary.encode(r) for r in records)
    spans = list(binary.spans(data, Path("cat.bin")))
    assert len(spans) == len(records)
    for (offset, _, strokes, points), record in zip(spans, records, strict=True):
        assert binary.read_strokes(data, offset) == [[list(x), list(y)] for x, y in record.strokes]
        assert strokes == len(record.strokes)
        assert points == sum(len(x) for x, _ in record.strokes)
    # far smaller than the same drawings as simplified ndjson
    assert len(data) * 3 < sum(len(line) for line in lines)


def test_join_reads_binary(binary_layout, tmp_path):
    root, lines = binary_layout
    raw = tmp_path / "raw"
    manifest = download_category(str(root), "binary", "The Eiffel Tower", raw)
    assert manifest["files"]["binary/The Eiffel Tower.bin"]["drawings"] == len(lines)
    out = tmp_path / "processed"
    summary = run_join(raw, "binary", ("The Eiffel Tower",), out, tmp_path / "join.json")
    assert summary["categories"]["The Eiffel Tower"]["alignment"]["agreement"] == 1.0
    table = pq.read_table(layout.partition_dir(out, "The Eiffel Tower") / "part-0.parquet")
    expected = [orjson.loads(line) for line in lines]
    assert table["key_id"].to_pylist() == [int(r["key_id"]) for r in expected]
    assert table["countrycode"].to_pylist() == [r["countrycode"] for r in expected]
    assert table["recognized"].to_pylist() == [r["recognized"] for r in expected]
    assert [t.strftime("%Y-%m-%d %H:%M:%S") for t in table["timestamp"].to_pylist()] == [
        r["timestamp"][:19] for r in expected
    ]
    assert table["strokes"].to_pylist() == [len(r["drawing"]) for r in expected]
    assert set(table["word"].to_pylist()) == {"The Eiffel Tower"}


def test_limit_cuts_binary_at_a_record(binary_layout, tmp_path):
    root, _ = binary_layout
    raw = tmp_path / "raw"
    manifest = download_category(str(root), "binary", "The Eiffel Tower", raw, limit=5)
    entry = manifest["files"]["binary/The Eiffel Tower.bin"]
    assert entry["drawings"] == 5
    data = (raw / "binary" / "The Eiffel Tower.bin").read_bytes()
    assert entry["size"] == len(data)
    assert len(list(binary.spans(data, Path("x")))) == 5
    summary = run_join(raw, "binary", ("The Eiffel Tower",), tmp_path / "p", tmp_path / "j.json")
    assert summary["drawings"] == 5


def test_truncated_binary_names_the_record(binary_layout, tmp_path):
    root, lines = binary_layout
    path = root / "binary" / "The Eiffel Tower.bin"
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    raw = tmp_path / "raw"
    (raw / "binary").mkdir(parents=True)
    (raw / "numpy_bitmap").mkdir(parents=True)
    (raw / "binary" / path.name).write_bytes(path.read_bytes())
    npy = "The Eiffel Tower.npy"
    (raw / "numpy_bitmap" / npy).write_bytes((root / "numpy_bitmap" / npy).read_bytes())
    last_offset = list(binary.spans(data, path))[-1][0]
    with pytest.raises(PipelineError, match=rf"record {len(lines)} \(byte offset {last_offset}\)"):
        run_join(raw, "binary", ("The Eiffel Tower",), tmp_path / "p", tmp_path / "j.json")
    assert not [path for path in (tmp_path / "p").rglob("*") if path.is_file()]
