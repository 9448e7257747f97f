"""The headline figures of the join and the profile: the DVC metrics files reports/join.json and
reports/profile.json.

`dvc exp show` gives every number of a metrics file a column, so these files hold a fixed
handful of figures whatever the number of categories; the per-category figures go to
reports/join_categories.json and reports/profile_categories.json (in git, for `git diff` and
scripts, and not DVC metrics). At 345 categories they would be thousands of columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from pipeline.stats.profile import recognized_by_country
from pipeline.store import atomic

JOIN_FIGURES = ("drawings", "format", "alignment_agreement")


def join_figures(summary: dict) -> dict:
    """The join's headline: drawings, format, and the lowest alignment agreement of any
    category (the one that would stop the join)."""
    return {key: summary[key] for key in JOIN_FIGURES}


def profile_figures(profile: pa.Table, min_drawings: int) -> dict:
    """The profile's headline over all categories: countries, the recognized share, and the
    countries (with at least `min_drawings` drawings) that the game recognised best and worst."""
    drawings = sum(profile["drawings"].to_pylist())
    ranked = recognized_by_country(profile, min_drawings)

    def country(row: dict | None) -> dict | None:
        return (
            None if row is None else {"country": row["country"], "share": row["recognized_share"]}
        )

    return {
        "countries": len({code or "??" for code in profile["countrycode"].to_pylist()}),
        "recognized_share": round(sum(profile["recognized"].to_pylist()) / max(drawings, 1), 4),
        "recognized_highest": country(ranked[0] if ranked else None),
        "recognized_lowest": country(ranked[-1] if ranked else None),
    }


def write(path: Path, figures: dict) -> None:
    atomic.write_text(path, json.dumps(figures, indent=2, sort_keys=True) + "\n")
