"""Run in a fresh process by test_portable.py, under one stand-in CPU's environment.

`probe`: what numpy, OpenBLAS and Arrow dispatch to here, as JSON (the test checks that the
environment took effect: numpy ignores unknown NPY_DISABLE_CPU_FEATURES names silently).
`layout N OUT`: the map's coordinates of N real drawings (the heads of ../shared, each copy
shifted by up to a pixel and its ink scaled, as benchmarks/bench_layout.py does), as bytes in
OUT.tsne and OUT.pca.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADS = ROOT.parent / "shared" / "quickdraw-heads" / "simplified"


def probe() -> dict:
    import numpy as np
    import pyarrow as pa
    from numpy._core._multiarray_umath import __cpu_features__
    from threadpoolctl import threadpool_info

    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    return {
        "numpy": {name: bool(on) for name, on in __cpu_features__.items()},
        "numpy_version": np.__version__,
        "blas": [
            (pool["internal_api"], pool["architecture"], pool["num_threads"]) for pool in blas
        ],
        "arrow": pa.runtime_info().simd_level,
        "cpus": len(os.sched_getaffinity(0)),
    }


def real_drawings(count: int):
    import orjson
    from report_samples import jittered

    from pipeline.formats.render import render_bitmaps

    drawings = [
        orjson.loads(line)["drawing"]
        for path in sorted(HEADS.glob("*.ndjson"))
        for line in path.read_bytes().splitlines()
    ]
    return jittered(render_bitmaps(drawings), count)


def layouts(count: int, out: Path) -> None:
    from pipeline.reportkit.drawings import map_coordinates

    images = real_drawings(count)
    for layout in ("tsne", "pca"):
        out.with_suffix(f".{layout}").write_bytes(map_coordinates(images, layout, 0).tobytes())


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1] == "probe":
        print(json.dumps(probe()))
    else:
        layouts(int(sys.argv[2]), Path(sys.argv[3]))
