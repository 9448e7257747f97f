"""Check the positional join instead of trusting it.

Google's maintainers are "pretty sure" that row i of numpy_bitmap/<cat>.npy is line i of the
ndjson files. We re-render a seeded sample of drawings from their strokes the way Google did
(raw strokes simplified first) and compare each with the bitmap at the same position.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from pipeline import binary
from pipeline.errors import PipelineError
from pipeline.render import render_bitmaps, simplify_strokes

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
    """Pearson correlation of each pair of rows; 1 for two identical blank images."""
    a = a.reshape(len(a), -1).astype(np.float64)
    b = b.reshape(len(b), -1).astype(np.float64)
    a -= a.mean(axis=1, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    norms = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    dots = (a * b).sum(axis=1)
    identical = np.all(a == b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, dots / np.where(norms > 0, norms, 1), identical.astype(float))


def read_strokes(path: Path, offsets: np.ndarray, lengths: np.ndarray, fmt: str) -> list:
    """The simplified strokes of the drawings at these byte spans of a drawings file."""
    drawings = []
    with path.open("rb") as handle:
        for offset, length in zip(offsets.tolist(), lengths.tolist(), strict=True):
            handle.seek(offset)
            chunk = handle.read(length)
            if fmt == "binary":
                drawings.append(binary.read_strokes(chunk, 0))
                continue
            drawing = orjson.loads(chunk)["drawing"]
            drawings.append(simplify_strokes(drawing) if fmt == "raw" else drawing)
    return drawings


def sample_rows(count: int, sample: int, seed: int = 0) -> np.ndarray:
    """The seeded rows to re-render, in file order."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, size=min(sample, count), replace=False))


def line_spans(path: Path, rows: np.ndarray, chunk: int = 16 << 20) -> tuple[np.ndarray, ...]:
    """Byte offset and length of the given (sorted) line numbers, by counting newlines."""
    offsets = np.zeros(len(rows), np.int64)
    lengths = np.zeros(len(rows), np.int64)
    wanted = line = line_start = position = 0
    with path.open("rb") as handle:
        while wanted < len(rows) and (data := handle.read(chunk)):
            ends = data.count(b"\n")
            if line + ends <= rows[wanted]:  # no wanted line ends in this chunk: skip it
                if ends:
                    line += ends
                    line_start = position + data.rfind(b"\n") + 1
            else:
                at = 0
                while (newline := data.find(b"\n", at)) >= 0:
                    if wanted < len(rows) and line == rows[wanted]:
                        offsets[wanted] = line_start
                        lengths[wanted] = position + newline - line_start
                        wanted += 1
                    line += 1
                    line_start = position + newline + 1
                    at = newline + 1
            position += len(data)
    if wanted < len(rows) and line == rows[wanted] and line_start < position:
        offsets[wanted], lengths[wanted] = line_start, position - line_start  # no final newline
        wanted += 1
    if wanted < len(rows):
        raise ValueError("fewer lines than bitmaps")
    return offsets, lengths


def check_alignment_in_file(
    category: str, bitmaps_path: Path, drawings_path: Path, fmt: str, sample: int
) -> Alignment | None:
    """`check_alignment` on its own: finds the sampled lines itself, so it can run while the
    join parses the file. None when the counts differ (the join says so)."""
    bitmaps = np.load(bitmaps_path, mmap_mode="r")
    rows = sample_rows(len(bitmaps), sample)
    if len(rows) == 0:
        return None
    try:
        offsets, lengths = line_spans(drawings_path, rows)
    except ValueError:
        return None
    return _compare(category, bitmaps, rows, drawings_path, offsets, lengths, fmt)


def check_alignment(
    category: str,
    bitmaps: np.ndarray,
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
    return _compare(category, bitmaps, rows, drawings_path, offsets[rows], lengths[rows], fmt)


def _compare(
    category: str,
    bitmaps: np.ndarray,
    rows: np.ndarray,
    drawings_path: Path,
    offsets: np.ndarray,
    lengths: np.ndarray,
    fmt: str,
) -> Alignment:
    """Render the drawings at `rows` (found at `offsets`, `lengths`) and score the agreement."""
    rendered = render_bitmaps(read_strokes(drawings_path, offsets, lengths, fmt))
    scores = correlations(rendered, np.asarray(bitmaps[rows]))
    result = Alignment(
        len(rows), float(np.mean(scores >= MATCH_CORRELATION)), float(np.mean(scores))
    )
    if result.agreement < MIN_AGREEMENT:
        raise PipelineError(
            f"{category}: the bitmaps do not show the drawings at the same positions: of "
            f"{result.checked} drawings rendered from their strokes in {drawings_path}, only "
            f"{result.agreement:.0%} match the bitmap at the same row of the npy (aligned "
            f"files: over 95%; mean correlation {result.mean_correlation:.2f}). The two "
            "files are misaligned or from different versions of the dataset: download both "
            "again (dvc repro -f download@<category>)"
        )
    return result
