"""The map's layout as it was before it was made portable (for bench_layout.py only): numpy's
and BLAS's CPU-dispatched kernels, the C library's exp/log/arctan2, and openTSNE's Barnes-Hut
and FFT gradients above 4,000 drawings. Its bytes depended on the CPU (issue 16); it is kept
as the yardstick for the portable layout's time and quality."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from pipeline.reportkit import embedding

METHODS = ("tsne",)
THREADS = 1  # fixed, so no result depends on the core count (1 beat 2 in bench_layout.py)
CELL = 4  # px: a 7x7 grid of cells over the 28x28 bitmap
ORIENTATIONS = 9  # unsigned gradient directions, 20 degrees each
COMPONENTS = 50
PERPLEXITY = 30.0
EXAGGERATION_ITER = 250
ITER = 125
INTS_IN_INTERVAL = 3  # FFT grid: interpolation intervals per unit of the map
SUBSAMPLE = 10_000  # drawings embedded by t-SNE; the rest are placed by their neighbours
PLACEMENT_NEIGHBOURS = 5
SCORED = 5_000  # drawings scored by `knn_agreement` in the report (784-d distances are costly)
_CHUNK = 4096  # rows per block: bounds memory for the features and the distance blocks


EXACT_UP_TO = 4_000  # drawings; above, openTSNE is faster even after its 1.1 s import
BARNES_HUT_BELOW = 10_000


def embed(bitmaps: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(n, 2) float32 map positions of (n, 784) uint8 bitmaps; same inputs, same bytes."""
    if method not in METHODS:
        raise ValueError(f"unknown embedding {method!r}; known: {', '.join(METHODS)}")
    bitmaps = np.asarray(bitmaps, dtype=np.uint8).reshape(len(bitmaps), 28 * 28)
    count = len(bitmaps)
    if count < 2:
        return np.zeros((count, 2), np.float32)
    with threadpool_limits(limits=THREADS):
        points = principal_components(oriented_gradients(bitmaps), COMPONENTS)
        anchors = seeded_rows(count, seed, SUBSAMPLE)
        coords = np.empty((count, 2), np.float64)
        coords[anchors] = tsne(points[anchors], seed)
        rest = np.setdiff1d(np.arange(count), anchors, assume_unique=True)
        if len(rest):
            coords[rest] = _place(points[rest], points[anchors], coords[anchors])
    return coords.astype(np.float32)


