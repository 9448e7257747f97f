"""pipeline.demo.generate: the offline demo dataset,
in Google's exact layout and formats, reproducibly."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.demo.generate import DEMO_CATEGORIES, generate_demo
from pipeline.formats.render import render_bitmaps, simplify_strokes

PER_CATEGORY = 40
KEYS = ["word", "countrycode", "timestamp", "recognized", "key_id", "drawing"]
TIMESTAMP = re.compile(r"^2017-0[1-3]-[0-3]\d [0-2]\d:[0-5]\d:[0-5]\d\.\d{1,6} UTC$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    generate_demo(out, per_category=PER_CATEGORY)
    return out


def lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def records(demo: Path, kind: str, category: str) -> list[dict]:
    return [json.loads(line) for line in lines(demo / kind / f"{category}.ndjson")]


def test_layout_and_file_names(demo: Path) -> None:
    expected = {"README.md"}
    for c in DEMO_CATEGORIES:
        expected |= {f"raw/{c}.ndjson", f"simplified/{c}.ndjson", f"numpy_bitmap/{c}.npy"}
        expected.add(f"binary/{c}.bin")
    found = {str(p.relative_to(demo)) for p in demo.rglob("*") if p.is_file()}
    assert found == expected
    assert "raw/The Eiffel Tower.ndjson" in found
    readme = (demo / "README.md").read_text()
    assert "synthetic" in readme.lower() and "python -m pipeline demo" in readme


def test_counts_agree(demo: Path) -> None:
    for c in DEMO_CATEGORIES:
        bitmaps = np.load(demo / "numpy_bitmap" / f"{c}.npy")
        assert bitmaps.shape == (PER_CATEGORY, 784) and bitmaps.dtype == np.uint8
        assert len(lines(demo / "raw" / f"{c}.ndjson")) == PER_CATEGORY
        assert len(lines(demo / "simplified" / f"{c}.ndjson")) == PER_CATEGORY


def test_binary_records_are_the_simplified_drawings(demo: Path) -> None:
    from pipeline.formats import binary

    for c in DEMO_CATEGORIES:
        data = (demo / "binary" / f"{c}.bin").read_bytes()
        spans = list(binary.spans(data, Path(c)))
        simplified = [json.loads(x) for x in lines(demo / "simplified" / f"{c}.ndjson")]
        assert len(spans) == len(simplified)
        offsets = np.array([span[0] for span in spans])
        key_ids, codes, recognized, _ = binary.read_headers(data, offsets)
        assert key_ids == [int(r["key_id"]) for r in simplified]
        assert codes == [r["countrycode"] for r in simplified]
        assert recognized == [r["recognized"] for r in simplified]
        for (offset, *_), record in zip(spans[:50], simplified, strict=False):
            assert binary.read_strokes(data, offset) == record["drawing"]


def test_lines_have_googles_key_order_and_compact_format(demo: Path) -> None:
    for c in DEMO_CATEGORIES:
        for kind in ("raw", "simplified"):
            for line in lines(demo / kind / f"{c}.ndjson"):
                record = json.loads(line)
                assert list(record) == KEYS
                assert json.dumps(record, separators=(",", ":")).encode() == line
                assert line.startswith(b'{"word":' + json.dumps(c).encode() + b',"countrycode":"')
                assert re.fullmatch(r"[A-Z]{2}", record["countrycode"])
                assert TIMESTAMP.match(record["timestamp"]), record["timestamp"]
                assert isinstance(record["recognized"], bool)
                assert re.fullmatch(r"\d{16}", record["key_id"])
                assert int(record["key_id"]) < 2**63


def test_raw_strokes_look_like_a_pen(demo: Path) -> None:
    int_coords = all_coords = 0
    for c in DEMO_CATEGORIES:
        for record in records(demo, "raw", c):
            last_t = -1
            assert record["drawing"][0][2][0] == 0  # times count from the first point
            for xs, ys, ts in record["drawing"]:
                assert len(xs) == len(ys) == len(ts) >= 1
                assert all(isinstance(t, int) for t in ts)
                assert ts[0] > last_t and all(b > a for a, b in itertools.pairwise(ts))
                last_t = ts[-1]
                assert min(xs) >= 0 and min(ys) >= 0 and max(xs) < 2000 and max(ys) < 2000
                int_coords += sum(isinstance(v, int) for v in xs + ys)
                all_coords += len(xs) + len(ys)
    assert int_coords / all_coords > 0.8  # integers most of the time, floats sometimes


def test_simplified_is_simplify_of_raw_with_the_same_metadata(demo: Path) -> None:
    for c in DEMO_CATEGORIES:
        pairs = zip(records(demo, "raw", c), records(demo, "simplified", c), strict=True)
        for raw, simple in pairs:
            assert {k: raw[k] for k in KEYS[:-1]} == {k: simple[k] for k in KEYS[:-1]}
            expected = [s.tolist() for s in simplify_strokes(raw["drawing"])]
            assert simple["drawing"] == expected
            assert len(simple["drawing"]) == len(raw["drawing"])


def test_bitmap_rows_render_the_simplified_lines(demo: Path) -> None:
    for c in DEMO_CATEGORIES:
        bitmaps = np.load(demo / "numpy_bitmap" / f"{c}.npy")
        drawings = [r["drawing"] for r in records(demo, "simplified", c)]
        assert np.array_equal(bitmaps, render_bitmaps(drawings).reshape(len(drawings), 784))
        ink = bitmaps.sum(axis=1) / (255 * 784)
        assert ((ink > 0.01) & (ink < 0.5)).all()


def test_categories_look_different(demo: Path) -> None:
    # Mean images per category must differ clearly (a generator that drew the same doodle
    # for every category would pass every format test).
    means = np.stack(
        [np.load(demo / "numpy_bitmap" / f"{c}.npy").mean(axis=0) for c in DEMO_CATEGORIES]
    )
    corr = np.corrcoef(means)
    off_diagonal = corr[~np.eye(len(DEMO_CATEGORIES), dtype=bool)]
    assert off_diagonal.max() < 0.9


def test_key_ids_unique_across_categories(demo: Path) -> None:
    keys = [r["key_id"] for c in DEMO_CATEGORIES for r in records(demo, "raw", c)]
    assert len(keys) == len(set(keys)) == PER_CATEGORY * len(DEMO_CATEGORIES)


def test_metadata_mix_is_realistic(demo: Path) -> None:
    recs = [r for c in DEMO_CATEGORIES for r in records(demo, "raw", c)]
    countries = Counter(r["countrycode"] for r in recs)
    assert countries.most_common(1)[0][0] == "US"
    assert 0.25 < countries["US"] / len(recs) < 0.5
    assert len(countries) >= 15
    recognized = sum(r["recognized"] for r in recs) / len(recs)
    assert 0.75 < recognized < 0.96
    months = Counter(r["timestamp"][:7] for r in recs)
    assert set(months) == {"2017-01", "2017-02", "2017-03"}


def test_deterministic_bytes(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_demo(again, per_category=PER_CATEGORY)
    files = sorted(p.relative_to(demo) for p in demo.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (demo / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_seed_changes_the_drawings(tmp_path: Path) -> None:
    generate_demo(tmp_path / "a", per_category=3, seed=1)
    generate_demo(tmp_path / "b", per_category=3, seed=2)
    a = (tmp_path / "a" / "raw" / "cat.ndjson").read_bytes()
    b = (tmp_path / "b" / "raw" / "cat.ndjson").read_bytes()
    assert a != b
