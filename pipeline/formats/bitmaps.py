"""Google's numpy_bitmap files: opened (and checked) as a memory map, read with plain reads.

A mapped page, once touched, stays in the process's resident memory until the map is closed:
reading a 118 MB category through the map, or even 300 scattered rows (the kernel maps 64 KB
around each fault and reads ahead), costs as much resident memory as the file. Plain reads
cost only the rows asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.errors import PipelineError
from pipeline.store import schema


def open_bitmaps(path: Path) -> np.memmap:
    """Map a numpy_bitmap file, checking it is uint8 rows of 28x28 pixels (no pixel is read)."""
    try:
        bitmaps = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run the download stage first") from None
    except ValueError as exc:
        raise PipelineError(f"{path}: not a valid .npy file ({exc}); download it again") from None
    if bitmaps.dtype != np.uint8 or bitmaps.ndim != 2 or bitmaps.shape[1] != schema.BITMAP_BYTES:
        raise PipelineError(
            f"{path}: expected uint8 rows of {schema.BITMAP_BYTES} pixels (28x28), "
            f"got {bitmaps.dtype} with shape {bitmaps.shape}"
        )
    return bitmaps


def read_block(bitmaps: np.memmap, start: int, stop: int) -> bytes:
    """Rows start..stop-1, as one bytes object of (stop - start) * 784 pixels."""
    size = schema.BITMAP_BYTES
    with open(bitmaps.filename, "rb") as handle:
        return os.pread(handle.fileno(), (stop - start) * size, bitmaps.offset + start * size)


def read_rows(bitmaps: np.memmap, rows: np.ndarray) -> np.ndarray:
    """The given rows, shape (len(rows), 784)."""
    size = schema.BITMAP_BYTES
    out = np.empty((len(rows), size), np.uint8)
    with open(bitmaps.filename, "rb") as handle:
        for index, row in enumerate(rows.tolist()):
            out[index] = np.frombuffer(
                os.pread(handle.fileno(), size, bitmaps.offset + row * size), np.uint8
            )
    return out
