"""Versioned reports: every commit's report is reproducible, stored in a DVC remote and comparable.

Real git, real dvc and a real local-directory DVC remote: a clone of this repository at HEAD is
rebuilt from scratch (its dvc.lock must come out as committed), then two versions are committed
and pushed to a bare git "origin" and the remote, and fetched back in fresh clones.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, isolated_environment, run

pytestmark = pytest.mark.slow

REPORT = "reports/quickdraw.html"
SAMPLE = "data/sample/sample.parquet"
COUNTRIES = "reports/countries.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def head_of(repo: Path) -> str | None:
    """The commit checked out in `repo`, or None when it is not the top of a git checkout."""
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    return top[1] if len(top) == 2 and Path(top[0]).resolve() == repo.resolve() else None


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """conftest's isolated_env, shared by the module so that one build serves all its tests."""
    return isolated_environment(tmp_path_factory.mktemp("versioning-env"))


@dataclass
class Build:
    """A clone of ROOT at HEAD, rebuilt with `dvc repro`, and what the rebuild produced."""

    repo: Path
    commit: str
    committed_lock: str
    rebuilt_lock: str
    report_sha256: str
    sample_sha256: str


@pytest.fixture(scope="module")
def head_build(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Build:
    """Clone HEAD (committed files only, no DVC cache) and rebuild everything from scratch."""
    commit = head_of(ROOT)
    if commit is None:
        pytest.skip(f"{ROOT} is not a git checkout with a commit; nothing committed to rebuild")
    repo = tmp_path_factory.mktemp("head") / "repo"
    run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(repo)], ROOT, env)
    run(["git", "checkout", "-q", "-B", "main", commit], repo, env)
    # Nothing done here may ever reach the developer's repository.
    run(["git", "remote", "remove", "origin"], repo, env)
    committed_lock = (repo / "dvc.lock").read_text()
    # The clone's own C extension, from its own source (`make setup` does this in a checkout).
    build_ext = ["-c", "import setuptools; setuptools.setup()", "build_ext", "--inplace", "-q"]
    run([sys.executable, *build_ext], repo, env)
    run(["dvc", "repro"], repo, env)
    return Build(
        repo=repo,
        commit=commit,
        committed_lock=committed_lock,
        rebuilt_lock=(repo / "dvc.lock").read_text(),
        report_sha256=sha256(repo / REPORT),
        sample_sha256=sha256(repo / SAMPLE),
    )


def test_a_fresh_clone_rebuilds_exactly_the_committed_lock(head_build: Build) -> None:
    """Reproducible across machines: the same code, params and data give the same hashes."""
    lock = yaml.safe_load(head_build.rebuilt_lock)
    outs = {out["path"] for stage in lock["stages"].values() for out in stage.get("outs", [])}
    # The comparison covers the Parquet store, the sample and the HTML report, not just code.
    assert {REPORT, SAMPLE, "data/processed/drawings"} <= outs
    if head_build.rebuilt_lock != head_build.committed_lock:
        diff = difflib.unified_diff(
            head_build.committed_lock.splitlines(keepends=True),
            head_build.rebuilt_lock.splitlines(keepends=True),
            "dvc.lock (committed)",
            "dvc.lock (rebuilt)",
        )
        pytest.fail(
            f"dvc repro at {head_build.commit[:10]} does not reproduce the committed dvc.lock: "
            "run `dvc repro` with the default params and commit dvc.lock and reports/*.json, or "
            "find the stage that is not deterministic.\n" + "".join(diff),
            pytrace=False,
        )


@dataclass
class History:
    """Two pushed versions of the report, in a bare git origin and a local DVC remote."""

    origin: Path
    remote: Path
    first: str
    second: str
    first_report: str
    second_report: str
    first_sample: str
    scratch: Path
    env: dict[str, str] = field(repr=False)


def commit_all(repo: Path, env: dict[str, str], message: str) -> str:
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", message], repo, env)
    return run(["git", "rev-parse", "HEAD"], repo, env).stdout.strip()


@pytest.fixture(scope="module")
def history(
    head_build: Build, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]
) -> History:
    """Build, commit, push; change sample.n, build, commit, push (git to origin, data to remote)."""
    scratch = tmp_path_factory.mktemp("history")
    origin, remote, repo = scratch / "origin.git", scratch / "dvc-remote", head_build.repo
    run(["git", "init", "-q", "--bare", str(origin)], scratch, env)
    run(["git", "remote", "add", "origin", str(origin)], repo, env)
    # The remote is part of the committed config, as it would be for S3 or GCS.
    run(["dvc", "remote", "add", "--default", "storage", str(remote)], repo, env)

    first = commit_all(repo, env, "first report")
    run(["dvc", "push"], repo, env)
    run(["git", "push", "-q", "origin", "main"], repo, env)

    params_path = repo / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["sample"]["n"] = 500
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], repo, env)
    second = commit_all(repo, env, "second report: sample.n 500")
    run(["dvc", "push"], repo, env)
    run(["git", "push", "-q", "origin", "main"], repo, env)
    return History(
        origin=origin,
        remote=remote,
        first=first,
        second=second,
        first_report=head_build.report_sha256,
        second_report=sha256(repo / REPORT),
        first_sample=head_build.sample_sha256,
        scratch=scratch,
        env=env,
    )


