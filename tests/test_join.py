"""The join on real Quick, Draw! heads, and its refusals of malformed input."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ndjson
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import read_lines, rendered_bitmaps, small_filesystem, write_category

from pipeline.errors import PipelineError
from pipeline.formats.bitmaps import open_bitmaps
from pipeline.formats.render import render_bitmaps, simplify_strokes
from pipeline.stages.download import held_pieces
from pipeline.stages.join import (
    LINE_LIMIT,
    category_files,
    metadata_table,
    read_drawings,
    read_footer,
    run_join,
    write_partition,
)
from pipeline.store import layout, schema

CATEGORIES = ("octopus", "The Eiffel Tower", "cat")


def join(
    raw: Path, tmp_path: Path, drawings: str = "simplified", categories=CATEGORIES, compiled=True
):
    out = tmp_path / "processed" / "drawings"
    summary_path = tmp_path / "processed" / "join.json"
    summary = run_join(raw, drawings, tuple(categories), out, summary_path, compiled=compiled)
    return out, summary


@pytest.fixture(params=[False, True], ids=["decoder", "scanner"])
def compiled(request) -> bool:
    """Both ndjson parsers: the orjson decoder and the compiled scanner must agree exactly."""
    return request.param


def partition(out: Path, category: str) -> pa.Table:
    return pq.read_table(layout.partition_dir(out, category) / "part-0.parquet")


def test_join_real_heads_row_by_row(heads_layout, heads, tmp_path, compiled):
    out, summary = join(heads_layout, tmp_path, compiled=compiled)
    for category in CATEGORIES:
        source = heads / "simplified" / f"{category}.ndjson"
        lines = read_lines(source)
        table = partition(out, category)
        assert table.num_rows == len(lines) == summary["categories"][category]["drawings"]
        bitmaps = np.load(heads_layout / "numpy_bitmap" / f"{category}.npy")
        data = source.read_bytes()
        with source.open(encoding="utf-8") as handle:
            records = ndjson.load(handle)  # an independent reader (stdlib json) as the oracle
        for row, line, record in zip(table.to_pylist(), lines, records, strict=True):
            assert row["key_id"] == int(record["key_id"])
            assert row["word"] == category
            assert row["countrycode"] == record["countrycode"]
            assert row["recognized"] is record["recognized"]
            assert row["timestamp"].isoformat(sep=" ").startswith(record["timestamp"][:19])
            assert row["timestamp"].utcoffset().total_seconds() == 0
            assert row["bitmap"] == bitmaps[row["position"]].tobytes()
            assert data[row["byte_offset"] : row["byte_offset"] + row["byte_length"]] == line
            assert row["strokes"] == len(record["drawing"])
            assert row["points"] == sum(len(stroke[0]) for stroke in record["drawing"])
            assert row["duration_ms"] is None
    assert json.loads((tmp_path / "processed" / "join.json").read_text()) == summary
    assert summary["drawings"] == sum(
        len(read_lines(heads / "simplified" / f"{c}.ndjson")) for c in CATEGORIES
    )


def test_alignment_is_checked_and_recorded(heads_layout, tmp_path):
    _, summary = join(heads_layout, tmp_path)
    for category in CATEGORIES:
        alignment = summary["categories"][category]["alignment"]
        assert alignment["checked"] == 25  # every head drawing: fewer than the sample size
        assert alignment["agreement"] >= 0.95
    assert summary["alignment_agreement"] == min(
        summary["categories"][c]["alignment"]["agreement"] for c in CATEGORIES
    )


def test_shuffled_bitmaps_are_caught(heads, tmp_path, compiled):
    def shuffle(lines, bitmaps):
        return lines, np.random.default_rng(1).permutation(bitmaps)

    root = broken_layout(heads, tmp_path, shuffle)
    assert_fails_cleanly(
        root, tmp_path, "cat: the bitmaps do not show the drawings", "misaligned", compiled=compiled
    )


def test_bitmaps_off_by_one_are_caught(heads, tmp_path, compiled):
    def shift(lines, bitmaps):
        return lines, np.roll(bitmaps, 1, axis=0)

    root = broken_layout(heads, tmp_path, shift)
    assert_fails_cleanly(
        root, tmp_path, "do not show the drawings at the same positions", compiled=compiled
    )


def test_store_reads_as_hive_dataset_with_spaces_in_names(heads_layout, tmp_path):
    out, _ = join(heads_layout, tmp_path)
    dataset = ds.dataset(out, format="parquet", partitioning="hive")
    table = dataset.to_table(
        filter=ds.field("category") == "The Eiffel Tower", columns=["key_id", "category"]
    )
    assert table.num_rows > 0
    assert set(table["category"].to_pylist()) == {"The Eiffel Tower"}
    assert pa.types.is_uint64(dataset.schema.field("key_id").type)
    assert dataset.schema.field("bitmap").type == pa.binary(784)


def test_raw_heads_without_final_newline(heads, tmp_path, compiled):
    """Google's raw files, cut by a byte range, end without a newline: the join copes."""
    source = heads / "raw" / "octopus.ndjson"
    assert not source.read_bytes().endswith(b"\n")
    lines = read_lines(source)
    root = tmp_path / "raw"
    bitmaps = render_bitmaps([simplify_strokes(orjson.loads(x)["drawing"]) for x in lines])
    write_category(
        root, "raw", "octopus", lines, bitmaps.reshape(len(lines), -1), final_newline=False
    )
    out, summary = join(root, tmp_path, "raw", ["octopus"], compiled=compiled)
    # Raw strokes, simplified and rendered by us as Google did, match the bitmaps.
    assert summary["categories"]["octopus"]["alignment"]["agreement"] == 1.0
    assert summary["drawings"] == len(lines) > 10
    table = partition(out, "octopus")
    records = [orjson.loads(x) for x in lines]
    assert table["key_id"].to_pylist() == [int(r["key_id"]) for r in records]
    durations = [r["drawing"][-1][2][-1] - r["drawing"][0][2][0] for r in records]
    assert table["duration_ms"].to_pylist() == durations
    assert min(durations) > 0


