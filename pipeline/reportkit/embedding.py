"""The map's default layout: a seeded t-SNE where drawings of one category lie together.

Pixels are a poor measure of likeness for doodles (a circle drawn 2 px to the right shares
few pixels with the first), so each bitmap is described by where its strokes run in which
direction (a histogram of oriented gradients on a 7x7 grid of 4 px cells), reduced to 50
principal components; t-SNE lays those out in 2-D: with the exact gradient up to
`EXACT_UP_TO` drawings, with Barnes-Hut's approximation above (pipeline/native/_tsne.c). Above
`SUBSAMPLE` drawings a seeded subsample is embedded and every other drawing is placed at the
middle (per axis) of its nearest embedded neighbours, which keeps 100,000 drawings within the
report stage's time budget. `benchmarks/bench_layout.py` measures these choices.

Same inputs give the same bytes on any CPU, with 1 or 2 threads: a t-SNE magnifies the last
bit of every number fed to it, so nothing on the way uses BLAS, LAPACK, numpy's reductions or
the C library's exp/log/arctan2 (each rounds by the CPU's kernels or the library's version).
The features, their PCA (own eigensolver), the exact neighbours (ties by index), the
affinities (own exp and log) and both descents are the project's C with a fixed order of
operations (pipeline/native/_space.c, pipeline/native/_tsne.c, pipeline/native/_portable.h);
numpy only does elementwise IEEE arithmetic, sorting and integer work here, whose results do
not vary.
"""

from __future__ import annotations

import math

import numpy as np

from pipeline.native import _space, _tsne

METHODS = ("tsne",)
THREADS = 2  # the C loops' threads: each output is one thread's, so the bytes do not depend on it
CELL = 4  # px: a 7x7 grid of cells over the 28x28 bitmap
ORIENTATIONS = 9  # unsigned gradient directions, 20 degrees each
COMPONENTS = 50
PERPLEXITY = 30.0
EXAGGERATION_ITER = 250
ITER = 125
THETA = 0.5  # Barnes-Hut: a cell this small against its distance counts as one point
SUBSAMPLE = 10_000  # drawings embedded by t-SNE; the rest are placed by their neighbours
PLACEMENT_NEIGHBOURS = 5
SCORED = 5_000  # drawings scored by `knn_agreement` in the report (784-d distances are costly)
_CHUNK = 4096  # rows per block of the integer distances in `nearest`

EXACT_UP_TO = 4_000  # drawings; above, Barnes-Hut's descent is faster


def embed(
    bitmaps: np.ndarray, method: str = "tsne", seed: int = 0, points: np.ndarray | None = None
) -> np.ndarray:
    """(n, 2) float32 map positions of (n, 784) uint8 bitmaps; same inputs, same bytes.
    `points`: their `features`, when the caller has them already."""
    if method not in METHODS:
        raise ValueError(f"unknown embedding {method!r}; known: {', '.join(METHODS)}")
    bitmaps = np.asarray(bitmaps, dtype=np.uint8).reshape(len(bitmaps), 28 * 28)
    count = len(bitmaps)
    if count < 2:
        return np.zeros((count, 2), np.float32)
    if points is None:
        points = features(bitmaps)
    anchors = seeded_rows(count, seed, SUBSAMPLE)
    coords = np.empty((count, 2), np.float64)
    coords[anchors] = tsne(points[anchors], seed)
    rest = np.setdiff1d(np.arange(count), anchors, assume_unique=True)
    if len(rest):
        coords[rest] = _place(points[rest], points[anchors], coords[anchors])
    return coords.astype(np.float32)


def features(bitmaps: np.ndarray) -> np.ndarray:
    """(n, COMPONENTS) float64: the space the t-SNE layout is computed in, and the neighbour
    strip's (oriented gradients reduced to their principal components)."""
    bitmaps = np.asarray(bitmaps, dtype=np.uint8).reshape(len(bitmaps), 28 * 28)
    if len(bitmaps) < 2:
        return np.zeros((len(bitmaps), COMPONENTS), np.float64)
    return principal_components(oriented_gradients(bitmaps), COMPONENTS)


