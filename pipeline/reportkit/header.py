"""The page's header: what the report shows, how it was sampled, where the data came from.

A shared report must explain itself without the repository: categories, N of M drawings, the
sampling parameters, the source with its download manifest (URL, size, hashes, limit), the
join's alignment check, and the attribution the dataset's CC BY 4.0 licence asks for.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.params import Params
from pipeline.store.layout import DEMO_DIR

ATTRIBUTION = (
    'Drawings from <a href="https://quickdraw.withgoogle.com/data">The Quick, Draw! Dataset</a>'
    ' by Google, Inc., licensed under <a href="https://creativecommons.org/licenses/by/4.0/">'
    "CC BY 4.0</a>; sampled and laid out by quickdraw-pipeline."
)
#: The bundled demo's credit: its doodles are the project's own, not Google's.
DEMO_CREDIT = (
    "Synthetic drawings: the project's bundled demo data (data/demo, made by "
    "<code>python -m pipeline demo</code>), not drawings from Google's dataset; its key_ids, "
    "countries and dates are made up. Sampled and laid out by quickdraw-pipeline."
)
LISTED_CATEGORIES = 8  # more categories than this: the header says how many, names collapsed
MANIFEST_FIELDS = ("url", "size", "md5", "crc32c", "etag", "generation", "drawings")


@dataclass(frozen=True)
class Provenance:
    """What the report knows about its inputs beyond the sample itself."""

    total_drawings: int
    join: dict = field(default_factory=dict)  # reports/join.json
    manifests: dict[str, dict] = field(default_factory=dict)  # category -> manifest


def read_manifests(folder: Path | None, categories: tuple[str, ...]) -> dict[str, dict]:
    """The download manifests of the categories that have one (none when `folder` is None)."""
    if folder is None:
        return {}
    found = {}
    for category in categories:
        path = folder / f"{category}.json"
        if path.is_file():
            found[category] = json.loads(path.read_text(encoding="utf-8"))
    return found


def is_demo(params: Params) -> bool:
    """Whether the drawings are the bundled synthetic demo (`layout.DEMO_DIR`), not Google's."""
    return Path(params.dataset.base_url).resolve() == DEMO_DIR.resolve()


def credit_html(params: Params) -> str:
    """The source's credit: Google's CC BY 4.0 attribution, or the demo's synthetic label."""
    return DEMO_CREDIT if is_demo(params) else ATTRIBUTION


def credit_text(params: Params) -> str:
    """The same credit as one line of plain text (the contact sheet's)."""
    if is_demo(params):
        return "Data: synthetic drawings, the project's bundled demo (data/demo), not Google's"
    return (
        "Data: The Quick, Draw! Dataset by Google, Inc., CC BY 4.0 "
        "(https://quickdraw.withgoogle.com/data)"
    )


def ascii_html(value: object) -> str:
    """Escaped, with non-ASCII as character references: the page stays pure ASCII."""
    return html.escape(str(value)).encode("ascii", "xmlcharrefreplace").decode("ascii")


def _alignment(summary: dict | None) -> str:
    if not summary:
        return "not checked"
    score = summary.get("agreement", summary.get("score"))
    return f"{score:.4g} ({summary.get('checked', '?')} re-rendered)"


def _category_rows(params: Params, provenance: Provenance, shown: dict[str, int]) -> str:
    joined = provenance.join.get("categories", {})
    rows = []
    for category in params.dataset.categories:
        info = joined.get(category, {})
        manifest = provenance.manifests.get(category, {})
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{ascii_html(cell)}</td>"
                for cell in (
                    category,
                    f"{shown.get(category, 0):,}",
                    f"{info['drawings']:,}" if "drawings" in info else "?",
                    _alignment(info.get("alignment")),
                    manifest.get("limit") or "none",
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("category", "in sample", "joined", "join alignment", "download limit")
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _manifest_rows(provenance: Provenance) -> str:
    if not provenance.manifests:
        return "<p>No download manifest was given to the report.</p>"
    rows = []
    for category, manifest in sorted(provenance.manifests.items()):
        for name, entry in sorted(manifest.get("files", {}).items()):
            cells = [category, name] + [entry.get(key, "") for key in MANIFEST_FIELDS]
            rows.append(
                "<tr>" + "".join(f"<td>{ascii_html(cell)}</td>" for cell in cells) + "</tr>"
            )
    head = "".join(f"<th>{h}</th>" for h in ("category", "file", *MANIFEST_FIELDS))
    return f"<table class='manifest'><tr>{head}</tr>{''.join(rows)}</table>"


def _category_names(categories: tuple[str, ...]) -> tuple[str, str]:
    """For the lead line, the names when they are few, else their count; and when not listed
    there, the names in a collapsed block."""
    names = ascii_html(", ".join(categories))
    if len(categories) <= LISTED_CATEGORIES:
        return names, ""
    count = f"{len(categories)} categories"
    return count, f"<details class='names'><summary>The {count}</summary>{names}</details>"


def header_html(params: Params, provenance: Provenance, shown: dict[str, int]) -> str:
    """The header's HTML (pure ASCII); `shown` counts the sample's drawings per category."""
    sample = params.sample
    n = sum(shown.values())
    dataset = params.dataset
    filters = "; ".join(
        [
            f"seed {sample.seed}",
            f"countries {', '.join(sample.countries) or 'all'}",
            f"recognized {sample.recognized}",
            f"stratify {sample.stratify}",
        ]
    )
    source = f"{dataset.base_url} ({dataset.drawings} drawings"
    source += f", first {dataset.limit:,} per category)" if dataset.limit else ", all drawings)"
    overall = provenance.join.get("alignment_agreement")
    layout = {
        "tsne": "a t-SNE of the directions the strokes run in: drawings of one kind lie together",
        "pca": "a principal-component projection of the bitmaps: similar drawings lie near "
        "each other",
        "random": "random heights, as in the 2017 original",
    }[params.report.layout]
    named, collapsed = _category_names(dataset.categories)
    lines = [
        f"<p class='lead'><b>{n:,} of {provenance.total_drawings:,} drawings</b> of "
        f"{named}, sampled with {ascii_html(filters)}.</p>",
        collapsed,
        f"<p>Map: {layout}. Colour by country or category (below the map). Hover a point: "
        "the panel draws it and replays it as it was drawn (click to replay). Choose "
        "categories in the search box or click bars to filter (click again to undo); "
        "box-select points to count them per country.</p>",
        f"<p>Source: {ascii_html(source)}"
        + (f"; join alignment {overall:.4g}" if overall is not None else "")
        + ".</p>",
        f"<p class='attribution'>{credit_html(params)}</p>",
        "<details><summary>Per category, and the download manifest</summary>",
        _category_rows(params, provenance, shown),
        _manifest_rows(provenance),
        "</details>",
    ]
    return "\n".join(line for line in lines if line)
