"""quickdraw-pipeline: a reproducible DVC pipeline over Google's Quick, Draw! dataset."""

__version__ = "0.1.0"


def cpus() -> int:
    """The CPUs this process may run on (its affinity, as taskset and containers set it), which
    sizes the stages' worker pools; no output depends on it (tests/test_portable.py)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
