"""The profile stage under a real `dvc repro`: adding a category profiles only it, removing and
re-adding it profiles nothing, a change to the profile's code profiles every category again."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run
from test_categories import FIVE, ran, set_param

from pipeline.errors import PipelineError
from pipeline.stages.join import run_join
from pipeline.stages.profile import piece_path, run_profile
from pipeline.store import layout

SIX = [*FIVE, "The Eiffel Tower"]


def profile_files(project: Path, categories: list[str]) -> dict[str, tuple[int, int]]:
    """Inode and mtime of each category's profile file: equal means not rewritten."""
    paths = {c: piece_path(project / layout.PROFILE_DIR, c) for c in categories}
    return {c: (p.stat().st_ino, p.stat().st_mtime_ns) for c, p in paths.items()}


@pytest.mark.slow
def test_adding_a_category_profiles_only_it(project, isolated_env):
    env = isolated_env
    set_param(project, "dataset.categories", FIVE)
    output = run(["dvc", "repro", "profile"], project, env).stdout
    assert ran(output) == {"download", "join", "profile"}
    assert "profile: 0 kept, 5 to do" in output
    before = profile_files(project, FIVE)

    set_param(project, "dataset.categories", SIX)
    output = run(["dvc", "repro", "profile"], project, env).stdout
    assert "profile: 5 kept, 1 to do" in output
    assert re.search(r"profile \[1/1\] The Eiffel Tower: 600 drawings, \d+ countries", output)
    assert profile_files(project, FIVE) == before
    profile = pq.read_table(project / layout.PROFILE_DIR / "profile.parquet")
    assert profile["category"].unique().to_pylist() == SIX
    assert sum(profile["drawings"].to_pylist()) == 6 * 600
    figures = json.loads((project / "reports/profile_categories.json").read_text())
    assert sorted(figures["categories"]) == sorted(SIX)
    lock = (project / "dvc.lock").read_text()

    # Removing one profiles nothing; adding it back restores its file from the stash.
    set_param(project, "dataset.categories", FIVE)
    output = run(["dvc", "repro", "profile"], project, env).stdout
    assert "profile: 5 kept, 1 set aside in data/.stash, 0 to do" in output
    assert not piece_path(project / layout.PROFILE_DIR, "The Eiffel Tower").exists()
    set_param(project, "dataset.categories", SIX)
    output = run(["dvc", "repro", "profile"], project, env).stdout
    assert "profile: 5 kept, 1 restored from data/.stash, 0 to do" in output
    assert (project / "dvc.lock").read_text() == lock

    # Its own parameter reruns the stage, which recomputes nothing.
    set_param(project, "profile.min_drawings", 5)
    output = run(["dvc", "repro", "profile"], project, env).stdout
    assert ran(output) == {"profile"}
    assert "profile: 6 kept, 0 to do" in output
    figures = json.loads((project / "reports/profile_categories.json").read_text())
    assert figures["min_drawings"] == 5

    # A change to the profile's code profiles every category again.
    with (project / "pipeline/stats/profile.py").open("a") as handle:
        handle.write("\n# a change\n")
    output = run(["dvc", "repro", "profile"], project, env).stdout
    assert ran(output) == {"profile"}
    assert "profile: 0 kept, 6 to do" in output
    assert "up to date" in run(["dvc", "status", "profile"], project, env).stdout


def test_a_category_that_was_not_joined_is_named(tmp_path):
    with pytest.raises(PipelineError, match="'cat' was not joined"):
        run_profile(
            tmp_path, ("cat",), tmp_path / "profile", tmp_path / "m.json", tmp_path / "p.json", 30
        )


def test_a_partition_without_a_record_is_named(tmp_path, heads_layout):
    out = tmp_path / "processed"
    run_join(heads_layout, "simplified", ("cat",), out, tmp_path / "join.json", 0)
    partition = layout.partition_dir(out, "cat") / "part-0.parquet"
    table = pq.read_table(partition)
    pq.write_table(table.replace_schema_metadata(None), partition)
    with pytest.raises(PipelineError, match="has no join record"):
        run_profile(
            out, ("cat",), tmp_path / "profile", tmp_path / "m.json", tmp_path / "p.json", 30
        )


def test_dvc_yaml_lists_the_profile_code():
    """The stage reruns when the code the categories' keys are made from changes."""
    import yaml
    from conftest import ROOT

    from pipeline.stages.profile import PROFILE_CODE

    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["profile"]["deps"]
    assert set(PROFILE_CODE) <= set(deps)


def test_keys_do_not_depend_on_where_the_clone_is(tmp_path):
    """The same code in another folder has the same fingerprint (so a fresh clone rebuilds the
    committed dvc.lock); other code does not."""
    from pipeline.store import incremental

    for folder in ("one", "two/deeper"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "a.py").write_text("x = 1\n")
        (tmp_path / folder / "b.py").write_text("y = 2\n")
    one, two = (
        incremental.fingerprint([tmp_path / f / "a.py", tmp_path / f / "b.py"])
        for f in ("one", "two/deeper")
    )
    assert one == two
    (tmp_path / "two/deeper/b.py").write_text("y = 3\n")
    assert incremental.fingerprint([tmp_path / "two/deeper" / n for n in ("a.py", "b.py")]) != one