def test_any_key_order_is_parsed(heads, tmp_path, compiled):
    lines = read_lines(heads / "simplified" / "fish.ndjson")[:5]
    shuffled = [orjson.dumps(dict(reversed(list(orjson.loads(x).items())))) for x in lines]
    assert shuffled[0].startswith(b'{"drawing"')
    root = tmp_path / "raw"
    write_category(root, "simplified", "fish", shuffled, rendered_bitmaps(lines))
    out, _ = join(root, tmp_path, categories=["fish"], compiled=compiled)
    assert partition(out, "fish")["key_id"].to_pylist() == [
        int(orjson.loads(x)["key_id"]) for x in lines
    ]


def test_lines_of_other_shapes_mix_with_googles(heads, tmp_path, compiled):
    """A few lines in another key order or with spaces go the slow way, in their place."""
    lines = read_lines(heads / "raw" / "cat.ndjson")
    records = [orjson.loads(x) for x in lines]
    mixed = list(lines)
    mixed[1] = orjson.dumps(dict(reversed(list(records[1].items()))))
    mixed[3] = json.dumps(records[3]).encode()  # ", " and ": " separators
    root = tmp_path / "raw"
    bitmaps = render_bitmaps([simplify_strokes(r["drawing"]) for r in records])
    write_category(root, "raw", "cat", mixed, bitmaps.reshape(len(lines), -1))
    out, _ = join(root, tmp_path, "raw", ["cat"], compiled=compiled)
    table = partition(out, "cat")
    assert table["key_id"].to_pylist() == [int(r["key_id"]) for r in records]
    assert table["points"].to_pylist() == [sum(len(s[0]) for s in r["drawing"]) for r in records]
    assert table["duration_ms"].to_pylist() == [
        int(r["drawing"][-1][2][-1] - r["drawing"][0][2][0]) for r in records
    ]
    assert table["byte_length"].to_pylist() == [len(x) for x in mixed]


def broken_layout(heads: Path, tmp_path: Path, damage) -> Path:
    lines = read_lines(heads / "simplified" / "cat.ndjson")
    bitmaps = rendered_bitmaps(lines)
    lines, bitmaps = damage(lines, bitmaps)
    root = tmp_path / "raw"
    write_category(root, "simplified", "cat", lines, bitmaps)
    return root


def assert_fails_cleanly(
    root: Path, tmp_path: Path, *fragments: str, compiled: bool = True
) -> None:
    with pytest.raises(PipelineError) as caught:
        join(root, tmp_path, categories=["cat"], compiled=compiled)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)
    store = tmp_path / "processed"
    leftovers = [p for p in store.rglob("*") if p.is_file()] if store.exists() else []
    assert leftovers == [], f"partial output left behind: {leftovers}"


