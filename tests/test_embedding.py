"""The t-SNE layout: same bytes in any process, a metric that counts what it says, and maps that
group the real drawings' categories far better than the PCA of their pixels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from pipeline.reportkit import embedding
from pipeline.reportkit.drawings import map_coordinates
from pipeline.reportkit.embedding import embed, knn_agreement

ROOT = Path(__file__).resolve().parents[1]

# Embeds 600 heads with t-SNE on 400 of them (the rest placed by their neighbours), so both
# paths of `embed` run, with the t-SNE up to argv[3] points exact (else openTSNE's), and writes
# the coordinates' bytes.
SCRIPT = """
import sys
import numpy as np
from pipeline.reportkit import embedding
embedding.SUBSAMPLE = 400
embedding.EXACT_UP_TO = int(sys.argv[3])
bitmaps = np.load(sys.argv[1])
coords = embedding.embed(bitmaps, "tsne", seed=7)
open(sys.argv[2], "wb").write(coords.tobytes())
"""


@pytest.fixture(scope="module")
def real_heads(heads: Path) -> tuple[np.ndarray, np.ndarray]:
    """Bitmaps rendered (as Google renders numpy_bitmap) from the simplified heads of 100
    categories, in a seeded shuffled order so that no layout profits from the file order."""
    from pipeline.render import render_bitmaps

    drawings, labels = [], []
    for index, path in enumerate(sorted((heads / "simplified").glob("*.ndjson"))):
        lines = path.read_bytes().splitlines()
        drawings += [orjson.loads(line)["drawing"] for line in lines]
        labels += [index] * len(lines)
    bitmaps = render_bitmaps(drawings).reshape(len(drawings), -1)
    order = np.random.default_rng(0).permutation(len(drawings))
    return bitmaps[order], np.asarray(labels)[order]


@pytest.mark.parametrize("exact_up_to", [embedding.EXACT_UP_TO, 0], ids=["exact", "opentsne"])
def test_two_fresh_processes_give_the_same_bytes(real_heads, tmp_path, exact_up_to):
    np.save(tmp_path / "bitmaps.npy", real_heads[0][:600])
    outputs = []
    # The second process is told to use more threads: the embedding pins its own.
    for name, threads in (("a", "1"), ("b", "2")):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        out = tmp_path / f"{name}.bin"
        subprocess.run(
            [sys.executable, "-c", SCRIPT, tmp_path / "bitmaps.npy", out, str(exact_up_to)],
            check=True,
            cwd=ROOT,
            env=env,
        )
        outputs.append(out.read_bytes())
    assert len(outputs[0]) == 600 * 2 * 4
    assert outputs[0] == outputs[1]
    coords = np.frombuffer(outputs[0], np.float32).reshape(600, 2)
    assert np.isfinite(coords).all() and len(np.unique(coords, axis=0)) > 500


@pytest.mark.parametrize("exact_up_to", [embedding.EXACT_UP_TO, 0], ids=["exact", "opentsne"])
def test_tsne_groups_real_categories_at_least_twice_as_well_as_pca(
    real_heads, monkeypatch, exact_up_to
):
    bitmaps, labels = real_heads
    monkeypatch.setattr(embedding, "EXACT_UP_TO", exact_up_to)
    tsne = knn_agreement(embed(bitmaps, "tsne", seed=0), labels)
    pca = knn_agreement(map_coordinates(bitmaps.reshape(-1, 28, 28), "pca", seed=0), labels)
    pixels = knn_agreement(bitmaps, labels)
    assert len(set(labels.tolist())) == 100
    assert tsne >= 2 * pca, (tsne, pca, pixels)
    assert tsne > pixels, (tsne, pixels)  # better than the pixels' own neighbours


def test_knn_agreement_on_a_known_case():
    coords = np.array([[0.0, 0], [1, 0], [3, 0], [4, 0], [10, 0]])
    labels = np.array(["a", "a", "b", "b", "b"])
    # 2 nearest: 0 -> 1 (a), 2 (b); 1 -> 0, 2; 2 -> 3, 1; 3 -> 2, 1; 4 -> 3, 2 (both b)
    assert knn_agreement(coords, labels, k=2) == pytest.approx((4 * 0.5 + 1.0) / 5)
    assert knn_agreement(coords, labels, k=1) == 1.0  # every nearest one is of its kind
    # A tie goes to the lower index: 1 is as far from 0 as from 2, and takes 0's label.
    assert knn_agreement(np.array([[0.0], [1], [2]]), np.array([0, 0, 1]), k=1) == 2 / 3
    # k larger than the points available counts every other point.
    assert knn_agreement(coords[:2], labels[:2], k=10) == 1.0


def test_embed_handles_tiny_and_degenerate_inputs():
    assert embed(np.zeros((0, 784), np.uint8)).shape == (0, 2)
    assert embed(np.zeros((1, 784), np.uint8)).tolist() == [[0.0, 0.0]]
    blank = embed(np.zeros((40, 784), np.uint8))  # no ink at all: no features, no variance
    assert blank.dtype == np.float32 and np.isfinite(blank).all()
    with pytest.raises(ValueError, match="unknown embedding 'umap'"):
        embed(np.zeros((3, 784), np.uint8), "umap")


def test_placement_puts_a_drawing_beside_its_own_kind(real_heads):
    """Above SUBSAMPLE, drawings not embedded land among the embedded drawings of their
    category about as often as the embedded ones do among each other."""
    bitmaps, labels = real_heads
    saved = embedding.SUBSAMPLE
    embedding.SUBSAMPLE = 1500
    try:
        coords = embed(bitmaps, "tsne", seed=0)
    finally:
        embedding.SUBSAMPLE = saved
    pca = knn_agreement(map_coordinates(bitmaps.reshape(-1, 28, 28), "pca", seed=0), labels)
    assert knn_agreement(coords, labels) >= 2 * pca


def test_affinities_are_symmetric_sum_to_one_and_favour_the_nearest():
    rng = np.random.default_rng(3)
    points = np.concatenate([rng.normal(0, 1, (30, 5)), rng.normal(50, 1, (30, 5))])
    neighbours, distances = embedding.nearest(points, points, 15, exclude_self=True)
    indptr, indices, values = embedding.affinities(neighbours, distances, 5.0)
    dense = np.zeros((60, 60))
    for row in range(60):
        dense[row, indices[indptr[row] : indptr[row + 1]]] = values[indptr[row] : indptr[row + 1]]
    assert np.allclose(dense, dense.T) and dense.sum() == pytest.approx(1.0)
    assert (values > 0).all() and np.diag(dense).max() == 0.0
    assert dense[:30, 30:].max() == 0.0  # the far cluster is no one's neighbour
    # each point's nearest neighbour weighs more than its 15th
    first, last = neighbours[:, 0], neighbours[:, -1]
    assert (dense[np.arange(60), first] > dense[np.arange(60), last]).mean() > 0.9


def test_one_exact_descent_step_is_the_t_sne_formula():
    """pipeline/_tsne.c against the textbook gradient, written out in numpy for 7 points."""
    from pipeline._tsne import descend

    rng = np.random.default_rng(5)
    n, exaggeration = 7, 4.0
    start = rng.normal(0, 1, (n, 2))
    p = rng.uniform(0, 1, (n, n)) * (rng.uniform(0, 1, (n, n)) > 0.4)
    p = np.triu(p, 1) + np.triu(p, 1).T
    p /= p.sum()
    rows, cols = np.nonzero(p)
    indptr = np.searchsorted(rows, np.arange(n + 1)).astype(np.int64)
    x, y = start[:, 0].copy(), start[:, 1].copy()
    steps, gains = [np.zeros(n), np.zeros(n)], [np.ones(n), np.ones(n)]
    values = p[rows, cols]
    descend(x, y, *steps, *gains, indptr, cols.astype(np.int64), values, 1, exaggeration, 0.5)

    diff = start[:, None, :] - start[None, :, :]
    q = 1 / (1 + (diff**2).sum(axis=2))
    np.fill_diagonal(q, 0)
    gradient = ((exaggeration * p * q)[:, :, None] * diff).sum(1)
    gradient -= ((q**2)[:, :, None] * diff).sum(1) / q.sum()
    step = -(n / exaggeration) * 1.2 * gradient  # every gain turned from 1 to 1.2
    length = np.linalg.norm(step, axis=1, keepdims=True)
    step = np.where(length > 5, step / length * 5, step)
    expected = start + step
    expected -= expected.mean(axis=0)
    assert np.allclose(np.column_stack([x, y]), expected, rtol=1e-12, atol=1e-12)
    assert np.allclose(np.column_stack(steps), step) and np.allclose(np.column_stack(gains), 1.2)
