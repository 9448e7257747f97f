"""The same bytes on every machine: this CPU standing in for others.

Each configuration is a fresh set of processes under another CPU's choices: OpenBLAS forced to
another family's kernels (OPENBLAS_CORETYPE), numpy's SIMD dispatch masked
(NPY_DISABLE_CPU_FEATURES, numpy 2.4's group names: old names such as AVX2 mask nothing, so
every configuration first checks that its mask and kernels took effect), Arrow's SIMD level,
and 1 or 2 threads (BLAS/OpenMP pools, and the CPUs the project's own workers count). In each
the whole demo pipeline is rebuilt (`dvc repro -f` in a copy of the project) and the map is
laid out at N=10,000 and N=20,000 on the real heads; every output must have the same bytes
in every configuration.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import ROOT, isolated_environment, run

PROBE = Path(__file__).with_name("portable_probe.py")
MASK_AVX2_AND_UP = "X86_V3 X86_V4 AVX512_ICL"  # AVX2, FMA3 and the AVX-512 family
MASK_AVX512 = "X86_V4 AVX512_ICL"
#: (OpenBLAS core type, the kernels OpenBLAS then reports, numpy mask, Arrow SIMD level, threads)
CONFIGS = [
    ("SkylakeX", "SkylakeX", "", "AVX512", 2),
    ("Prescott", "Katmai", MASK_AVX2_AND_UP, "NONE", 1),
    ("Nehalem", "Nehalem", MASK_AVX2_AND_UP, "SSE4_2", 2),
    ("SandyBridge", "Sandybridge", MASK_AVX512, "AVX", 1),
    ("Haswell", "Haswell", MASK_AVX512, "AVX2", 2),
    ("Zen", "Haswell", "", "NONE", 1),
]
SIZES = (10_000, 20_000)
#: The outputs compared: every stage's outputs and metrics, and the lock that records them.
OUTPUTS = ("data/processed", "data/profile", "data/sample", "reports", "dvc.lock")


def environment(home: Path, coretype: str, mask: str, simd: str, threads: int) -> dict:
    env = isolated_environment(home)
    for name in ("OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES", "ARROW_USER_SIMD_LEVEL"):
        env.pop(name, None)
    env.update(
        OPENBLAS_CORETYPE=coretype,
        ARROW_USER_SIMD_LEVEL=simd,
        OMP_NUM_THREADS=str(threads),
        OPENBLAS_NUM_THREADS=str(threads),
        PYTHONPATH=str(ROOT),
    )
    if mask:
        env["NPY_DISABLE_CPU_FEATURES"] = mask
    return env


def pinned(threads: int) -> list[str]:
    """taskset: the project sizes its own worker pools by the CPUs it may run on."""
    return ["taskset", "-c", ",".join(str(c) for c in range(threads))]


def check_took_effect(env: dict, kernels: str, mask: str, simd: str, threads: int) -> None:
    found = json.loads(
        run([*pinned(threads), sys.executable, str(PROBE), "probe"], ROOT, env).stdout
    )
    features = found["numpy"]
    assert found["blas"] and all(
        arch.lower() == kernels.lower() and count == threads for _, arch, count in found["blas"]
    ), f"OpenBLAS did not take {env['OPENBLAS_CORETYPE']}/{threads} threads: {found['blas']}"
    masked = {"X86_V3", "X86_V4"} if mask == MASK_AVX2_AND_UP else {"X86_V4"} if mask else set()
    assert not any(features[name] for name in masked), f"numpy ignored the mask {mask!r}"
    assert found["arrow"] == simd.lower(), f"Arrow runs at {found['arrow']}, not {simd}"
    assert found["cpus"] == threads


def digests(project: Path) -> dict[str, str]:
    """sha256 of every output file, by path relative to the project."""
    out = {}
    for name in OUTPUTS:
        path = project / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            out[str(file.relative_to(project))] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with its demo data, copied once; each configuration copies it again."""
    repo = tmp_path_factory.mktemp("portable") / "project"
    for name in ("pipeline", "data/demo"):
        shutil.copytree(ROOT / name, repo / name, ignore=shutil.ignore_patterns("*.pyc"))
    for name in ("dvc.yaml", "params.yaml", ".gitignore"):
        shutil.copy2(ROOT / name, repo / name)
    return repo


def build(source: Path, home: Path, config: tuple) -> dict[str, str]:
    """Every output's digest under one configuration, each step in fresh processes."""
    coretype, kernels, mask, simd, threads = config
    home.mkdir()
    env = environment(home, coretype, mask, simd, threads)
    check_took_effect(env, kernels, mask, simd, threads)
    project = Path(shutil.copytree(source, home / "project"))
    run(["git", "init", "-q"], project, env)
    run(["dvc", "init", "-q"], project, env)
    run([*pinned(threads), "dvc", "repro", "-f"], project, env)
    found = digests(project)
    for count in SIZES:
        out = home / f"layout-{count}"
        command = [sys.executable, str(PROBE), "layout", str(count), str(out)]
        run([*pinned(threads), *command], ROOT, env)
        for layout in ("tsne", "pca"):
            digest = hashlib.sha256(out.with_suffix(f".{layout}").read_bytes()).hexdigest()
            found[f"layout {layout} at N={count:,}"] = digest
    shutil.rmtree(project)
    return found


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("heads")
def test_every_output_is_the_same_bytes_whatever_the_cpu(source: Path, tmp_path: Path):
    if shutil.which("taskset") is None:
        pytest.skip("taskset (util-linux) is needed to vary the CPUs the pipeline sees")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("two CPUs are needed to run the pipeline on 1 and on 2 of them")
    results = {
        config: build(source, tmp_path / f"config{i}", config) for i, config in enumerate(CONFIGS)
    }
    reference_config, reference = next(iter(results.items()))
    differing = {}
    for config, found in results.items():
        assert found.keys() == reference.keys(), (
            f"{config} made other files than {reference_config}"
        )
        for name, digest in found.items():
            if digest != reference[name]:
                differing.setdefault(name, []).append(config[0])
    assert not differing, "outputs whose bytes depend on the CPU (differ from " + (
        f"{reference_config[0]}'s): "
        + "; ".join(f"{name} under {', '.join(cores)}" for name, cores in sorted(differing.items()))
    )
    assert len(reference) > 10
