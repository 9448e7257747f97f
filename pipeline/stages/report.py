"""Report stage: the self-contained, byte-deterministic hover report, a PNG contact sheet of the
sample, and DVC metrics. The parts live in `pipeline.reportkit` (contact_sheet.py
draws the PNG).

The stage overlaps its two largest costs: the map's layout is computed in a worker process
while Bokeh is imported and the page's other parts are built (a thread would not do: the
t-SNE's numpy calls and Bokeh's Python code take turns with one GIL). That is why Bokeh's
modules are imported in `render_html`, not here. At the default 1,000 drawings the stage takes
1.4 s instead of 1.9 s.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.params import Params
from pipeline.reportkit import contact_sheet, embedding, likeness, map_table
from pipeline.reportkit.drawings import (  # re-exported for tests and users' scripts
    Drawings,
    bitmaps_of,
    country_name,
    from_sample,
    map_coordinates,
)
from pipeline.reportkit.header import (
    Provenance,
    ascii_html,
    credit_text,
    header_html,
    read_manifests,
)
from pipeline.reportkit.strokes import strokes_of
from pipeline.store import atomic

__all__ = ["ReportInputs", "bitmaps_of", "country_name", "map_coordinates", "run_report"]


@dataclass(frozen=True)
class ReportInputs:
    sample: pa.Table
    provenance: Provenance
    params: Params
    profile: pa.Table | None = None  # data/profile/profile.parquet: "How countries draw it"

    @property
    def total_drawings(self) -> int:
        return self.provenance.total_drawings


def drawings_of(inputs: ReportInputs) -> Drawings:
    return from_sample(
        inputs.sample, inputs.params.dataset.categories, inputs.params.report.top_countries
    )


def coordinates_of(
    inputs: ReportInputs, drawings: Drawings, points: np.ndarray | None = None
) -> np.ndarray:
    params = inputs.params
    return map_coordinates(drawings.bitmaps, params.report.layout, params.sample.seed, points)


def render_html(
    inputs: ReportInputs,
    drawings: Drawings | None = None,
    coords: np.ndarray | Future[np.ndarray] | None = None,
    backend: str | None = None,
    neighbours: np.ndarray | None = None,
) -> str:
    """The whole page, as text; `backend` draws the map ("canvas" or "webgl", by default
    `figures.MAP_BACKEND`). `coords` may still be being computed: it is waited for only when
    the parts that do not need it are built. `coords` and `neighbours`
    (`likeness.neighbours`) are computed here when not given, from one set of features."""
    from pipeline.reportkit import figures, page, profile_view

    backend = backend or figures.MAP_BACKEND
    drawings = drawings or drawings_of(inputs)
    if coords is None or neighbours is None:
        points = embedding.features(drawings.bitmaps)
        neighbours = likeness.neighbours(points) if neighbours is None else neighbours
        coords = coordinates_of(inputs, drawings, points) if coords is None else coords
    params = inputs.params
    strokes = strokes_of(inputs.sample)
    sections = ()
    if inputs.profile is not None:
        sections = (
            profile_view.build_profile_view(
                inputs.profile,
                params.dataset.categories,
                params.profile.min_drawings,
                params.report.top_countries,
            ),
        )
    if isinstance(coords, Future):
        coords = coords.result()
    layout = figures.build_layout(
        drawings, strokes, coords, params.report.layout, sections, backend, neighbours
    )
    shown = dict(zip(drawings.categories, drawings.category_counts().tolist(), strict=True))
    for section in sections:
        profile_view.follow(layout.select_one({"name": "category_choice"}), section)
    header = header_html(params, inputs.provenance, shown)
    return page.render_page(layout, page_title(params), header, webgl=backend == "webgl")


def page_title(params: Params) -> str:
    return ascii_html(params.report.title)


def render_contact_sheet(inputs: ReportInputs, drawings: Drawings | None = None) -> bytes:
    """The PNG: the sample's drawings grouped by country, with what and whence on top."""
    from pipeline.reportkit import figures

    drawings = drawings or drawings_of(inputs)
    params = inputs.params
    heading = [
        f"{params.report.title}: {len(drawings):,} of {inputs.total_drawings:,} drawings of "
        f"{', '.join(params.dataset.categories)} (seed {params.sample.seed})",
        credit_text(params),
    ]
    strokes = contact_sheet.Strokes.from_sample(inputs.sample)
    image = contact_sheet.render(drawings, strokes, figures.group_colours(drawings), heading)
    return contact_sheet.png_bytes(image)


