"""Check the positional join instead of trusting it.

Google's maintainers are "pretty sure" that row i of numpy_bitmap/<cat>.npy is line i of the
ndjson files. We re-render a seeded sample of drawings from their strokes the way Google did
(raw strokes simplified first) and compare each with the bitmap at the same position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.formats import strokes
from pipeline.formats.bitmaps import read_rows
from pipeline.formats.render import render_bitmaps

#: A rendered drawing "matches" its bitmap when their pixels correlate at least this much.
#: Aligned files: our renderer vs Google's cairo differs by 0.05 grey levels on average and
#: simplifying raw strokes reproduces Google's to within rounding, so > 95% of drawings match;
#: two different drawings of one category almost never correlate this well.
MATCH_CORRELATION = 0.9
#: Below this share of matches the files are taken to be misaligned.
MIN_AGREEMENT = 0.8


@dataclass(frozen=True)
class Alignment:
    checked: int
    agreement: float  # share of sampled drawings whose bitmap matches their strokes
    mean_correlation: float

    def as_dict(self) -> dict:
        return {
            "checked": self.checked,
            "agreement": round(self.agreement, 4),
            "mean_correlation": round(self.mean_correlation, 4),
        }


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of rows; 1 for two identical blank images.

    The sums are integers (exact, in any order: no SIMD or BLAS summation can change them);
    the only rounding is one correctly rounded division and square root per pair, so the
    result is the same on every machine.
    """
    a = a.reshape(len(a), -1).astype(np.int64)
    b = b.reshape(len(b), -1).astype(np.int64)
    n = a.shape[1]
    sa, sb = a.sum(axis=1), b.sum(axis=1)
    covariance = n * np.einsum("ij,ij->i", a, b) - sa * sb  # n**2 x the covariance
    spread_a = n * np.einsum("ij,ij->i", a, a) - sa * sa
    spread_b = n * np.einsum("ij,ij->i", b, b) - sb * sb
    norms = np.sqrt(spread_a.astype(np.float64)) * np.sqrt(spread_b.astype(np.float64))
    identical = np.all(a == b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, covariance / np.where(norms > 0, norms, 1), identical * 1.0)


def read_strokes(
    path: Path, rows: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, fmt: str
) -> list[list[np.ndarray]]:
    """The simplified strokes of the drawings at these rows and byte spans of a file."""
    columns = strokes.Strokes.from_sample(
        strokes.read_strokes(path, fmt, None, rows, offsets, lengths)
    )
    return [columns.of(index) for index in range(len(columns))]


def sample_rows(count: int, sample: int, seed: int = 0) -> np.ndarray:
    """The seeded rows to re-render, in file order."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, size=min(sample, count), replace=False))


def check_alignment(
    category: str,
    bitmaps: np.memmap,
    drawings_path: Path,
    offsets: np.ndarray,
    lengths: np.ndarray,
    fmt: str,
    sample: int,
    seed: int = 0,
) -> Alignment | None:
    """Render `sample` seeded drawings and compare them with their bitmaps; fail if misaligned.

    `offsets` and `lengths` locate every drawing in `drawings_path`, by row.
    """
    count = len(bitmaps)
    if sample == 0 or count == 0:
        return None
    rows = sample_rows(count, sample, seed)
    drawn = read_strokes(drawings_path, rows, offsets[rows], lengths[rows], fmt)
    rendered = render_bitmaps(drawn)
    scores = correlations(rendered, read_rows(bitmaps, rows))
    # a count over a count, and an exactly rounded sum: no summation order to depend on
    matches = int(np.count_nonzero(scores >= MATCH_CORRELATION))
    result = Alignment(len(rows), matches / len(rows), math.fsum(scores.tolist()) / len(rows))
    if result.agreement < MIN_AGREEMENT:
        raise PipelineError(
            f"{category}: the bitmaps do not show the drawings at the same positions: of "
            f"{result.checked} drawings rendered from their strokes in {drawings_path}, only "
            f"{result.agreement:.0%} match the bitmap at the same row of the npy (aligned "
            f"files: over 95%; mean correlation {result.mean_correlation:.2f}). The two "
            "files are misaligned or from different versions of the dataset: download both "
            "again (`dvc repro`: the join has forgotten their download, so it fetches them)"
        )
    return result