def oriented_gradients(bitmaps: np.ndarray) -> np.ndarray:
    """(n, 441) float64: per 4x4 px cell, the gradient magnitude in each of 9 directions,
    each drawing's vector scaled to unit length (so heavy and light pens compare alike)."""
    count = len(bitmaps)
    cells = (28 // CELL) ** 2
    out = np.empty((count, cells * ORIENTATIONS), np.float64)
    side = np.arange(28) // CELL
    cell_of = (side[:, None] * (28 // CELL) + side[None, :]).reshape(-1) * ORIENTATIONS
    for start in range(0, count, _CHUNK):
        images = bitmaps[start : start + _CHUNK].reshape(-1, 28, 28).astype(np.float32)
        gy, gx = np.gradient(images, axis=(1, 2))
        magnitude = np.hypot(gx, gy).reshape(len(images), -1)
        angle = np.mod(np.arctan2(gy, gx), np.pi).reshape(len(images), -1)
        direction = np.minimum((angle * (ORIENTATIONS / np.pi)).astype(np.int64), ORIENTATIONS - 1)
        rows = np.arange(len(images))[:, None] * (cells * ORIENTATIONS)
        flat = np.bincount(
            (rows + cell_of + direction).reshape(-1),
            weights=magnitude.reshape(-1),
            minlength=len(images) * cells * ORIENTATIONS,
        )
        out[start : start + len(images)] = flat.reshape(len(images), -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def principal_components(features: np.ndarray, components: int) -> np.ndarray:
    """The features projected on their first principal axes (signs fixed: largest entry > 0)."""
    centred = features - features.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    axes = vectors[:, ::-1][:, : min(components, features.shape[1])]
    axes *= np.where(axes[np.abs(axes).argmax(axis=0), np.arange(axes.shape[1])] < 0, -1, 1)
    return centred @ axes


def tsne(points: np.ndarray, seed: int) -> np.ndarray:
    """t-SNE with exact neighbours, started from the first two principal components (plus a
    seeded trace of noise, so that identical drawings can part): no other random choice."""
    count = len(points)
    perplexity = min(PERPLEXITY, (count - 1) / 3)
    neighbours, distances = nearest(points, points, min(count - 1, int(3 * perplexity)), True)
    start = points[:, :2].copy()
    spread = start[:, 0].std()
    start *= 1e-4 / spread if spread > 0 else 0.0  # openTSNE's scale for an initialisation
    start += np.random.default_rng(seed).normal(scale=1e-6, size=start.shape)
    if count <= EXACT_UP_TO:
        return exact_tsne(start, affinities(neighbours, distances, perplexity))
    return _opentsne(start, neighbours, distances, perplexity)


def exact_tsne(start: np.ndarray, joint: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """The schedule of `_opentsne` (early exaggeration, then the rest) with the exact gradient."""
    from pipeline.native._tsne import descend

    x, y = (np.ascontiguousarray(start[:, axis], np.float64) for axis in (0, 1))
    steps = [np.zeros_like(x), np.zeros_like(x)]
    gains = [np.ones_like(x), np.ones_like(x)]
    indptr, indices, values = joint
    for iterations, exaggeration, momentum in ((EXAGGERATION_ITER, 12.0, 0.5), (ITER, 1.0, 0.8)):
        descend(x, y, *steps, *gains, indptr, indices, values, iterations, exaggeration, momentum)
    return np.column_stack([x, y])


def affinities(
    neighbours: np.ndarray, distances: np.ndarray, perplexity: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t-SNE's joint P over each point's nearest neighbours, as CSR (indptr, indices, values):
    per point a Gaussian whose width gives the perplexity (found by bisection, all rows at once),
    then symmetrised, P = (P_j|i + P_i|j) / 2n, so that it sums to 1."""
    count = len(neighbours)
    squares = distances**2
    squares -= squares[:, :1]  # the nearest at 0: exp() neither under- nor overflows
    low, high = np.zeros(count), np.full(count, np.inf)
    beta = np.ones(count)
    target = np.log(perplexity)
    for _ in range(64):
        weights = np.exp(-beta[:, None] * squares)
        total = weights.sum(axis=1)
        entropy = np.log(total) + beta * (weights * squares).sum(axis=1) / total
        wide = entropy > target  # too many neighbours count: narrow the Gaussian
        low = np.where(wide, beta, low)
        high = np.where(wide, high, beta)
        beta = np.where(np.isinf(high), beta * 2, (low + high) / 2)
    return embedding.symmetrised(neighbours, weights / total[:, None])


def _opentsne(
    start: np.ndarray, neighbours: np.ndarray, distances: np.ndarray, perplexity: float
) -> np.ndarray:
    from openTSNE import TSNEEmbedding, affinity
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    count = len(start)
    affinities = affinity.PerplexityBasedNN(
        perplexity=perplexity, knn_index=PrecomputedNeighbors(neighbours, distances)
    )
    embedding = TSNEEmbedding(
        start,
        affinities,
        **_gradient(count),
        n_jobs=THREADS,
        random_state=0,
    )
    embedding = embedding.optimize(EXAGGERATION_ITER, exaggeration=12, momentum=0.5)
    embedding = embedding.optimize(ITER, momentum=0.8)
    return np.asarray(embedding, dtype=np.float64)


def _gradient(count: int) -> dict:
    """Barnes-Hut below 10,000 points (as openTSNE's own "auto" chooses: the FFT's fixed grid
    makes 1,000 points cost 3.7 s, Barnes-Hut 1.6 s), interpolation on a coarse grid above."""
    if count < BARNES_HUT_BELOW:
        return {"negative_gradient_method": "bh"}
    return {"negative_gradient_method": "fft", "ints_in_interval": INTS_IN_INTERVAL}


def nearest(
    queries: np.ndarray, points: np.ndarray, k: int, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest `points` of each query (Euclidean), nearest first, ties by index."""
    candidates = np.asarray(points, np.float32)
    squares = np.einsum("ij,ij->i", candidates, candidates)
    indices = np.empty((len(queries), k), np.int64)
    distances = np.empty((len(queries), k), np.float64)
    for start in range(0, len(queries), _CHUNK):
        block = queries[start : start + _CHUNK]
        # Candidates ranked in float32 (a query's own norm is the same for all of them, so it
        # is left out); numpy's vectorised float32 partition is several times faster.
        scores = np.asarray(block, np.float32) @ candidates.T
        scores *= -2.0
        scores += squares
        if exclude_self:
            scores[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        part = np.argpartition(scores, k - 1, axis=1)[:, :k]
        part.sort(axis=1)  # a set, whatever order argpartition left it in
        # The chosen ones' distances in float64, from the vectors, then sorted (ties by index).
        exact = np.linalg.norm(points[part] - block[:, None, :], axis=2)
        order = np.lexsort((part, exact), axis=1)
        indices[start : start + len(block)] = np.take_along_axis(part, order, axis=1)
        distances[start : start + len(block)] = np.take_along_axis(exact, order, axis=1)
    return indices, distances


def _place(points: np.ndarray, anchors: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Each point at the median position of its nearest embedded drawings."""
    neighbours, _ = nearest(points, anchors, PLACEMENT_NEIGHBOURS)
    return np.median(coords[neighbours], axis=1)


def seeded_rows(count: int, seed: int, limit: int = SCORED) -> np.ndarray:
    """All rows, or a seeded subsample of `limit` of them (sorted)."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def knn_agreement(coords: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """The share of each point's k nearest other points (Euclidean) that share its label."""
    coords = np.asarray(coords, dtype=np.float64).reshape(len(coords), -1)
    labels = np.asarray(labels)
    if len(coords) < 2:
        return 0.0
    k = min(k, len(coords) - 1)
    with threadpool_limits(limits=THREADS):
        neighbours, _ = nearest(coords, coords, k, exclude_self=True)
    return float((labels[neighbours] == labels[:, None]).mean())