def map_scores(drawings: Drawings, coords: np.ndarray, seed: int) -> dict:
    """How well the map groups categories: the share of each drawing's 10 nearest map
    neighbours in its own category, and the same in pixel space (the ceiling to compare with),
    on the same seeded subsample of at most `embedding.SCORED` drawings."""
    rows = embedding.seeded_rows(len(drawings), seed)
    labels = drawings.category[rows]
    pixels = drawings.bitmaps.reshape(len(drawings), -1)[rows]
    return {
        "layout_knn_agreement": round(embedding.knn_agreement(coords[rows], labels), 4),
        "pixel_knn_agreement": round(embedding.knn_agreement(pixels, labels), 4),
    }


def metrics(inputs: ReportInputs, html_bytes: int, png_bytes: int, scores: dict) -> dict:
    sample = inputs.sample
    counts = Counter(code or "??" for code in sample["countrycode"].to_pylist())
    top = min(counts, key=lambda code: (-counts[code], code), default=None)
    recognized = sum(sample["recognized"].to_pylist())
    return {
        "sample_size": sample.num_rows,
        "source_drawings": inputs.total_drawings,
        "countries": len(counts),
        "recognized_share": round(recognized / max(sample.num_rows, 1), 4),
        "top_country": top,  # one figure: all countries are in countries.json (a DVC plot)
        "report_bytes": html_bytes,
        "contact_sheet_bytes": png_bytes,
        **scores,
    }


def country_counts(sample: pa.Table) -> list[dict]:
    """Drawings per country, most first: the data `dvc plots` draws (reports/countries.json)."""
    counts = Counter(code or "??" for code in sample["countrycode"].to_pylist())
    ranked = sorted(counts, key=lambda code: (-counts[code], code))
    return [{"country": code, "drawings": counts[code]} for code in ranked]


def load_inputs(
    sample_path: Path,
    join_summary: Path,
    params: Params,
    manifest_dir: Path | None = None,
    profile_path: Path | None = None,
) -> ReportInputs:
    join = json.loads(join_summary.read_text(encoding="utf-8"))
    manifests = read_manifests(manifest_dir, params.dataset.categories)
    provenance = Provenance(total_drawings=join["drawings"], join=join, manifests=manifests)
    profile = pq.ParquetFile(profile_path).read() if profile_path is not None else None
    return ReportInputs(pq.ParquetFile(sample_path).read(), provenance, params, profile)


def _end_on_interrupt() -> None:
    """The layout worker ends at once on Ctrl-C, silently: the stage itself says it stopped.
    It starts with SIGINT held (`_interrupts_held`), so a Ctrl-C during its start-up waits
    for this default action instead of raising a traceback in multiprocessing's bootstrap."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT held in this thread while it starts the worker (which inherits the mask); a
    Ctrl-C meanwhile is delivered, not lost, when the mask is restored."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def run_report(
    sample_path: Path,
    join_summary: Path,
    params: Params,
    out_dir: Path,
    manifest_dir: Path | None = None,
    profile_path: Path | None = None,
    map_path: Path | None = None,
) -> dict:
    """Write reports/<name>.html, <name>.png, metrics.json and countries.json atomically, and
    with `map_path` the map as data (pipeline/reportkit/map_table.py).

    `manifest_dir` is the download stage's `data/raw/manifest`; without it the header says
    that no manifest was given. With `profile_path` (data/profile/profile.parquet) the page
    has the section "How countries draw it".
    """
    inputs = load_inputs(sample_path, join_summary, params, manifest_dir, profile_path)
    drawings = drawings_of(inputs)
    points = embedding.features(drawings.bitmaps)  # once: the layout's input and the strip's
    # Linux forks the worker (0.17 s sooner than a fresh start); the neighbours are found
    # here meanwhile
    with ProcessPoolExecutor(1, initializer=_end_on_interrupt) as pool:
        with _interrupts_held():
            computing = pool.submit(
                map_coordinates, drawings.bitmaps, params.report.layout, params.sample.seed, points
            )
        neighbours = likeness.neighbours(points)
        html_page = render_html(inputs, drawings, computing, neighbours=neighbours)
        html_page = html_page.encode("utf-8")
        coords = computing.result()
    png = render_contact_sheet(inputs, drawings)
    atomic.write_bytes(out_dir / f"{params.report.name}.html", html_page)
    atomic.write_bytes(out_dir / f"{params.report.name}.png", png)
    if map_path is not None:
        map_table.write_map_table(map_path, inputs.sample, coords)
    scores = map_scores(drawings, coords, params.sample.seed)
    result = metrics(inputs, len(html_page), len(png), scores)
    atomic.write_text(out_dir / "metrics.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    countries = json.dumps(country_counts(inputs.sample), indent=2)
    atomic.write_text(out_dir / "countries.json", countries + "\n")
    return result
