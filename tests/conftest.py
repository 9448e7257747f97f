"""Shared fixtures: the real heads, isolated DVC/git environments, small Google-layout folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADS = ROOT.parent / "shared" / "quickdraw-heads"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def heads() -> Path:
    """Real Quick, Draw! drawings (first lines of Google's files); never copied into the repo."""
    if not HEADS.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{HEADS} is missing; CI must provide ../shared/quickdraw-heads")
        pytest.skip(f"{HEADS} is absent (real Quick, Draw! heads live beside the repository)")
    return HEADS


def read_lines(path: Path) -> list[bytes]:
    """The lines of an ndjson file, tolerating a missing final newline."""
    return path.read_bytes().splitlines()


def write_category(
    root: Path,
    drawings: str,
    category: str,
    lines: list[bytes],
    bitmaps: np.ndarray,
    *,
    final_newline: bool = True,
) -> None:
    """Write one category in Google's layout: numpy_bitmap/<cat>.npy and <drawings>/<cat>.ndjson."""
    (root / "numpy_bitmap").mkdir(parents=True, exist_ok=True)
    (root / drawings).mkdir(parents=True, exist_ok=True)
    np.save(root / "numpy_bitmap" / f"{category}.npy", np.asarray(bitmaps, dtype=np.uint8))
    body = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    (root / drawings / f"{category}.ndjson").write_bytes(body)


def rendered_bitmaps(lines: list[bytes]) -> np.ndarray:
    """Bitmaps for simplified lines, rendered by the project as Google renders numpy_bitmap."""
    from pipeline.formats.render import render_bitmaps

    drawings = [orjson.loads(line)["drawing"] for line in lines]
    return render_bitmaps(drawings).reshape(len(lines), -1)


@pytest.fixture(scope="session")
def rendered_heads(tmp_path_factory: pytest.TempPathFactory, heads: Path) -> Path:
    """The real simplified heads with bitmaps rendered from them, built once per session."""
    root = tmp_path_factory.mktemp("heads") / "raw"
    for path in sorted((heads / "simplified").glob("*.ndjson")):
        lines = read_lines(path)
        write_category(root, "simplified", path.stem, lines, rendered_bitmaps(lines))
    return root


@pytest.fixture
def heads_layout(tmp_path: Path, rendered_heads: Path) -> Path:
    """A private copy of `rendered_heads` in Google's layout that a test may damage."""
    return Path(shutil.copytree(rendered_heads, tmp_path / "raw"))


def isolated_environment(home: Path) -> dict[str, str]:
    """Environment for real git and dvc runs that touches nothing outside `home`."""
    gitconfig = home / "gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n"
    )
    env = dict(os.environ)
    env.update(
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(home / "dvc-site-cache"),
        GIT_CONFIG_GLOBAL=str(gitconfig),
        GIT_CONFIG_NOSYSTEM="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@pytest.fixture
def isolated_env(tmp_path: Path) -> dict[str, str]:
    return isolated_environment(tmp_path)


def run(cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True):
    """Run a command, showing its output when it fails."""
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def start_stage(project: Path, env: dict[str, str], stage: str, **popen) -> subprocess.Popen:
    """`python -m pipeline <stage>` started in a project, its output as text pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", stage],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@pytest.fixture
def project(tmp_path: Path, isolated_env: dict[str, str]) -> Path:
    """A fresh git + DVC repository holding this project's pipeline and demo data."""
    repo = tmp_path / "project"
    repo.mkdir()
    for name in ("pipeline", "data/demo"):
        # the compiled extension (pipeline/native/_native*.so, built by make setup) comes along
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("*.pyc"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy2(ROOT / name, repo / name)
    run(["git", "init", "-q"], repo, isolated_env)
    run(["dvc", "init", "-q"], repo, isolated_env)
    run(["git", "add", "-A"], repo, isolated_env)
    run(["git", "commit", "-qm", "project"], repo, isolated_env)
    return repo


def set_param(project: Path, dotted: str, value) -> None:
    """Set `section.key` in a project's params.yaml."""
    import yaml

    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    section, key = dotted.split(".")
    params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@contextlib.contextmanager
def small_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """A real filesystem of `size` (tmpfs) at `folder`, for disk-full: mounting needs root;
    skipped where it is not allowed, a failure under CI."""
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.decode().strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
