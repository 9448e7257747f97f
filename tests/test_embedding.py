"""The t-SNE layout: same bytes in any process, whatever the CPU kernels and thread count; a
metric that counts what it says; maps that group the real drawings' categories far better than
the PCA of their pixels; and the C it runs on (own exp/log, exact neighbours, eigenvectors,
Barnes-Hut) checked against references."""

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
NPY_MASK = "X86_V3 X86_V4 AVX512_ICL"  # numpy 2.4's names: AVX2, FMA3 and the AVX-512 family

# Embeds 600 heads with t-SNE on 400 of them (the rest placed by their neighbours), so both
# paths of `embed` run, with the t-SNE up to argv[3] points exact (else Barnes-Hut's) on
# argv[4] threads, and writes the coordinates' bytes.
SCRIPT = """
import sys
import numpy as np
from pipeline.reportkit import embedding
embedding.SUBSAMPLE = 400
embedding.EXACT_UP_TO = int(sys.argv[3])
embedding.THREADS = int(sys.argv[4])
bitmaps = np.load(sys.argv[1])
coords = embedding.embed(bitmaps, "tsne", seed=7)
open(sys.argv[2], "wb").write(coords.tobytes())
"""


@pytest.fixture(scope="module")
def real_heads(heads: Path) -> tuple[np.ndarray, np.ndarray]:
    """Bitmaps rendered (as Google renders numpy_bitmap) from the simplified heads of 100
    categories, in a seeded shuffled order so that no layout profits from the file order."""
    from pipeline.formats.render import render_bitmaps

    drawings, labels = [], []
    for index, path in enumerate(sorted((heads / "simplified").glob("*.ndjson"))):
        lines = path.read_bytes().splitlines()
        drawings += [orjson.loads(line)["drawing"] for line in lines]
        labels += [index] * len(lines)
    bitmaps = render_bitmaps(drawings).reshape(len(drawings), -1)
    order = np.random.default_rng(0).permutation(len(drawings))
    return bitmaps[order], np.asarray(labels)[order]


@pytest.mark.parametrize("exact_up_to", [embedding.EXACT_UP_TO, 0], ids=["exact", "barnes_hut"])
def test_two_fresh_processes_give_the_same_bytes(real_heads, tmp_path, exact_up_to):
    np.save(tmp_path / "bitmaps.npy", real_heads[0][:600])
    outputs = []
    # The second process runs on 2 threads, with OpenBLAS's oldest kernels and numpy's AVX2,
    # FMA and AVX-512 loops masked: other CPUs, as far as this one can stand in for them.
    other_cpu = {"OPENBLAS_CORETYPE": "Prescott", "NPY_DISABLE_CPU_FEATURES": NPY_MASK}
    for name, threads, cpu in (("a", "1", {}), ("b", "2", other_cpu)):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, **cpu}
        out = tmp_path / f"{name}.bin"
        subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                tmp_path / "bitmaps.npy",
                out,
                str(exact_up_to),
                threads,
            ],
            check=True,
            cwd=ROOT,
            env=env,
        )
        outputs.append(out.read_bytes())
    assert len(outputs[0]) == 600 * 2 * 4
    assert outputs[0] == outputs[1]
    coords = np.frombuffer(outputs[0], np.float32).reshape(600, 2)
    assert np.isfinite(coords).all() and len(np.unique(coords, axis=0)) > 500


@pytest.mark.parametrize("exact_up_to", [embedding.EXACT_UP_TO, 0], ids=["exact", "barnes_hut"])
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
    """pipeline/native/_tsne.c against the textbook gradient, written out in numpy for 7 points."""
    from pipeline.native._tsne import descend

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