def test_malformed_line_names_file_line_and_offset(heads, tmp_path, compiled):
    def truncate_line_7(lines, bitmaps):
        lines = list(lines)
        lines[6] = lines[6][: len(lines[6]) // 2]
        return lines, bitmaps

    root = broken_layout(heads, tmp_path, truncate_line_7)
    data = (root / "simplified" / "cat.ndjson").read_bytes()
    offset = sum(len(line) + 1 for line in data.split(b"\n")[:6])
    assert_fails_cleanly(
        root, tmp_path, "cat.ndjson", "line 7", f"byte offset {offset}", compiled=compiled
    )


def test_line_missing_a_key_is_rejected(heads, tmp_path, compiled):
    def drop_key(lines, bitmaps):
        record = orjson.loads(lines[2])
        del record["recognized"]
        return [*lines[:2], orjson.dumps(record), *lines[3:]], bitmaps

    root = broken_layout(heads, tmp_path, drop_key)
    assert_fails_cleanly(root, tmp_path, "line 3", "recognized", compiled=compiled)


def test_damaged_strokes_are_caught(heads, tmp_path, compiled):
    """A line whose header is intact but whose strokes are not is still refused."""

    def damage_stroke(lines, bitmaps):
        record = orjson.loads(lines[4])
        record["drawing"][0][1].pop()  # x and y of the first stroke now differ in length
        return [*lines[:4], orjson.dumps(record), *lines[5:]], bitmaps

    root = broken_layout(heads, tmp_path, damage_stroke)
    assert_fails_cleanly(
        root, tmp_path, "line 5", "stroke 0 has lists of different lengths", compiled=compiled
    )


def test_count_mismatch_names_both_counts(heads, tmp_path):
    root = broken_layout(heads, tmp_path, lambda lines, bitmaps: (lines, bitmaps[:-2]))
    lines = len(read_lines(heads / "simplified" / "cat.ndjson"))
    assert_fails_cleanly(root, tmp_path, f"{lines - 2} bitmaps", f"{lines} drawings")


def test_npy_of_wrong_shape(heads, tmp_path):
    root = broken_layout(
        heads, tmp_path, lambda lines, bitmaps: (lines, bitmaps.reshape(len(lines), 28, 28))
    )
    assert_fails_cleanly(root, tmp_path, "cat.npy", "28x28", "(25, 28, 28)")


def test_truncated_npy(heads, tmp_path):
    root = broken_layout(heads, tmp_path, lambda lines, bitmaps: (lines, bitmaps))
    npy = root / "numpy_bitmap" / "cat.npy"
    npy.write_bytes(npy.read_bytes()[:-100])
    assert_fails_cleanly(root, tmp_path, "cat.npy", "not a valid .npy")


def test_failure_keeps_the_previous_store(heads_layout, heads, tmp_path):
    out, _ = join(heads_layout, tmp_path, categories=["cat"])
    before = partition(out, "cat")
    ndjson = heads_layout / "simplified" / "cat.ndjson"
    ndjson.write_bytes(ndjson.read_bytes() + b'{"word": "cat", broken\n')
    with pytest.raises(PipelineError):
        join(heads_layout, tmp_path, categories=["cat"])
    assert partition(out, "cat").equals(before)
    assert sorted(p.name for p in out.parent.iterdir()) == ["drawings", "join.json"]


def test_limited_download_joins_into_consistent_rows(heads_layout, tmp_path):
    """`dataset.limit` cuts both files at the same drawing, so the join pairs them exactly."""
    from pipeline.download import download_category

    raw = tmp_path / "downloaded"
    download_category(str(heads_layout), "simplified", "The Eiffel Tower", raw, limit=7)
    out, summary = join(raw, tmp_path, categories=["The Eiffel Tower"])
    assert summary["drawings"] == 7
    table = partition(out, "The Eiffel Tower")
    full = np.load(heads_layout / "numpy_bitmap" / "The Eiffel Tower.npy")
    assert table["bitmap"].to_pylist() == [row.tobytes() for row in full[:7]]


def test_row_groups_carry_their_own_bitmaps(heads_layout, tmp_path):
    """The writer reads the npy one row group at a time: each group gets its own rows."""
    files = category_files(heads_layout, "simplified", "cat")
    bitmaps = open_bitmaps(files.bitmaps)
    with ThreadPoolExecutor(2) as pool:
        meta = metadata_table(files, read_drawings(files, pool))
    target = tmp_path / "part-0.parquet"
    summary = write_partition(target, bitmaps, meta, "record", lambda: {"drawings": 1}, 7)
    assert summary == {"drawings": 1}
    assert read_footer(target) == ("record", summary)
    written = pq.ParquetFile(target)
    assert written.num_row_groups == -(-len(bitmaps) // 7) > 2
    expected = [row.tobytes() for row in np.load(files.bitmaps)]
    assert written.read(columns=["bitmap"])["bitmap"].to_pylist() == expected
    assert written.read(columns=["position"])["position"].to_pylist() == list(range(len(expected)))


def test_numeric_columns_reach_numpy_at_their_offsets():
    """schema.to_numpy (which avoids pyarrow's pandas import) honours slices and chunks."""
    column = pa.chunked_array(
        [pa.array(np.arange(10, dtype=np.int64)).slice(3, 4), pa.array([100, 101], pa.int64())]
    )
    assert schema.to_numpy(column).tolist() == [3, 4, 5, 6, 100, 101]
    with pytest.raises(TypeError, match="without nulls"):
        schema.to_numpy(pa.array([1, None], pa.int64()))


@pytest.mark.parametrize("code", ["us", "U1", "USA", "", None, "É1"])
def test_a_countrycode_that_is_not_two_capitals_is_named(heads, tmp_path, compiled, code):
    def recode_line_4(lines, bitmaps):
        record = orjson.loads(lines[3])
        record["countrycode"] = code
        return [*lines[:3], orjson.dumps(record), *lines[4:]], bitmaps

    root = broken_layout(heads, tmp_path, recode_line_4)
    assert_fails_cleanly(
        root, tmp_path, "cat.ndjson", "line 4", f"countrycode {code!r}", compiled=compiled
    )


def test_every_real_countrycode_passes_the_check(rendered_heads, tmp_path):
    """The check must not refuse real data: the heads of 100 categories, 90+ countries."""
    categories = tuple(sorted(p.stem for p in (rendered_heads / "simplified").glob("*.ndjson")))
    out, _ = join(rendered_heads, tmp_path, categories=list(categories))
    codes = ds.dataset(out, format="parquet").to_table(columns=["countrycode"])["countrycode"]
    assert len(categories) >= 100 and len(set(codes.to_pylist())) > 90


@pytest.fixture
def small_disk(tmp_path: Path):
    with small_filesystem(tmp_path / "small", "64k") as mount:
        yield mount


def test_a_full_disk_stops_the_join_cleanly(tmp_path, small_disk):
    """The store on a 64 KiB filesystem: the demo's octopus (about 200 KB joined) cannot fit."""
    source = Path(__file__).resolve().parents[1] / "data" / "demo"
    store = small_disk / "drawings"
    with pytest.raises(PipelineError, match="free space") as caught:
        run_join(source, "simplified", ("octopus",), store, tmp_path / "join.json", 0)
    assert "octopus" in str(caught.value)
    left = [path for path in small_disk.rglob("*") if path.is_file()]
    assert left == [], f"partial output left behind: {left}"
    assert not (tmp_path / "join.json").exists()


def test_an_empty_category_is_one_line(tmp_path):
    write_category(tmp_path / "raw", "simplified", "cat", [], np.zeros((0, 784), np.uint8))
    with pytest.raises(PipelineError, match="hold no drawings; an empty category") as caught:
        join(tmp_path / "raw", tmp_path, categories=["cat"])
    assert "\n" not in str(caught.value)


def record_download(root: Path) -> Path:
    """A download manifest for cat's two files, as the download writes it: the category held."""
    manifest = root / layout.manifest_object("cat")
    manifest.parent.mkdir()
    files = {
        obj: {"url": f"x/{obj}", "size": (root / obj).stat().st_size, "md5": "0"}
        for obj in ("numpy_bitmap/cat.npy", "simplified/cat.ndjson")
    }
    record = {"category": "cat", "drawings": "simplified", "limit": None, "files": files}
    manifest.write_text(json.dumps(record))
    return manifest


def test_a_damaged_download_is_forgotten_so_the_advice_to_download_again_works(
    heads_layout, tmp_path
):
    """The join names the file and says to download it again; the download keeps a category
    its manifest records, so the join removes that record."""
    manifest = record_download(heads_layout)
    assert "cat" in held_pieces(heads_layout)  # the download would keep it
    npy = heads_layout / "numpy_bitmap" / "cat.npy"
    npy.write_bytes(npy.read_bytes()[:-784])  # one row short of its header
    with pytest.raises(PipelineError, match="download it again"):
        join(heads_layout, tmp_path, categories=["cat"])
    assert not manifest.exists() and "cat" not in held_pieces(heads_layout)


def test_misaligned_files_are_forgotten_too_and_the_message_says_so(heads, tmp_path):
    """The alignment check's advice, to download both again, works as given: no rm by hand."""

    def shuffle(lines, bitmaps):
        return lines, np.random.default_rng(1).permutation(bitmaps)

    root = broken_layout(heads, tmp_path, shuffle)
    manifest = record_download(root)
    assert "cat" in held_pieces(root)
    with pytest.raises(PipelineError) as caught:
        join(root, tmp_path, categories=["cat"])
    assert "the join has forgotten their download" in str(caught.value)
    assert "rm " not in str(caught.value)
    assert not manifest.exists() and "cat" not in held_pieces(root)


def _empty_stroke(drawing):
    drawing.insert(1, [[] for _ in drawing[0]])


def _set(stroke: int, axis: int, value):
    def damage(drawing):
        drawing[stroke][axis][-1] = value

    return damage


def _time_backwards(drawing):
    times = next(stroke[2] for stroke in drawing if len(stroke[2]) > 1)
    times[-1] = times[-2] - 1


@pytest.mark.parametrize(
    ("fmt", "damage", "named"),
    [
        ("simplified", _empty_stroke, "stroke 1 has no points"),
        ("raw", _empty_stroke, "stroke 1 has no points"),
        ("simplified", _set(0, 0, -3), "x value -3 is not an integer in 0..255"),
        ("simplified", _set(-1, 1, 256), "y value 256 is not an integer in 0..255"),
        ("simplified", _set(0, 1, 12.5), "y value 12.5 is not an integer in 0..255"),
        ("raw", _time_backwards, "raw times never decrease within a stroke"),
    ],
    ids=["empty-stroke", "raw-empty-stroke", "negative", "above-255", "fraction", "time-back"],
)
def test_every_drawing_is_checked_against_googles_format(
    heads, tmp_path, compiled, fmt, damage, named
):
    """The damaged line is the last of the file and no alignment check runs: the scan itself
    must see it (it used to pass to the sample, or to the report, and fail there)."""
    lines = read_lines(heads / fmt / "octopus.ndjson")
    record = orjson.loads(lines[-1])
    damage(record["drawing"])
    lines[-1] = orjson.dumps(record)
    raw = tmp_path / "raw"
    write_category(raw, fmt, "octopus", lines, np.zeros((len(lines), 784), np.uint8))
    out = tmp_path / "processed" / "drawings"
    with pytest.raises(PipelineError) as caught:
        run_join(raw, fmt, ("octopus",), out, tmp_path / "join.json", 0, compiled=compiled)
    message = str(caught.value)
    assert "\n" not in message and named in message, message
    assert f"octopus.ndjson: line {len(lines)} " in message
    assert not list(out.rglob("*.parquet"))


def test_a_drawing_longer_than_the_limit_is_named_and_refused(heads, tmp_path, compiled):
    """One line of 1.2 MB among real ones: named by line before anything renders it (rendering
    took ~600 times a line's size: a 45 MB line used to exhaust the machine)."""
    lines = read_lines(heads / "simplified" / "octopus.ndjson")
    record = orjson.loads(lines[3])
    points = 150_000  # about 8 bytes a point
    record["drawing"].append([[n % 256 for n in range(points)], [n % 251 for n in range(points)]])
    lines[3] = orjson.dumps(record)
    assert len(lines[3]) > LINE_LIMIT
    raw = tmp_path / "raw"
    write_category(raw, "simplified", "octopus", lines, np.zeros((len(lines), 784), np.uint8))
    out = tmp_path / "processed" / "drawings"
    with pytest.raises(PipelineError, match=r"octopus\.ndjson: line 4: a drawing of") as caught:
        run_join(raw, "simplified", ("octopus",), out, tmp_path / "join.json", 0, compiled=compiled)
    assert f"up to {LINE_LIMIT:,} bytes" in str(caught.value)
