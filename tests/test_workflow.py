"""The CI workflow: linted offline, and its steps (`make ci`, the DVC push) run here for real.

GitHub itself cannot be reached from here, so the workflow file is checked against GitHub's
workflow schema (check-jsonschema) and audited (zizmor --offline), and the scripts it runs are
exercised in temporary git + DVC repositories with real dvc and a real local remote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, isolated_environment, run

WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "pipeline.yml"
CHECK = ROOT / "ci" / "pipeline-check.sh"
PUSH = ROOT / "ci" / "dvc-push.sh"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")

# A workflow that GitHub would refuse: a job without `runs-on`, a step without run or uses.
INVALID = """\
on: push
jobs:
  build:
    steps:
      - name: nothing to do
"""

# A classic script injection: a pull request's title expanded straight into a shell script.
INJECTABLE = """\
on: pull_request_target
permissions: {}
jobs:
  greet:
    runs-on: ubuntu-24.04
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
"""


def tool(name: str) -> str:
    """A linter from the venv (dev dependencies); in CI its absence is an error, not a skip."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        message = f"{name} is not installed (a dev dependency in requirements.lock)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def lint(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)


def load_workflow() -> dict:
    # YAML 1.1 reads the key `on` as True; GitHub means the string.
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


# --- linting -------------------------------------------------------------------------------


def test_workflows_match_githubs_schema(tmp_path: Path) -> None:
    checker = tool("check-jsonschema")
    files = sorted(str(path) for path in WORKFLOWS.glob("*.y*ml"))
    assert str(WORKFLOW) in files
    result = lint([checker, "--builtin-schema", "vendor.github-workflows", *files])
    assert result.returncode == 0, result.stdout + result.stderr

    # The same check rejects a broken workflow, so the pass above means something.
    broken = tmp_path / "broken.yml"
    broken.write_text(INVALID)
    result = lint([checker, "--builtin-schema", "vendor.github-workflows", str(broken)])
    assert result.returncode != 0
    assert "runs-on" in result.stdout + result.stderr


def test_zizmor_offline_finds_nothing(tmp_path: Path) -> None:
    zizmor = tool("zizmor")
    result = lint([zizmor, "--offline", str(WORKFLOWS)])
    assert result.returncode == 0, result.stdout + result.stderr

    injectable = tmp_path / ".github" / "workflows" / "injectable.yml"
    injectable.parent.mkdir(parents=True)
    injectable.write_text(INJECTABLE)
    result = lint([zizmor, "--offline", str(injectable.parent)])
    assert result.returncode != 0
    assert "template-injection" in result.stdout + result.stderr


# --- what the workflow does ----------------------------------------------------------------


def steps_of(job: dict) -> list[dict]:
    return job["steps"]


def test_every_action_is_pinned_by_commit_sha() -> None:
    uses = [
        line.split("uses:", 1)[1].strip()
        for line in WORKFLOW.read_text().splitlines()
        if line.strip().startswith(("uses:", "- uses:"))
    ]
    assert uses
    for use in uses:
        assert PINNED.match(use), f"not pinned by full commit SHA with a version comment: {use}"


