"""The map's layouts: how well each groups real drawings by category, and what it costs,
before (benchmarks/layout_baseline.py: openTSNE above 4,000 drawings, BLAS/LAPACK, bytes that
depend on the CPU) and after (the portable C of pipeline/native/_space.c and
pipeline/native/_tsne.c), side by side in one run.

Quality, on the real heads of the 100 categories in ../shared/quickdraw-heads (2,500 drawings,
bitmaps rendered from the simplified strokes as Google rendered numpy_bitmap, in a seeded
shuffled order): the share of each drawing's 10 nearest map neighbours in its own category
(`embedding.knn_agreement`), beside the same score in 784-d pixel space (the ceiling the issue
names) and in the t-SNE's own feature space; candidates that lost are scored too.

Time, in fresh processes one after another (the cost of the t-SNE layout, imports included),
before and after at N=1,000, 10,000 and 100,000: real heads repeated, each copy shifted by
up to a pixel and its ink scaled, so no two copies are alike. Wall and CPU seconds are both
printed: the machine is shared, and CPU time is what another load cannot inflate.
The whole report stage at N=10,000 and N=100,000 is timed by bench_report.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import orjson
from common import ROOT

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))
from report_samples import jittered

HEADS = ROOT.parent / "shared" / "quickdraw-heads" / "simplified"


def real_heads() -> tuple[np.ndarray, np.ndarray]:
    """(2500, 784) uint8 bitmaps of the heads and their category index, shuffled (seed 0)."""
    from pipeline.formats.render import render_bitmaps

    if not HEADS.is_dir():
        raise SystemExit(f"{HEADS} is missing: the layout benchmark needs the real heads")
    drawings, labels = [], []
    for index, path in enumerate(sorted(HEADS.glob("*.ndjson"))):
        lines = path.read_bytes().splitlines()
        drawings += [orjson.loads(line)["drawing"] for line in lines]
        labels += [index] * len(lines)
    order = np.random.default_rng(0).permutation(len(drawings))
    bitmaps = render_bitmaps(drawings).reshape(len(drawings), -1)
    return bitmaps[order], np.asarray(labels)[order]


SEEDS = range(5)  # the t-SNE's start noise: one seed's score moves by about 0.002
OPENTSNE_BH = "before: tsne, openTSNE's Barnes-Hut (then above 4,000)"


def scores() -> None:
    import layout_baseline

    from pipeline.reportkit import embedding
    from pipeline.reportkit.drawings import map_coordinates

    bitmaps, labels = real_heads()
    images = bitmaps.reshape(-1, 28, 28)
    features = embedding.features(bitmaps)
    fixed = {
        "random (x = sample order, shuffled here)": map_coordinates(images, "random", 0),
        "pca (2 components of the pixels)": map_coordinates(images, "pca", 0),
        "ceiling: 784-d pixel space": bitmaps,
        "ceiling: the features' 50-d space": features,
    }
    seeded = {
        "after: tsne, exact descent (ours up to EXACT_UP_TO)": lambda seed: embedding.embed(
            bitmaps, "tsne", seed
        ),
        "after: tsne, Barnes-Hut descent (ours above)": lambda seed: forced(
            embedding, bitmaps, seed
        ),
        "before: tsne, exact descent": lambda seed: layout_baseline.embed(bitmaps, "tsne", seed),
        OPENTSNE_BH: lambda seed: forced(layout_baseline, bitmaps, seed),
    }
    print(
        f"kNN agreement (k=10) on {len(bitmaps):,} real drawings of 100 categories "
        f"(t-SNE: mean +- sd over seeds {SEEDS.start}..{SEEDS.stop - 1}, then each seed):"
    )
    found = {}
    for name, coordinates in fixed.items():
        found[name] = embedding.knn_agreement(coordinates, labels)
        print(f"  {name:58s} {found[name]:.4f}")
    for name, compute in seeded.items():
        start = time.perf_counter()
        each = [embedding.knn_agreement(compute(seed), labels) for seed in SEEDS]
        found[name] = float(np.mean(each))
        print(
            f"  {name:58s} {found[name]:.4f} +- {np.std(each):.4f}  "
            f"[{' '.join(f'{value:.4f}' for value in each)}]  "
            f"({(time.perf_counter() - start) / len(SEEDS):4.1f} s each)",
            flush=True,
        )
    pca = found["pca (2 components of the pixels)"]
    ours = found["after: tsne, exact descent (ours up to EXACT_UP_TO)"]
    print(
        f"  tsne / pca = {ours / pca:.2f}x (target >= 2x); tsne / pixel space = "
        f"{ours / found['ceiling: 784-d pixel space']:.2f}x; after / before: exact "
        f"{ours / found['before: tsne, exact descent']:.3f}x, Barnes-Hut "
        f"{found['after: tsne, Barnes-Hut descent (ours above)'] / found[OPENTSNE_BH]:.3f}x"
    )


def forced(module, bitmaps: np.ndarray, seed: int) -> np.ndarray:
    """A module's t-SNE as it runs above its EXACT_UP_TO drawings (Barnes-Hut), on these."""
    saved, module.EXACT_UP_TO = module.EXACT_UP_TO, 0
    try:
        return module.embed(bitmaps, "tsne", seed)
    finally:
        module.EXACT_UP_TO = saved


def run(which: str, count: int) -> None:
    """One timing in this fresh process: wall and CPU seconds of the t-SNE layout."""
    bitmaps = jittered(real_heads()[0], count)
    start, cpu = time.perf_counter(), time.process_time()
    if which == "before":
        import layout_baseline as module
    else:
        from pipeline.reportkit import embedding as module
    module.embed(bitmaps, "tsne", seed=42)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(json.dumps({"wall": wall, "cpu": cpu}))


def timings() -> None:
    print("\nthe t-SNE layout in a fresh process (imports included); shared 2-core machine:")
    for count in (1_000, 10_000, 100_000):
        for which in ("before", "after"):
            command = [sys.executable, __file__, "--run", which, str(count)]
            result = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            print(
                f"  {which:6s} N={count:>7,}: {figures['wall']:6.1f} s wall, "
                f"{figures['cpu']:6.1f} s CPU",
                flush=True,
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs=2, metavar=("BEFORE_OR_AFTER", "N"))
    args = parser.parse_args()
    if args.run:
        run(args.run[0], int(args.run[1]))
        return 0
    scores()
    timings()
    return 0


if __name__ == "__main__":
    sys.exit(main())
