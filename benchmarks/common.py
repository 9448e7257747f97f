"""Shared benchmark plumbing: run contenders in fresh processes, alternating, and measure them."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"


def tree_rss(process: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker may exit while we look
            total += member.memory_info().rss
    return total


def measure(command: list[str]) -> tuple[float, int]:
    """Wall time and peak resident memory (whole process tree, sampled every 25 ms) of a run.

    Sampling more often costs the machine enough CPU to slow the contenders down (2 cores).
    """
    start = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        watched = psutil.Process(child.pid)
        while not done.is_set():
            try:
                peak = max(peak, tree_rss(watched))
            except psutil.Error:
                return
            done.wait(0.025)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"benchmark command failed ({code}): {' '.join(command)}")
    return elapsed, peak


def alternate(contenders: dict[str, list[str]], repetitions: int) -> dict[str, dict[str, float]]:
    """Run every contender once per round, in turn, so drift hits all alike; keep medians."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    peaks: dict[str, list[int]] = {name: [] for name in contenders}
    for _ in range(repetitions):
        for name, command in contenders.items():
            elapsed, peak = measure(command)
            times[name].append(elapsed)
            peaks[name].append(peak)
    return {
        name: {"seconds": statistics.median(times[name]), "peak_mib": max(peaks[name]) / 2**20}
        for name in contenders
    }


def python() -> str:
    return sys.executable