def _ulps(found: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|found - reference| in units of the last place of the double nearest the reference."""
    nearest_double = reference.astype(np.float64)
    return (np.abs(found - reference) / np.spacing(np.abs(nearest_double))).astype(np.float64)


def _portable(values: np.ndarray, which: int) -> np.ndarray:
    from pipeline.native._space import elementwise

    out = np.empty_like(values)
    elementwise(np.ascontiguousarray(values), out, which)
    return out


def test_own_exp_is_within_one_ulp_over_its_whole_range():
    """Against the x87 long double's exp (64-bit mantissa: 11 bits to spare), over 4 million
    arguments: evenly spread over the normal range, random, and those near 0."""
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            np.linspace(-708.3, 709.7, 2_000_001),
            rng.uniform(-40, 0, 1_000_000),  # where the affinities' weights live
            rng.uniform(-1e-3, 1e-3, 500_000),
            rng.normal(0, 1e-12, 500_000),
        ]
    )
    found = _portable(x, 0)
    assert _ulps(found, np.exp(x.astype(np.longdouble))).max() <= 1.0
    specials = _portable(np.array([0.0, -800.0, 800.0, -np.inf, np.inf]), 0)
    assert specials.tolist() == [1.0, 0.0, np.inf, 0.0, np.inf]


def test_own_log_is_within_three_ulp_over_its_whole_range():
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            np.exp(np.linspace(-708, 709, 2_000_001)),
            rng.uniform(0.5, 2.0, 1_000_000),
            1 + rng.uniform(-1e-6, 1e-6, 500_000),
            np.array([5e-324, 1e-310, 2.2250738585072014e-308, 1.7976931348623157e308]),
        ]
    )
    x = x[x != 1.0]
    found = _portable(x, 1)
    assert _ulps(found, np.log(x.astype(np.longdouble))).max() <= 3.0
    assert _portable(np.array([1.0, 0.0, np.inf]), 1).tolist() == [0.0, -np.inf, np.inf]
    assert np.isnan(_portable(np.array([-1.0, np.nan]), 1)).all()


@pytest.mark.parametrize("width", [2, 50, 441])
def test_nearest_is_brute_force_exactly_with_ties_by_index(width):
    rng = np.random.default_rng(width)
    points = rng.normal(size=(700, width))
    points[350:400] = points[300:350]  # exact duplicates: equal distances, ties by index
    points[::7, 0] = np.round(points[::7, 0])  # and some shared coordinates
    queries = np.concatenate([points[:100], rng.normal(size=(60, width))])
    for rows, exclude_self in ((points, True), (queries, False)):
        indices, distances = embedding.nearest(rows, points, 12, exclude_self)
        squares = ((rows[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)
        if exclude_self:
            np.fill_diagonal(squares, np.inf)
        order = np.argsort(squares, axis=1, kind="stable")[:, :12]
        assert (indices == order).all()
        expected = np.sqrt(np.take_along_axis(squares, order, axis=1))
        assert np.allclose(distances, expected, rtol=1e-13)


def test_nearest_of_integer_pixels_is_brute_force_exactly(real_heads):
    pixels = real_heads[0][:900]
    pixels = np.concatenate([pixels, pixels[:100]])  # duplicates: ties go to the lower index
    indices, distances = embedding.nearest(pixels, pixels, 10, exclude_self=True)
    wide = pixels.astype(np.int64)
    squares = ((wide[:, None, :] - wide[None, :, :]) ** 2).sum(axis=2).astype(np.float64)
    np.fill_diagonal(squares, np.inf)
    order = np.argsort(squares, axis=1, kind="stable")[:, :10]
    assert (indices == order).all()
    assert (distances == np.sqrt(np.take_along_axis(squares, order, axis=1))).all()
    assert (indices[900:, 0] == np.arange(100)).all()  # each copy's nearest is its original


def test_principal_axes_are_numpys_eigenvectors():
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(400, 60)) * np.linspace(3, 0.1, 60)
    centred = rows - rows.mean(axis=0)
    axes = embedding.top_axes(centred.T @ centred, 10)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    cosines = (axes * vectors[:, ::-1][:, :10]).sum(axis=0)
    assert np.allclose(np.abs(cosines), 1.0, atol=1e-12)
    assert np.allclose(axes.T @ axes, np.eye(10), atol=1e-12)
    projected = embedding.principal_components(rows, 10)
    assert np.allclose(projected, centred @ axes, atol=1e-10)


def test_the_thread_count_changes_no_bit(real_heads, monkeypatch):
    """Every C loop on 1 and on 2 threads, Barnes-Hut and the placement included."""
    bitmaps = real_heads[0][:700]
    monkeypatch.setattr(embedding, "SUBSAMPLE", 500)
    monkeypatch.setattr(embedding, "EXACT_UP_TO", 0)
    found = []
    for threads in (1, 2):
        monkeypatch.setattr(embedding, "THREADS", threads)
        features = embedding.oriented_gradients(bitmaps)
        points = embedding.principal_components(features, 50)
        neighbours, distances = embedding.nearest(points, points, 30, exclude_self=True)
        joint = embedding.affinities(neighbours, distances, 10.0)
        coords = embed(bitmaps, "tsne", seed=3)
        found.append([features, points, neighbours, distances, *joint, coords])
    for one, two in zip(*found, strict=True):
        assert one.tobytes() == two.tobytes()


def test_barnes_hut_lays_out_as_the_exact_gradient_does(real_heads, monkeypatch):
    """On the 2,500 real heads, the same start and affinities: the two descents group the
    categories alike, and Barnes-Hut's map stays close to the exact one's neighbourhoods."""
    bitmaps, labels = real_heads
    exact = embed(bitmaps, "tsne", seed=0)
    monkeypatch.setattr(embedding, "EXACT_UP_TO", 0)
    approximate = embed(bitmaps, "tsne", seed=0)
    scores = knn_agreement(exact, labels), knn_agreement(approximate, labels)
    assert abs(scores[0] - scores[1]) < 0.015, scores
    near_exact, _ = embedding.nearest(exact, exact, 10, exclude_self=True)
    near_bh, _ = embedding.nearest(approximate, approximate, 10, exclude_self=True)
    shared = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(near_exact, near_bh, strict=True)])
    assert shared > 0.5, shared
