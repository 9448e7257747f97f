"""The sample's strokes: read through the store's byte spans, equal to the drawings file's own
strokes (raw: Google's simplification, with times), in every format, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from conftest import ROOT, read_lines, write_category

from pipeline.errors import PipelineError
from pipeline.formats import binary
from pipeline.formats.render import render_bitmaps, simplify_strokes, simplify_strokes_timed
from pipeline.params import SampleParams
from pipeline.stages.join import run_join
from pipeline.stages.sample import run_sample

DEMO = ROOT / "data" / "demo"
DEMO_CATEGORIES = ("octopus", "cat", "fish", "flower", "house", "The Eiffel Tower")
HEAD_CATEGORIES = ("octopus", "cat", "The Eiffel Tower", "house", "airplane", "butterfly")


def complete_lines(path: Path) -> list[bytes]:
    """The lines that decode: the raw heads end with a line the byte-range download cut."""
    lines = []
    for line in read_lines(path):
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        lines.append(line)
    return lines


def drawings_of(lines: list[bytes]) -> list[list]:
    return [orjson.loads(line)["drawing"] for line in lines]


@pytest.fixture(scope="module")
def heads_layouts(tmp_path_factory: pytest.TempPathFactory, heads: Path) -> Path:
    """The real heads in Google's layout in all three formats: raw and simplified as Google
    wrote them, binary written from the simplified heads by pipeline.formats.binary's writer."""
    root = tmp_path_factory.mktemp("heads-layouts")
    for category in HEAD_CATEGORIES:
        for fmt in ("raw", "simplified"):
            lines = complete_lines(heads / fmt / f"{category}.ndjson")
            simplified = [simplify_strokes(d) for d in drawings_of(lines)] if fmt == "raw" else None
            bitmaps = render_bitmaps(simplified or drawings_of(lines)).reshape(len(lines), -1)
            write_category(root / fmt, fmt, category, lines, bitmaps)
        lines = complete_lines(heads / "simplified" / f"{category}.ndjson")
        records = []
        for line in lines:
            row = orjson.loads(line)
            records.append(
                binary.Record(
                    int(row["key_id"]),
                    row["countrycode"],
                    row["recognized"],
                    1_488_000_000 + len(records),
                    [(xs, ys) for xs, ys in row["drawing"]],
                )
            )
        (root / "binary" / "binary").mkdir(parents=True, exist_ok=True)
        shutil.copytree(
            root / "simplified" / "numpy_bitmap",
            root / "binary" / "numpy_bitmap",
            dirs_exist_ok=True,
        )
        binary.write_binary(root / "binary" / "binary" / f"{category}.bin", records)
    return root


def sample_from(raw: Path, fmt: str, categories: tuple, tmp_path: Path, n: int, **params):
    store = tmp_path / f"processed-{fmt}"
    run_join(raw, fmt, categories, store, tmp_path / f"join-{fmt}.json", verify_sample=0)
    out = tmp_path / f"sample-{fmt}.parquet"
    sample = run_sample(store, categories, SampleParams(n=n, seed=3, **params), out, raw, fmt)
    assert pq.read_table(out).equals(sample)
    return sample


def expected_strokes(raw: Path, fmt: str, category: str, position: int) -> list:
    """The drawing at a position, read independently of the store's byte spans."""
    if fmt == "binary":
        data = (raw / "binary" / f"{category}.bin").read_bytes()
        offset = list(binary.spans(data, Path(category)))[position][0]
        return binary.read_strokes(data, offset)
    drawing = orjson.loads(read_lines(raw / fmt / f"{category}.ndjson")[position])["drawing"]
    return [s.tolist() for s in simplify_strokes(drawing)] if fmt == "raw" else drawing


def split(row: dict) -> list[list[list[int]]]:
    """A sample row's strokes as [[xs, ys], ...]."""
    starts = [0, *row["stroke_ends"][:-1]]
    return [
        [row["xs"][a:b], row["ys"][a:b]] for a, b in zip(starts, row["stroke_ends"], strict=True)
    ]


def assert_strokes_match(sample, raw: Path, fmt: str) -> None:
    for row in sample.to_pylist():
        assert split(row) == expected_strokes(raw, fmt, row["category"], row["position"])
        if fmt != "raw":
            assert row["ts"] is None
            continue
        ts = np.asarray(row["ts"])
        assert len(ts) == len(row["xs"]) and ts[0] == 0
        assert (np.diff(ts) >= 0).all()


@pytest.mark.parametrize("fmt", ["raw", "simplified", "binary"])
def test_demo_sample_strokes_equal_the_files(fmt, tmp_path):
    sample = sample_from(DEMO, fmt, DEMO_CATEGORIES, tmp_path, n=200)
    assert len(sample) == 200
    assert_strokes_match(sample, DEMO, fmt)


