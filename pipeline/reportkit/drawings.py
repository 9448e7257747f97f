"""The sample as the report needs it: small typed columns and a reproducible map position.

Every per-drawing value travels as a numeric array (gzip + base64 in Bokeh's JSON) and is
decoded in the browser (names from short lookup lists), which keeps the page near the cost of
its bitmaps: a list of 10,000 strings would cost more than all the other columns together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from iso3166 import countries_by_alpha2

from pipeline.reportkit import embedding
from pipeline.store import schema

OTHER = "other"
UNKNOWN = "??"
SIDE = schema.BITMAP_SIDE
EXACT_FLOAT_LIMIT = 2**53  # integers below this are exact in a float64 (and a JS number)


@dataclass(frozen=True)
class Drawings:
    """One row per sampled drawing, in sample order, as numbers; the names in lookup lists."""

    key_id: np.ndarray  # float64 when every id is exact in it, else the ids as strings
    category: np.ndarray  # uint8/uint16 index into `categories`
    country: np.ndarray  # uint16 index into `countries`
    group: np.ndarray  # uint8 index into `groups`: a top country, or `other`
    recognized: np.ndarray  # uint8 0/1
    time: np.ndarray  # uint32 seconds since 1970, UTC
    bitmaps: np.ndarray  # (n, 28, 28) uint8, row 0 at the top, ink = 255
    categories: list[str]
    countries: list[str]  # by count, descending, then code
    groups: list[str]  # the top countries, then `other` when some drawings fall in it

    def __len__(self) -> int:
        return len(self.bitmaps)

    def country_counts(self) -> np.ndarray:
        return np.bincount(self.country, minlength=len(self.countries))

    def category_counts(self) -> np.ndarray:
        return np.bincount(self.category, minlength=len(self.categories))


# ISO 3166's names where they are too long for a legend or a tooltip line.
SHORT_NAMES = {
    "BO": "Bolivia",
    "CD": "DR Congo",
    "FM": "Micronesia",
    "GB": "United Kingdom",
    "IR": "Iran",
    "KP": "North Korea",
    "KR": "South Korea",
    "LA": "Laos",
    "MD": "Moldova",
    "PS": "Palestine",
    "RU": "Russia",
    "SY": "Syria",
    "TW": "Taiwan",
    "TZ": "Tanzania",
    "US": "United States",
    "VE": "Venezuela",
    "VN": "Vietnam",
}


def country_name(code: str | None) -> str:
    """A short readable name for an ISO 3166 alpha-2 code (the code when it is unknown)."""
    if not code or code == UNKNOWN:
        return "unknown"
    if code in SHORT_NAMES:
        return SHORT_NAMES[code]
    country = countries_by_alpha2.get(code)
    return country.apolitical_name if country else code


def bitmaps_of(sample: pa.Table) -> np.ndarray:
    """The sample's bitmaps as one (n, 28, 28) uint8 array, without copying row by row."""
    column = sample["bitmap"].combine_chunks()
    if len(column) == 0:
        return np.zeros((0, SIDE, SIDE), np.uint8)
    data = np.frombuffer(column.buffers()[1], dtype=np.uint8)
    start = column.offset * schema.BITMAP_BYTES
    return data[start : start + len(column) * schema.BITMAP_BYTES].reshape(-1, SIDE, SIDE)


def _ranked(values: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct values by count (descending, then name) and each value's index in that list."""
    names, inverse, counts = np.unique(
        np.array(values, dtype=object).astype(str), return_inverse=True, return_counts=True
    )
    order = sorted(range(len(names)), key=lambda i: (-counts[i], names[i]))
    rank = np.empty(len(names), np.int64)
    rank[order] = np.arange(len(names))
    return [str(names[i]) for i in order], rank[inverse.reshape(-1)]


def _key_ids(sample: pa.Table) -> np.ndarray:
    keys = schema.to_numpy(sample["key_id"])
    if len(keys) and keys.max() >= EXACT_FLOAT_LIMIT:
        return np.array([str(k) for k in keys.tolist()], dtype=object)
    return keys.astype(np.float64)


def from_sample(sample: pa.Table, categories: tuple[str, ...], top: int) -> Drawings:
    """The report's columns; categories in params order, countries ranked by count."""
    codes = [code or UNKNOWN for code in sample["countrycode"].to_pylist()]
    countries, country = _ranked(codes) if codes else ([], np.zeros(0, np.int64))
    present = set(sample["category"].to_pylist())
    names = [name for name in categories if name in present] or sorted(present)
    lookup = {name: i for i, name in enumerate(names)}
    category = np.array([lookup[name] for name in sample["category"].to_pylist()], np.int64)
    groups = countries[:top] + ([OTHER] if len(countries) > top else [])
    group = np.minimum(country, top)
    seconds = schema.to_numpy(sample["timestamp"].cast(pa.int64())) // 1_000_000
    return Drawings(
        key_id=_key_ids(sample),
        category=category.astype(np.uint8 if len(names) <= 256 else np.uint16),
        country=country.astype(np.uint16),
        group=group.astype(np.uint8),
        recognized=np.array(sample["recognized"].to_pylist(), np.uint8),
        time=seconds.astype(np.uint32),
        bitmaps=bitmaps_of(sample),
        categories=names,
        countries=countries,
        groups=groups,
    )


def map_coordinates(
    bitmaps: np.ndarray, layout: str, seed: int, points: np.ndarray | None = None
) -> np.ndarray:
    """(n, 2) float32 positions: a t-SNE of the drawings (`pipeline.reportkit.embedding`), a PCA
    of the bitmaps, or the 2017 post's random heights. `points`: the t-SNE's input features
    (`embedding.features`), when the caller has computed them already.

    The PCA's covariance is computed from integer pixel values in float64, where every product and
    sum is exact, so it does not depend on the BLAS's summation order; its eigenvectors and the
    projection are the layout's own C (`embedding.top_axes`, `embedding.project`), not LAPACK's
    and BLAS's CPU-dependent kernels: the same bytes on every CPU.
    """
    count = len(bitmaps)
    if layout == "random":
        rng = np.random.default_rng(seed)
        coords = np.column_stack([np.arange(count, dtype=np.float64), rng.random(count)])
        return coords.astype(np.float32)
    if layout == "tsne":
        return embedding.embed(bitmaps.reshape(count, schema.BITMAP_BYTES), "tsne", seed, points)
    if count == 0:
        return np.zeros((0, 2), np.float32)
    pixels = bitmaps.reshape(count, -1).astype(np.float64)
    sums = pixels.sum(axis=0).astype(np.int64)  # exact: below 2**53
    gram = (pixels.T @ pixels).astype(np.int64)  # exact: integer products and sums
    scatter = (count * gram - np.outer(sums, sums)).astype(np.float64)  # count**2 x covariance
    axes = embedding.top_axes(scatter, 2)  # signs fixed: the layout is the same everywhere
    coords = embedding.project(pixels, sums / count, axes) / 255.0
    return coords.astype(np.float32)