def oriented_gradients(bitmaps: np.ndarray) -> np.ndarray:
    """(n, 441) float64: per 4x4 px cell, the gradient magnitude in each of 9 directions,
    each drawing's histogram as the square roots of its shares (the Hellinger mapping: unit
    length, so heavy and light pens compare alike, and faint strokes count beside bold ones).
    Integer differences, integer sector tests for the direction (pipeline/native/_space.c)."""
    bitmaps = np.ascontiguousarray(bitmaps, np.uint8).reshape(len(bitmaps), 28 * 28)
    out = np.empty((len(bitmaps), (28 // CELL) ** 2 * ORIENTATIONS), np.float64)
    _space.gradients(bitmaps, out, THREADS)
    return out


def principal_components(features: np.ndarray, components: int) -> np.ndarray:
    """The features projected on their first principal axes (signs fixed: largest entry > 0)."""
    features = np.ascontiguousarray(features, np.float64)
    count, width = features.shape
    mean, scatter = np.empty(width), np.empty((width, width))
    _space.scatter(features, count, width, mean, scatter, THREADS)
    return project(features, mean, top_axes(scatter, min(components, width)))


def top_axes(scatter: np.ndarray, count: int) -> np.ndarray:
    """(d, count) unit eigenvectors of a symmetric matrix for its largest eigenvalues, largest
    first, each signed so that its largest entry (the first of equals) is positive."""
    scatter = np.ascontiguousarray(scatter, np.float64)
    width = len(scatter)
    values, axes = np.empty(count), np.empty((width, count))
    _space.top_eigenvectors(scatter, width, count, values, axes)
    axes *= np.where(axes[np.abs(axes).argmax(axis=0), np.arange(count)] < 0, -1.0, 1.0)
    return axes


def project(rows: np.ndarray, mean: np.ndarray, axes: np.ndarray) -> np.ndarray:
    """(n, k) float64 = (rows - mean) @ axes, each entry summed over the dimensions in order."""
    rows = np.ascontiguousarray(rows, np.float64)
    axes = np.ascontiguousarray(axes, np.float64)
    out = np.empty((len(rows), axes.shape[1]))
    mean = np.ascontiguousarray(mean, np.float64)
    _space.project(rows, len(rows), axes.shape[0], mean, axes, axes.shape[1], out, THREADS)
    return out


def tsne(points: np.ndarray, seed: int) -> np.ndarray:
    """t-SNE with exact neighbours, started from the first two principal components (plus a
    seeded trace of noise, so that identical drawings can part): no other random choice."""
    count = len(points)
    perplexity = min(PERPLEXITY, (count - 1) / 3)
    neighbours, distances = nearest(points, points, min(count - 1, int(3 * perplexity)), True)
    start = points[:, :2].copy()
    spread = _deviation(start[:, 0])
    start *= 1e-4 / spread if spread > 0 else 0.0  # openTSNE's scale for an initialisation
    # uniform noise: Generator.random is integer arithmetic, its normal() calls the C library
    start += (np.random.default_rng(seed).random(start.shape) - 0.5) * 2e-6
    return exact_tsne(start, affinities(neighbours, distances, perplexity), count > EXACT_UP_TO)


def _deviation(values: np.ndarray) -> float:
    """The standard deviation, from correctly rounded sums (math.fsum): the same on any CPU."""
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((values - mean) ** 2) / len(values))


def exact_tsne(
    start: np.ndarray,
    joint: tuple[np.ndarray, np.ndarray, np.ndarray],
    barnes_hut: bool = False,
) -> np.ndarray:
    """openTSNE's schedule (early exaggeration, then the rest) with the exact gradient, or
    with Barnes-Hut's (theta `THETA`, `THREADS` threads)."""
    x, y = (np.ascontiguousarray(start[:, axis], np.float64) for axis in (0, 1))
    steps = [np.zeros_like(x), np.zeros_like(x)]
    gains = [np.ones_like(x), np.ones_like(x)]
    indptr, indices, values = joint
    for iterations, exaggeration, momentum in ((EXAGGERATION_ITER, 12.0, 0.5), (ITER, 1.0, 0.8)):
        arguments = (*steps, *gains, indptr, indices, values, iterations, exaggeration, momentum)
        if barnes_hut:
            _tsne.bh_descend(x, y, *arguments, THETA, THREADS)
        else:
            _tsne.descend(x, y, *arguments)
    return np.column_stack([x, y])


def affinities(
    neighbours: np.ndarray, distances: np.ndarray, perplexity: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """t-SNE's joint P over each point's nearest neighbours, as CSR (indptr, indices, values):
    per point a Gaussian whose width gives the perplexity (found by bisection in C, with our
    own exp and log), then symmetrised, P = (P_j|i + P_i|j) / 2n, so that it sums to 1 (each
    entry a sum of at most two terms: the same in any order)."""
    count, k = neighbours.shape
    conditional = np.empty((count, k))
    distances = np.ascontiguousarray(distances, np.float64)
    _tsne.affinities(distances, count, k, float(perplexity), conditional, THREADS)
    return symmetrised(neighbours, conditional)


def symmetrised(
    neighbours: np.ndarray, conditional: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P = (P_j|i + P_i|j) / 2n as CSR from each point's conditional P over its neighbours."""
    count, k = neighbours.shape
    rows = np.repeat(np.arange(count), k)
    both_rows = np.concatenate([rows, neighbours.reshape(-1)])
    both_cols = np.concatenate([neighbours.reshape(-1), rows])
    both = np.concatenate([conditional.reshape(-1), conditional.reshape(-1)]) / (2 * count)
    order = np.lexsort((both_cols, both_rows))
    both_rows, both_cols, both = both_rows[order], both_cols[order], both[order]
    first = np.ones(len(order), bool)
    first[1:] = (both_rows[1:] != both_rows[:-1]) | (both_cols[1:] != both_cols[:-1])
    starts = np.flatnonzero(first)
    values = np.add.reduceat(both, starts)
    indptr = np.zeros(count + 1, np.int64)
    np.cumsum(np.bincount(both_rows[starts], minlength=count), out=indptr[1:])
    return indptr, both_cols[starts].astype(np.int64), values


def nearest(
    queries: np.ndarray, points: np.ndarray, k: int, exclude_self: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest `points` of each query (Euclidean), nearest first, ties by index
    (`exclude_self`: query i is points[i], not its own neighbour)."""
    if np.issubdtype(np.asarray(queries).dtype, np.integer) and np.issubdtype(
        np.asarray(points).dtype, np.integer
    ):
        return _nearest_integers(queries, points, k, exclude_self)
    queries = np.ascontiguousarray(queries, np.float64).reshape(len(queries), -1)
    points = np.ascontiguousarray(points, np.float64).reshape(len(points), -1)
    indices = np.empty((len(queries), k), np.int64)
    squares = np.empty((len(queries), k))
    _space.nearest(
        queries, len(queries), points, len(points), points.shape[1], k, exclude_self,
        indices, squares, THREADS,
    )  # fmt: skip
    return indices, np.sqrt(squares)


def _nearest_integers(
    queries: np.ndarray, points: np.ndarray, k: int, exclude_self: bool
) -> tuple[np.ndarray, np.ndarray]:
    """`nearest` for small integers (pixels): their float64 products and sums are exact in any
    order, so BLAS may compute them; each candidate's key, squared distance x n + index, is
    unique, so the selection cannot depend on how ties are partitioned."""
    queries = np.asarray(queries).reshape(len(queries), -1).astype(np.float64)
    candidates = np.asarray(points).reshape(len(points), -1).astype(np.float64)
    if max(np.abs(queries).max(initial=0), np.abs(candidates).max(initial=0)) > 2**16:
        raise ValueError("nearest: integer coordinates above 65,536 are not exact in float64")
    count = len(candidates)
    squares = (candidates**2).sum(axis=1)  # exact: integers below 2**53
    indices = np.empty((len(queries), k), np.int64)
    found = np.empty((len(queries), k), np.int64)
    for start in range(0, len(queries), _CHUNK):
        block = queries[start : start + _CHUNK]
        exact = (block**2).sum(axis=1)[:, None] + squares[None, :] - 2.0 * (block @ candidates.T)
        keys = exact.astype(np.int64) * count + np.arange(count)
        if exclude_self:
            rows = np.arange(len(block))
            keys[rows, start + rows] = np.iinfo(np.int64).max
        keys = np.sort(np.partition(keys, k - 1, axis=1)[:, :k], axis=1)
        indices[start : start + len(block)] = keys % count
        found[start : start + len(block)] = keys // count
    return indices, np.sqrt(found.astype(np.float64))


def _place(points: np.ndarray, anchors: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Each point at the middle (per axis) of its nearest embedded drawings' positions: a
    choice among them, no arithmetic that could round differently."""
    neighbours, _ = nearest(points, anchors, PLACEMENT_NEIGHBOURS)
    return np.sort(coords[neighbours], axis=1)[:, PLACEMENT_NEIGHBOURS // 2]


def seeded_rows(count: int, seed: int, limit: int = SCORED) -> np.ndarray:
    """All rows, or a seeded subsample of `limit` of them (sorted)."""
    if count <= limit:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, limit, replace=False))


def knn_agreement(coords: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """The share of each point's k nearest other points (Euclidean) that share its label."""
    coords = np.asarray(coords).reshape(len(coords), -1)
    if not np.issubdtype(coords.dtype, np.integer):
        coords = coords.astype(np.float64)
    labels = np.asarray(labels)
    if len(coords) < 2:
        return 0.0
    k = min(k, len(coords) - 1)
    neighbours, _ = nearest(coords, coords, k, exclude_self=True)
    return float(np.count_nonzero(labels[neighbours] == labels[:, None]) / neighbours.size)