@pytest.mark.parametrize("fmt", ["raw", "simplified", "binary"])
def test_real_heads_sample_strokes_equal_the_files(fmt, heads_layouts, tmp_path):
    raw = heads_layouts / fmt
    sample = sample_from(raw, fmt, HEAD_CATEGORIES, tmp_path, n=100)
    assert_strokes_match(sample, raw, fmt)


def test_raw_and_simplified_samples_show_the_same_drawings(heads_layouts, tmp_path):
    """The same seed picks the same key_ids; raw simplified by us mostly equals Google's."""
    raw = sample_from(heads_layouts / "raw", "raw", ("cat",), tmp_path, n=20)
    simplified = sample_from(heads_layouts / "simplified", "simplified", ("cat",), tmp_path, n=20)
    assert raw["key_id"].equals(simplified["key_id"])
    same = sum(
        a == b for a, b in zip(raw["xs"].to_pylist(), simplified["xs"].to_pylist(), strict=True)
    )
    assert same >= 15


def test_timed_simplification_keeps_simplify_strokes_coordinates(heads):
    compared = 0
    for path in sorted((heads / "raw").glob("*.ndjson")):
        for drawing in drawings_of(complete_lines(path)):
            timed = simplify_strokes_timed(drawing)
            plain = simplify_strokes(drawing)
            assert [s[:2].tolist() for s in timed] == [s.tolist() for s in plain]
            ts = np.concatenate([s[2] for s in timed])
            assert ts[0] == 0 and (np.diff(ts) >= 0).all()
            assert ts[-1] <= drawing[-1][2][-1] - drawing[0][2][0]
            compared += 1
    assert compared > 2000


def test_times_follow_the_kept_points():
    # A corner drawn in 300 ms (its raw points one ms apart per unit, then slower), and a dot:
    # RDP keeps the ends and the corner, each with its time since the first point.
    corner = [[0, 5, 10, 10], [0, 0, 0, 10], [1000, 1050, 1100, 1300]]
    (kept, dot) = simplify_strokes_timed([corner, [[5], [5], [1500]]])
    assert kept.tolist() == [[0, 255, 255], [0, 0, 255], [0, 100, 300]]
    assert dot.tolist() == [[128, 128], [128, 128], [500, 500]]  # a dot: one point, twice


def test_a_missing_drawings_file_says_to_download(tmp_path, heads_layouts):
    raw = Path(shutil.copytree(heads_layouts / "simplified", tmp_path / "raw"))
    store = tmp_path / "processed"
    run_join(raw, "simplified", ("cat",), store, tmp_path / "join.json", verify_sample=0)
    (raw / "simplified" / "cat.ndjson").unlink()
    with pytest.raises(
        PipelineError,
        match=r"simplified/cat\.ndjson: not found; .*download stage \(dvc repro\)",
    ):
        run_sample(
            store, ("cat",), SampleParams(n=5, seed=1), tmp_path / "s.parquet", raw, "simplified"
        )
    assert not (tmp_path / "s.parquet").exists()


@pytest.mark.parametrize("fmt", ["raw", "binary"])
def test_a_line_that_no_longer_decodes_is_named(fmt, tmp_path, heads_layouts):
    raw = Path(shutil.copytree(heads_layouts / fmt, tmp_path / "raw"))
    store = tmp_path / "processed"
    run_join(raw, fmt, ("cat",), store, tmp_path / "join.json", verify_sample=0)
    params = SampleParams(n=5, seed=1)
    first = run_sample(store, ("cat",), params, tmp_path / "s.parquet", raw, fmt).slice(0, 1)
    position = first["position"][0].as_py()
    span = pq.read_table(store).slice(position, 1).to_pylist()[0]
    path = raw / fmt / f"cat.{'bin' if fmt == 'binary' else 'ndjson'}"
    data = bytearray(path.read_bytes())
    data[span["byte_offset"]] ^= 0x55  # the key_id's first byte (binary), the "{" (ndjson)
    path.write_bytes(bytes(data))
    unit = "record" if fmt == "binary" else "line"
    with pytest.raises(
        PipelineError,
        match=rf"cat\.\w+: {unit} {position + 1} \(byte offset {span['byte_offset']}\): "
        r".*re-run the join",
    ):
        run_sample(store, ("cat",), params, tmp_path / "t.parquet", raw, fmt)
    assert not (tmp_path / "t.parquet").exists()


@pytest.mark.parametrize(
    ("strokes", "error"),
    [
        ([[[1, 2], [3]]], "differ in length"),
        ([[[1, 2], ["3", 4]]], "must be real number"),
        ([[[1, 2]]], "must hold 2 lists"),
        ([7], "a stroke must be a list"),
    ],
)
def test_simplification_rejects_what_is_not_a_drawing(strokes, error):
    with pytest.raises((TypeError, ValueError), match=error):
        simplify_strokes(strokes)
