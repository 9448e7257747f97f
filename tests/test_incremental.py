"""What a per-category stage keeps between runs (pipeline/store/incremental.py), and the stages' use
of it: stale staging removed, the join's code fingerprint matching dvc.yaml's deps."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.stages.join import JOIN_CODE, run_join
from pipeline.store import atomic, incremental
from pipeline.store.incremental import Piece, Shelf
from pipeline.store.layout import partition_path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "data" / "demo"


def piece(base: Path, category: str, key: str, text: str | None = None) -> Piece:
    path = base / "out" / f"{category}.txt"
    if text is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Piece(category, key, (path,))


def test_keep_set_aside_restore_and_replace(tmp_path):
    shelf = Shelf("stage", tmp_path / ".stash", base=tmp_path)
    held = {
        "a": piece(tmp_path, "a", "a1", "a made from a1"),
        "b": piece(tmp_path, "b", "b1", "b made from b1"),
        "c": piece(tmp_path, "c", "c1", "c made from c1"),
    }
    wanted = [piece(tmp_path, "a", "a1"), piece(tmp_path, "c", "c2")]
    plan = incremental.plan(wanted, held, shelf)
    assert (plan.kept, plan.set_aside, plan.restored, plan.todo) == (["a"], ["b"], [], ["c"])
    assert not (tmp_path / "out" / "b.txt").exists()
    assert (tmp_path / "out" / "c.txt").read_text() == "c made from c1"  # replaced by the stage

    # b comes back with the key it was made from: restored, byte for byte
    held = {"a": held["a"], "c": piece(tmp_path, "c", "c2", "c made from c2")}
    plan = incremental.plan([*wanted, piece(tmp_path, "b", "b1")], held, shelf)
    assert (plan.kept, plan.restored, plan.todo) == (["a", "c"], ["b"], [])
    assert (tmp_path / "out" / "b.txt").read_text() == "b made from b1"
    assert not [p for p in (tmp_path / ".stash").rglob("*") if p.is_file()]


def test_the_stash_keeps_one_piece_per_category_and_drops_a_useless_one(tmp_path):
    shelf = Shelf("stage", tmp_path / ".stash", base=tmp_path)
    shelf.put(piece(tmp_path, "b", "b1", "first"))
    shelf.put(piece(tmp_path, "b", "b2", "second"))
    assert len(list((tmp_path / ".stash" / "stage").iterdir())) == 1  # b2 replaced b1
    assert shelf.take(piece(tmp_path, "b", "b2"))
    assert (tmp_path / "out" / "b.txt").read_text() == "second"
    shelf.put(piece(tmp_path, "b", "b2", "second"))
    assert not shelf.take(piece(tmp_path, "b", "b3"))  # wanted with another key now
    assert not (tmp_path / ".stash" / "stage").exists() or not any(
        (tmp_path / ".stash" / "stage").iterdir()
    )


def test_an_incomplete_or_keyless_piece_is_not_kept(tmp_path):
    shelf = Shelf("stage", tmp_path / ".stash", base=tmp_path)
    missing = piece(tmp_path, "a", "a1")  # its file is gone
    damaged = Piece("d", "", piece(tmp_path, "d", "", "of unknown origin").files)
    plan = incremental.plan([piece(tmp_path, "a", "a1")], {"a": missing, "d": damaged}, shelf)
    assert plan.todo == ["a"] and plan.set_aside == ["d"]
    assert not (tmp_path / "out" / "d.txt").exists()
    assert not (tmp_path / ".stash").exists() or not any((tmp_path / ".stash").rglob("*.txt"))


def test_stale_staging_of_a_killed_join_is_removed_and_finished_partitions_kept(tmp_path):
    store = tmp_path / "processed" / "drawings"
    run_join(DEMO, "simplified", ("cat", "fish"), store, tmp_path / "join.json", 10)
    kept = partition_path(store, "cat").stat().st_mtime_ns
    # what a SIGKILL leaves: the writer's staging folder inside a partition folder, and the
    # whole-store staging folder of the layout before per-category partitions
    stale = [
        partition_path(store, "fish").parent / ".part-0.parquet.k1ll3d.tmp",
        store.parent / ".drawings.abc123.tmp",
    ]
    for folder in stale:
        folder.mkdir()
        (folder / "part-0.parquet").write_bytes(b"half a file")
    partition_path(store, "fish").unlink()
    run_join(DEMO, "simplified", ("cat", "fish"), store, tmp_path / "join.json", 10)
    assert not any(folder.exists() for folder in stale)
    assert partition_path(store, "cat").stat().st_mtime_ns == kept
    assert partition_path(store, "fish").is_file()
    assert atomic.remove_stale(store.parent) == []


def test_the_join_fingerprint_covers_what_dvc_yaml_lists():
    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["join"]["deps"]
    code = {dep for dep in deps if dep.startswith("pipeline/")}
    # the stage's bookkeeping and its headline metrics: no partition depends on them
    assert code - {"pipeline/store/incremental.py", "pipeline/stats/headline.py"} == set(JOIN_CODE)
