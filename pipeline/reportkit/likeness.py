"""Drawings like the clicked one: its nearest drawings in the space the t-SNE map is computed
from (oriented gradients reduced to principal components), not on the 2-D map, where t-SNE
keeps neighbourhoods only roughly. The features (`embedding.features`) are computed once per
report and shared by the layout and the neighbours; the report ships each drawing's
`NEIGHBOURS` nearest as row indices (`likeness` source), and the strip under the panel
(`neighbours` source: their `key_id`, strokes and country) is filled in the page on a click.
"""

from __future__ import annotations

import numpy as np

from pipeline.reportkit import embedding

NEIGHBOURS = 8


def neighbours(points: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """(n, k) uint32: each drawing's k nearest other drawings, nearest first (ties by index);
    fewer columns when the sample has fewer drawings."""
    k = min(k, len(points) - 1)
    if k <= 0:
        return np.zeros((len(points), 0), np.uint32)
    indices, _ = embedding.nearest(points, points, k, exclude_self=True)
    return indices.astype(np.uint32)
