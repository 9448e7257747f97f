"""The one typed loader for params.yaml: every stage reads its settings through `load_params`."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import ParamError, PipelineError
from pipeline.store.layout import EXTENSIONS, google_categories

DRAWING_FORMATS = ("raw", "simplified", "binary")
RECOGNIZED_CHOICES = ("any", "true", "false")
STRATIFY_CHOICES = ("none", "country")
LAYOUT_CHOICES = ("tsne", "pca", "random")
_COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DatasetParams:
    base_url: str
    drawings: Literal["raw", "simplified", "binary"]
    categories: tuple[str, ...]
    limit: int | None = None


@dataclass(frozen=True)
class JoinParams:
    verify_sample: int = 300  # drawings per category re-rendered to check the alignment


@dataclass(frozen=True)
class SampleParams:
    n: int
    seed: int
    countries: tuple[str, ...] = ()
    recognized: Literal["any", "true", "false"] = "any"
    stratify: Literal["none", "country"] = "none"


@dataclass(frozen=True)
class ReportParams:
    name: str = "quickdraw"
    title: str = "Quick, Draw! drawings"
    layout: Literal["tsne", "pca", "random"] = "tsne"
    top_countries: int = 10


@dataclass(frozen=True)
class ProfileParams:
    min_drawings: int = 30  # countries with fewer are left out of the views and headline figures


@dataclass(frozen=True)
class Params:
    dataset: DatasetParams
    sample: SampleParams
    report: ReportParams = field(default_factory=ReportParams)
    join: JoinParams = field(default_factory=JoinParams)
    profile: ProfileParams = field(default_factory=ProfileParams)


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if value is None:
        raise ParamError(name, "section is missing")
    if not isinstance(value, dict):
        raise ParamError(name, f"must be a mapping, got {type(value).__name__}")
    unknown = set(value) - _KNOWN_KEYS[name]
    if unknown:
        raise ParamError(
            f"{name}.{sorted(unknown)[0]}",
            f"unknown key; known keys are {', '.join(sorted(_KNOWN_KEYS[name]))}",
        )
    return value


def _int(section: dict[str, Any], key: str, where: str, *, minimum: int | None = None) -> int:
    value = section.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(f"{where}.{key}", f"must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ParamError(f"{where}.{key}", f"must be at least {minimum}, got {value}")
    return value


def _choice(section: dict[str, Any], key: str, where: str, choices: tuple[str, ...], default: str):
    value = section.get(key, default)
    if isinstance(value, bool):  # YAML reads an unquoted true/false as a bool
        value = str(value).lower()
    if value not in choices:
        raise ParamError(f"{where}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _str_list(section: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = section.get(key) or []
    if isinstance(value, str) or not isinstance(value, list):
        raise ParamError(f"{where}.{key}", f"must be a list, got {value!r}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ParamError(f"{where}.{key}", f"entries must be non-empty strings, got {item!r}")
    if len(set(value)) != len(value):
        raise ParamError(f"{where}.{key}", "lists an entry twice")
    return tuple(value)


def _dataset(raw: dict[str, Any]) -> DatasetParams:
    section = _section(raw, "dataset")
    base_url = section.get("base_url")
    if not isinstance(base_url, str) or not base_url.strip():
        raise ParamError("dataset.base_url", "must be a URL or a folder in Google's layout")
    drawings = _choice(section, "drawings", "dataset", DRAWING_FORMATS, "simplified")
    extension = section.get("extension", EXTENSIONS[drawings])
    if extension != EXTENSIONS[drawings]:
        raise ParamError(
            "dataset.extension",
            f"must be {EXTENSIONS[drawings]!r} for {drawings} drawings, got {extension!r} "
            "(dvc.yaml names the downloaded file with it)",
        )
    categories = _str_list(section, "categories", "dataset")
    if not categories:
        raise ParamError("dataset.categories", "is empty; list at least one category")
    for category in categories:
        check_category(category)
    limit = section.get("limit")
    if limit is not None:
        limit = _int(section, "limit", "dataset", minimum=1)
    return DatasetParams(base_url.rstrip("/"), drawings, categories, limit)


def check_category(category: str) -> None:
    """Reject a name that is not one of Google's 345 categories, suggesting the closest."""
    known = google_categories()
    if category in known:
        return
    close = difflib.get_close_matches(category, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "see pipeline/categories.txt"
    raise ParamError("dataset.categories", f"{category!r} is not a Quick, Draw! category; {hint}")


def _join(raw: dict[str, Any]) -> JoinParams:
    if "join" not in raw:
        return JoinParams()
    section = _section(raw, "join")
    verify = section.get("verify_sample", JoinParams.verify_sample)
    if isinstance(verify, bool) or not isinstance(verify, int) or not 0 <= verify <= 100_000:
        raise ParamError(
            "join.verify_sample", f"must be an integer from 0 (no check) to 100000, got {verify!r}"
        )
    return JoinParams(verify_sample=verify)


def _profile(raw: dict[str, Any]) -> ProfileParams:
    if "profile" not in raw:
        return ProfileParams()
    section = _section(raw, "profile")
    value = section.get("min_drawings", ProfileParams.min_drawings)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParamError(
            "profile.min_drawings",
            f"must be a whole number of drawings, at least 1, got {value!r}",
        )
    return ProfileParams(min_drawings=value)


def _sample(raw: dict[str, Any]) -> SampleParams:
    section = _section(raw, "sample")
    countries = _str_list(section, "countries", "sample")
    for code in countries:
        if not _COUNTRY_RE.match(code):
            raise ParamError(
                "sample.countries",
                f"{code!r} is not an ISO 3166-1 alpha-2 code (two capital letters, e.g. US)",
            )
    return SampleParams(
        n=_int(section, "n", "sample", minimum=1),
        seed=_int(section, "seed", "sample", minimum=0),
        countries=countries,
        recognized=_choice(section, "recognized", "sample", RECOGNIZED_CHOICES, "any"),
        stratify=_choice(section, "stratify", "sample", STRATIFY_CHOICES, "none"),
    )


#: Longest report.name: 255 bytes per file name on Linux file systems, less `.<name>.html`'s
#: staging prefix and suffix.
MAX_NAME = 200


def _report(raw: dict[str, Any]) -> ReportParams:
    section = _section(raw, "report")
    defaults = ReportParams()
    name = section.get("name", defaults.name)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ParamError(
            "report.name", f"must be a plain file name (letters, digits, _.-), got {name!r}"
        )
    if len(name) > MAX_NAME:
        raise ParamError(
            "report.name",
            f"is {len(name)} characters long; at most {MAX_NAME} (file systems allow 255 bytes "
            "per name, and the report's staging files add to it)",
        )
    title = section.get("title", defaults.title)
    if not isinstance(title, str):
        raise ParamError("report.title", f"must be a string, got {title!r}")
    top = section.get("top_countries", defaults.top_countries)
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 20:
        raise ParamError("report.top_countries", f"must be an integer from 1 to 20, got {top!r}")
    layout = _choice(section, "layout", "report", LAYOUT_CHOICES, defaults.layout)
    return ReportParams(name=name, title=title, layout=layout, top_countries=top)


_KNOWN_KEYS = {
    "dataset": {"base_url", "drawings", "extension", "categories", "limit"},
    "sample": {"n", "seed", "countries", "recognized", "stratify"},
    "report": {"name", "title", "layout", "top_countries"},
    "join": {"verify_sample"},
    "profile": {"min_drawings"},
}


def parse_params(raw: Any) -> Params:
    """Validate an already-parsed params mapping."""
    if not isinstance(raw, dict):
        raise ParamError("(top level)", "must be a mapping of sections")
    return Params(
        dataset=_dataset(raw),
        sample=_sample(raw),
        report=_report(raw),
        join=_join(raw),
        profile=_profile(raw),
    )


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; every problem names the parameter at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run from the repository root") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML: {exc}") from None
    return parse_params(raw)