def test_the_workflow_runs_make_ci_on_pull_requests_and_pushes() -> None:
    workflow = load_workflow()
    assert {"pull_request", "push"} <= set(workflow["on"])
    assert workflow["permissions"] == {"contents": "read"}
    # A queued run on main is never cancelled: every commit's outputs must be pushed.
    assert "github.sha" in workflow["concurrency"]["group"]
    report = workflow["jobs"]["report"]
    steps = steps_of(report)
    runs = [step.get("run", "") for step in steps]
    assert any(run_.startswith("make ci") for run_ in runs), "the local target, not a copy"

    checkout = next(step for step in steps if step.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0, "the diffs need the base branch's history"
    assert checkout["with"]["persist-credentials"] is False

    cache = next(step for step in steps if step.get("uses", "").startswith("actions/cache"))
    assert "requirements.lock" in cache["with"]["key"]

    make_ci = next(step for step in steps if step.get("run", "").startswith("make ci"))
    assert "vars.QUICKDRAW_LIMIT" in make_ci["env"]["QUICKDRAW_LIMIT"]
    assert "base_ref" in make_ci["env"]["BASE_REV"]

    upload = next(step for step in steps if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["path"] == "reports/"
    assert "cancelled()" in upload["if"], "the report is uploaded even when the check fails"


def test_only_main_pushes_publish_with_secrets_in_an_environment() -> None:
    workflow = load_workflow()
    assert "secrets." not in yaml.safe_dump(workflow["jobs"]["report"])
    publish = workflow["jobs"]["publish"]
    assert publish["needs"] == "report"
    assert "github.ref == 'refs/heads/main'" in publish["if"]
    assert "github.event_name == 'push'" in publish["if"]
    assert publish["environment"] == "dvc-remote"
    assert steps_of(publish)[-1]["run"] == "bash ci/dvc-push.sh"


def test_expressions_never_reach_a_shell_script_directly() -> None:
    """Untrusted values go through `env:`; a `run:` holds no `${{ }}` (zizmor's rule, kept)."""
    for job in load_workflow()["jobs"].values():
        for step in steps_of(job):
            assert "${{" not in step.get("run", ""), step


# --- the steps, run here ---------------------------------------------------------------------


def set_params(repo: Path, **values: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, items in values.items():
        params[section].update(items)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def commit(repo: Path, env: dict[str, str], message: str) -> None:
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", message], repo, env)


@pytest.fixture(scope="module")
def built_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """conftest's `project` cut to one category and a small sample, built once and committed."""
    home = tmp_path_factory.mktemp("small")
    env = module_env(home)
    repo = home / "project"
    repo.mkdir()
    for name in ("pipeline", "data/demo", "ci"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy2(ROOT / name, repo / name)
    run(["git", "init", "-q"], repo, env)
    run(["dvc", "init", "-q"], repo, env)
    set_params(repo, dataset={"categories": ["octopus"]}, sample={"n": 100})
    run(["dvc", "repro"], repo, env)
    commit(repo, env, "built")
    return repo


def module_env(home: Path) -> dict[str, str]:
    """The same isolation as conftest's isolated_env, for a module-scoped build."""
    return isolated_environment(home)


@pytest.fixture
def small(built_small: Path, tmp_path: Path) -> Path:
    """A private copy of `built_small` (git history, DVC cache and outputs) a test may change."""
    return Path(shutil.copytree(built_small, tmp_path / "project", symlinks=True))


@pytest.mark.slow
def test_pipeline_check_passes_then_catches_a_stale_lock(
    small: Path, isolated_env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(isolated_env, GITHUB_STEP_SUMMARY=str(tmp_path / "step-summary.md"))
    repo = small
    summary = repo / "reports" / "ci-summary.md"

    passed = run(["bash", "ci/pipeline-check.sh"], repo, env)
    text = summary.read_text()
    assert "dvc.lock check: passed" in text
    assert "No metrics changed." in text and "No params changed." in text
    assert "`reports/quickdraw.html`" in text and "sha256" in text
    assert (tmp_path / "step-summary.md").read_text() == text
    assert "dvc.lock check: passed" in passed.stdout

    # A parameter committed without the lock it produces: CI must fail, and say what changed.
    set_params(repo, sample={"n": 50})
    commit(repo, env, "sample.n 50, lock not regenerated")
    failed = run(["bash", "ci/pipeline-check.sh"], repo, dict(env, BASE_REV="HEAD~1"), check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "not what 'dvc repro' produced" in failed.stderr
    text = summary.read_text()
    assert "dvc.lock check: **failed**" in text
    assert re.search(r"\| reports/metrics\.json \| sample_size +\| 100 +\| 50 ", text)
    assert re.search(r"\| params\.yaml +\| sample\.n +\| 100 +\| 50 ", text)
    assert "```diff" in text and "data/sample/sample.parquet" in text
    # ... and names each output with why it differs and what to do
    assert re.search(
        r"`data/sample/sample\.parquet` \(stage `sample`\): the committed lock is stale, its "
        r"inputs changed \(`params\.yaml:sample\.n`\): run `make ci`",
        text,
    ), text
    assert re.search(
        r"`reports/metrics\.json`, `reports/quickdraw\.html`, `reports/quickdraw\.png` \(stage "
        r"`report`\): the committed lock is stale, its inputs changed \(`params\.yaml:sample\.n`\)",
        failed.stderr,
    ), failed.stderr

    # Committing the regenerated lock makes it pass again.
    commit(repo, env, "lock regenerated")
    run(["bash", "ci/pipeline-check.sh"], repo, dict(env, BASE_REV="no-such-branch"))
    assert "`no-such-branch` is not available here" in summary.read_text()


@pytest.mark.slow
def test_pipeline_check_names_an_output_another_machine_built_differently(
    small: Path, isolated_env: dict[str, str]
) -> None:
    """A lock committed on a machine whose report had other bytes, from the same code, data and
    parameters: CI names that output, says it is this machine's doing, and what to do."""
    repo = small
    lock = repo / "dvc.lock"
    html = "reports/quickdraw.html"
    data = yaml.safe_load(lock.read_text())
    (out,) = (o for o in data["stages"]["report"]["outs"] if o["path"] == html)
    out["md5"] = "0" * 32
    lock.write_text(yaml.safe_dump(data, sort_keys=False))
    (repo / html).unlink()
    commit(repo, isolated_env, "the lock as another machine built it")
    failed = run(["bash", "ci/pipeline-check.sh"], repo, isolated_env, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    text = (repo / "reports" / "ci-summary.md").read_text()
    for where in (text, failed.stderr):
        assert (
            f"`{html}` (stage `report`): same code, data and parameters, other bytes: this "
            "machine computes it differently (the map's layout" in where
        ), where
        assert "tests/test_portable.py" in where
    assert "stale" not in failed.stderr


@pytest.mark.slow
def test_pipeline_check_real_data_mode_uses_a_limit(
    small: Path, isolated_env: dict[str, str]
) -> None:
    """QUICKDRAW_LIMIT switches to `dataset.limit` on a real source (here a file:// mirror)."""
    repo = small
    set_params(repo, sample={"n": 20})
    commit(repo, isolated_env, "a sample the limit can feed")
    env = dict(
        isolated_env,
        QUICKDRAW_LIMIT="50",
        QUICKDRAW_SOURCE=(repo / "data" / "demo").resolve().as_uri(),
    )
    run(["bash", "ci/pipeline-check.sh"], repo, env)
    text = (repo / "reports" / "ci-summary.md").read_text()
    assert "real data: the first 50 drawings per category" in text
    assert "dvc.lock check: skipped" in text
    assert json.loads((repo / "reports" / "join.json").read_text())["drawings"] == 50
    assert re.search(r"dataset\.limit +\| (None|null|-)? *\| 50 ", text), text

    bad = run(
        ["bash", "ci/pipeline-check.sh"],
        repo,
        dict(env, QUICKDRAW_LIMIT="5; rm -rf /"),
        check=False,
    )
    assert bad.returncode == 2
    assert "QUICKDRAW_LIMIT must be a positive integer" in bad.stderr


@pytest.mark.slow
def test_dvc_push_script_pushes_to_the_default_remote_or_skips(
    small: Path, isolated_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in isolated_env.items() if not k.startswith(("AWS_", "GCS_", "GOOGLE_"))}
    repo = small

    skipped = run(["bash", "ci/dvc-push.sh"], repo, env)
    assert "dvc push skipped: no default DVC remote" in skipped.stdout

    run(["dvc", "remote", "add", "--default", "s3", "s3://no-such-bucket/quickdraw"], repo, env)
    skipped = run(["bash", "ci/dvc-push.sh"], repo, env)
    assert "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set" in skipped.stdout

    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "--force", "--default", "s3", str(remote)], repo, env)
    pushed = run(["bash", "ci/dvc-push.sh"], repo, env)
    assert "are in remote 's3'" in pushed.stdout
    assert any(path.is_file() for path in remote.rglob("*"))
    assert "are in sync" in run(["dvc", "status", "--cloud"], repo, env).stdout


def test_make_ci_runs_the_pipeline_check() -> None:
    """`make ci` is the one local command for the workflow's steps."""
    if not re.search(r"^ci:", (ROOT / "Makefile").read_text(), re.MULTILINE):
        pytest.skip("the Makefile has no `ci` target yet (proposed: `ci: setup` + the script)")
    # -n prints the recipe without running it; ci/ is a directory, so the target must be phony.
    result = subprocess.run(
        ["make", "-n", "ci"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "bash ci/pipeline-check.sh" in result.stdout, result.stdout


def test_lock_diff_tells_an_output_that_follows_from_an_earlier_one() -> None:
    """The committed lock against one where the join's output, and so the sample, came out
    otherwise: the join is this machine's doing, the sample only follows from it, and the
    stages whose outputs came out the same are not mentioned."""
    sys.path.insert(0, str(ROOT / "ci"))
    from lock_diff import explain

    committed = yaml.safe_load((ROOT / "dvc.lock").read_text())
    rebuilt = yaml.safe_load((ROOT / "dvc.lock").read_text())
    drawings = "data/processed/drawings"
    for stage in rebuilt["stages"].values():
        for entry in stage.get("outs", []) + stage.get("deps", []):
            if entry["path"] in (drawings, "data/sample/sample.parquet"):
                entry["md5"] = "f" * 32
    lines = explain(committed, rebuilt)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"- `{drawings}` (stage `join`): same code, data and parameters")
    assert lines[1].startswith(
        f"- `data/sample/sample.parquet` (stage `sample`): follows from `{drawings}`"
    )
    assert explain(committed, committed) == []
