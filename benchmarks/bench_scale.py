"""The pipeline at 344 categories: what a new user of `dataset.limit: 2000` waits for.

A bucket of 344 categories x 2,000 real drawings (benchmarks/scale_data.py) is served over
HTTP by tests/gcs_server.py in its own process; a fresh git + DVC project runs, in one go:
cold `dvc repro`, a no-op `dvc repro`, `dvc status`, adding a 345th category, removing one,
adding it back. Each is compared with the no-op (the issue's target: at most 2.5x).

`--structures` also times DVC's own bookkeeping on trivial stages (one `echo` each): 344
`foreach` stages against one stage doing 344 items, cold and no-op, the measurement behind
one stage per step (docs/categories.md, "Why one stage per step").
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import OUT, ROOT
from scale_data import all_categories, build

CATEGORIES = 344
DRAWINGS = 2000


def environment(home: Path) -> dict[str, str]:
    gitconfig = home / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    env = dict(os.environ)
    env.update(
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(home / "site-cache"),
        GIT_CONFIG_GLOBAL=str(gitconfig),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    )
    return env


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def set_param(project: Path, dotted: str, value) -> None:
    """Set `section.key` in a project's params.yaml."""
    section, key = dotted.split(".")
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def make_project(home: Path, base_url: str, categories: list[str], env: dict[str, str]) -> Path:
    project = home / "project"
    project.mkdir()
    shutil.copytree(ROOT / "pipeline", project / "pipeline", ignore=shutil.ignore_patterns("*.pyc"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy2(ROOT / name, project / name)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["dataset"].update(base_url=base_url, categories=categories, limit=DRAWINGS)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=project, env=env, check=True)
    subprocess.run(["git", "commit", "-qm", "bench"], cwd=project, env=env, check=True)
    return project


def stage_seconds(output: str) -> str:
    ran = re.findall(r"Running stage '([^']+)'", output)
    return ", ".join(ran) if ran else "none"


def bench_pipeline(home: Path) -> None:
    names = all_categories()
    added = "octopus"
    base = [name for name in names if name != added][:CATEGORIES]
    removed = base[len(base) // 2]
    bucket = build(OUT / "scale-bucket", [*base, added], DRAWINGS)
    env = environment(home)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "gcs_server.py"), str(bucket)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = server.stdout.readline().strip()
        project = make_project(home, base_url, base, env)
        print(f"project: {project}")
        figures: dict[str, float] = {}
        steps = [
            ("cold dvc repro", ["dvc", "repro"], None),
            ("no-op dvc repro", ["dvc", "repro"], None),
            ("dvc status", ["dvc", "status"], None),
            ("add one category", ["dvc", "repro"], [*base, added]),
            ("remove one", ["dvc", "repro"], [c for c in [*base, added] if c != removed]),
            ("add it back", ["dvc", "repro"], [*base, added]),
            ("no-op again", ["dvc", "repro"], None),
        ]
        print(f"{CATEGORIES} categories x {DRAWINGS:,} drawings over HTTP ({base_url})")
        for name, command, categories in steps:
            if categories is not None:
                set_param(project, "dataset.categories", categories)
            figures[name], output = timed(command, project, env)
            plans = "; ".join(re.findall(r"^(?:download|join): .*$", output, re.MULTILINE))
            print(f"  {name:<18} {figures[name]:7.1f} s   ran: {stage_seconds(output)}   {plans}")
        noop = figures["no-op dvc repro"]
        print("  ratios to the no-op (target: add, remove, re-add at most 2.5x):")
        for name in ("add one category", "remove one", "add it back"):
            print(f"    {name:<18} {figures[name] / noop:5.2f}x")
    finally:
        server.terminate()
        server.wait()


def bench_structures(home: Path, count: int = CATEGORIES) -> None:
    """DVC's bookkeeping alone: `count` foreach stages vs one stage, each an `echo`."""
    env = environment(home)
    layouts = {
        "foreach": {
            "stages": {
                "item": {
                    "foreach": [f"c{i}" for i in range(count)],
                    "do": {"cmd": "echo ${item} > out/${item}.txt", "outs": ["out/${item}.txt"]},
                }
            }
        },
        "one stage": {
            "stages": {
                "all": {
                    "cmd": f"mkdir -p out && for i in $(seq 0 {count - 1}); do echo c$i > "
                    "out/c$i.txt; done",
                    "outs": ["out"],
                }
            }
        },
    }
    print(f"DVC bookkeeping on trivial stages ({count} items):")
    for name, layout in layouts.items():
        project = home / name.replace(" ", "-")
        (project / "out").mkdir(parents=True)
        (project / "dvc.yaml").write_text(yaml.safe_dump(layout))
        for command in (["git", "init", "-q"], ["dvc", "init", "-q"]):
            subprocess.run(command, cwd=project, env=env, check=True)
        cold, _ = timed(["dvc", "repro"], project, env)
        noop, _ = timed(["dvc", "repro"], project, env)
        print(f"  {name:<10} cold {cold:6.1f} s ({cold / count * 1000:4.0f} ms an item), "
              f"no-op {noop:5.1f} s")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", action="store_true", help="also time DVC's bookkeeping")
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        home = args.keep or Path(tmp)
        home.mkdir(parents=True, exist_ok=True)
        bench_pipeline(home)
        if args.structures:
            bench_structures(home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