def test_a_fresh_clone_pulls_the_first_report_byte_for_byte(history: History) -> None:
    assert history.second_report != history.first_report, "sample.n=500 must change the report"
    env = history.env
    clone = history.scratch / "fresh"
    run(["git", "clone", "-q", str(history.origin), str(clone)], history.scratch, env)
    assert not (clone / REPORT).exists()
    run(["git", "checkout", "-q", history.first], clone, env)
    run(["dvc", "pull"], clone, env)
    assert sha256(clone / REPORT) == history.first_report
    assert sha256(clone / SAMPLE) == history.first_sample
    # Everything the first commit's dvc.lock names came back from the remote, unchanged.
    assert "up to date" in run(["dvc", "status"], clone, env).stdout
    assert json.loads((clone / "reports/metrics.json").read_text())["sample_size"] == 1000

    # And the same clone moves to the second version.
    run(["git", "checkout", "-q", history.second], clone, env)
    run(["dvc", "pull"], clone, env)
    assert sha256(clone / REPORT) == history.second_report


def test_dvc_get_rev_fetches_an_old_report(history: History) -> None:
    """`dvc get --rev` needs no clone: git from origin, the data from the remote it names."""
    env, scratch = history.env, history.scratch
    for name, rev, expected in (
        ("first", history.first, history.first_report),
        ("second", history.second, history.second_report),
    ):
        out = scratch / f"get-{name}.html"
        run(
            ["dvc", "get", "--rev", rev, str(history.origin), REPORT, "-o", str(out)],
            scratch,
            env,
        )
        assert sha256(out) == expected, name


def test_the_remote_is_required_for_the_data(history: History) -> None:
    """Without the remote, the old report cannot be fetched: the test above really used it."""
    env, scratch = history.env, history.scratch
    moved = scratch / "dvc-remote-away"
    shutil.move(history.remote, moved)
    try:
        out = scratch / "get-without-remote.html"
        result = run(
            ["dvc", "get", "--rev", history.first, str(history.origin), REPORT, "-o", str(out)],
            scratch,
            env,
            check=False,
        )
        assert result.returncode != 0
        assert not out.exists()
    finally:
        shutil.move(moved, history.remote)


def test_metrics_diff_names_what_changed(history: History) -> None:
    """Sample size, recognized share, alignment, report size."""
    env, repo = history.env, history.scratch
    clone = repo / "fresh-metrics"
    run(["git", "clone", "-q", str(history.origin), str(clone)], repo, env)
    diff = json.loads(
        run(
            ["dvc", "metrics", "diff", "--all", "--json", history.first, history.second],
            clone,
            env,
        ).stdout
    )
    metrics = diff["reports/metrics.json"]
    assert metrics["sample_size"] == {"old": 1000, "new": 500, "diff": -500}
    assert metrics["report_bytes"]["diff"] < 0
    assert "diff" in metrics["recognized_share"]
    # headline figures only: one column each, none per country or category
    assert not any("." in key for key in metrics)
    # The join did not rerun: its alignment score is listed, unchanged.
    alignment = diff["reports/join.json"]["alignment_agreement"]
    assert alignment["old"] == alignment["new"] and 0.9 <= alignment["new"] <= 1.0

    table = run(["dvc", "metrics", "diff", "--md", history.first, history.second], clone, env)
    assert "| reports/metrics.json | sample_size" in table.stdout
    params = run(["dvc", "params", "diff", "--md", history.first, history.second], clone, env)
    assert "sample.n" in params.stdout and "1000" in params.stdout and "500" in params.stdout


def countries_plot_declared(repo: Path) -> bool:
    """Whether dvc.yaml declares reports/countries.json as a plot (proposed for the report)."""
    return COUNTRIES in (repo / "dvc.yaml").read_text()


def test_plots_show_the_country_distribution(history: History, head_build: Build) -> None:
    """`dvc plots diff` draws drawings per country from reports/countries.json, per revision.

    Enabled by itself once dvc.yaml at HEAD declares the plot (the report stage writing
    reports/countries.json, a list of {"country": code, "drawings": n}, most first).
    """
    if not countries_plot_declared(head_build.repo):
        pytest.skip(
            f"dvc.yaml at HEAD declares no {COUNTRIES} plot yet; the test runs once it does"
        )
    env, scratch = history.env, history.scratch
    clone = scratch / "fresh-plots"
    run(["git", "clone", "-q", str(history.origin), str(clone)], scratch, env)
    countries = json.loads((clone / COUNTRIES).read_text())
    assert sum(row["drawings"] for row in countries) == 500
    assert countries == sorted(countries, key=lambda row: (-row["drawings"], row["country"]))

    shown = run(["dvc", "plots", "diff", "--json", history.first, history.second], clone, env)
    plots = json.loads(shown.stdout)["data"][COUNTRIES]
    assert [plot["type"] for plot in plots] == ["vega"]
    assert plots[0]["revisions"] == [history.first, history.second]
    totals: dict[str, int] = {}
    for row in plots[0]["content"]["data"]["values"]:
        totals[row["rev"]] = totals.get(row["rev"], 0) + row["drawings"]
    assert totals == {history.first: 1000, history.second: 500}
    out = scratch / "plots"
    run(["dvc", "plots", "show", "-o", str(out)], clone, env)
    page = (out / "index.html").read_text()
    # A self-contained page with the Vega-Lite bar chart and the second version's data.
    assert "countries_json" in page and '{"country": "US", "drawings": ' in page
