"""A `sample.*` change on the demo data: how long `dvc repro` takes to rebuild the sample and the
report, against a no-op `dvc repro` (the issue's target: at most 3x).

A fresh git + DVC project with the repository's pipeline and demo data is reproduced once; then,
in turn, a no-op and a new `sample.seed` are timed three times each (medians printed). The same
is timed with the sample's and the report's commands replaced by copies of their outputs: what
DVC's own bookkeeping costs for the two stages (checking, hashing, caching, rewriting
`dvc.lock`), the part of the rebuild that no work in the commands can remove. The commands' own
times (`python -m pipeline sample`, `report`) are printed beside.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from bench_scale import environment, set_param, timed
from common import ROOT

REPEATS = 3
COPIED_OUTPUTS = {
    "sample": ["data/sample/sample.parquet"],
    "report": [
        "reports/quickdraw.html",
        "reports/quickdraw.png",
        "reports/metrics.json",
        "reports/countries.json",
    ],
}


def make_project(home: Path, env: dict[str, str]) -> Path:
    project = home / "project"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, files):
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    for built in (ROOT / "pipeline").rglob("*.so"):  # the C extensions, wherever they live
        shutil.copy2(built, project / built.relative_to(ROOT))
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "b"]):
        subprocess.run(command, cwd=project, env=env, check=True)
    return project


def replace_commands_by_copies(project: Path, saved: Path) -> None:
    """The sample's and report's commands become `cp` of the outputs they made."""
    for files in COPIED_OUTPUTS.values():
        for name in files:
            shutil.copy2(project / name, saved / Path(name).name)
    dvc_yaml = project / "dvc.yaml"
    pipeline = yaml.safe_load(dvc_yaml.read_text())
    for stage, files in COPIED_OUTPUTS.items():
        copies = " ".join(str(saved / Path(name).name) for name in files)
        folder = str(Path(files[0]).parent)
        pipeline["stages"][stage]["cmd"] = f"mkdir -p {folder} && cp {copies} {folder}/"
    dvc_yaml.write_text(yaml.safe_dump(pipeline, sort_keys=False))


def rebuilds(project: Path, env: dict[str, str], first_seed: int) -> tuple[float, float]:
    """Median no-op and median seed-change `dvc repro` seconds."""
    repro = ["dvc", "repro"]
    noops, changes = [], []
    for attempt in range(REPEATS):
        noops.append(timed(repro, project, env)[0])
        set_param(project, "sample.seed", first_seed + attempt)
        seconds, output = timed(repro, project, env)
        if "Running stage 'report'" not in output:
            raise SystemExit(f"the report was not rebuilt:\n{output}")
        changes.append(seconds)
    return statistics.median(noops), statistics.median(changes)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as tmp:
        home = Path(tmp)
        env = environment(home)
        project = make_project(home, env)
        timed(["dvc", "repro"], project, env)
        python = [sys.executable, "-m", "pipeline"]
        sample = statistics.median(timed([*python, "sample"], project, env)[0] for _ in "abc")
        report = statistics.median(timed([*python, "report"], project, env)[0] for _ in "abc")
        noop, change = rebuilds(project, env, 100)
        saved = home / "saved"
        saved.mkdir()
        replace_commands_by_copies(project, saved)
        timed(["dvc", "repro"], project, env)
        floor_noop, floor = rebuilds(project, env, 200)
    print("sample.seed change on the demo (6 categories, N=1,000), medians of 3:")
    print(f"  no-op dvc repro                    {noop:5.2f} s")
    print(f"  seed change: sample + report       {change:5.2f} s   {change / noop:4.2f}x the no-op")
    print(f"    their commands alone             {sample:5.2f} s + {report:.2f} s")
    print(
        f"  DVC's own cost (commands copy)     {floor:5.2f} s   {floor / floor_noop:4.2f}x its "
        f"no-op ({floor_noop:.2f} s)"
    )
    print(f"  target 3x leaves the commands      {3 * noop - floor:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
