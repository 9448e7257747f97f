"""The params.yaml loader accepts the shipped file and names the parameter at fault otherwise."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from pipeline.errors import ParamError, PipelineError
from pipeline.params import load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_value(dotted: str, value):
    raw = copy.deepcopy(DEFAULTS)
    section, key = dotted.split(".")
    raw[section][key] = value
    return raw


def test_shipped_params_load():
    params = load_params(ROOT / "params.yaml")
    assert params.dataset.base_url == "data/demo"
    assert "octopus" in params.dataset.categories
    assert params.sample.n >= 1
    assert params.report.layout == "tsne"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("sample.n", 0, "at least 1"),
        ("sample.n", -5, "at least 1"),
        ("sample.n", "many", "integer"),
        ("sample.n", True, "integer"),
        ("sample.seed", 1.5, "integer"),
        ("sample.recognized", "maybe", "any, true, false"),
        ("sample.stratify", "continent", "none, country"),
        ("sample.countries", ["USA"], "alpha-2"),
        ("sample.countries", "US", "must be a list"),
        ("dataset.categories", [], "list at least one"),
        ("dataset.categories", ["octopuss"], "did you mean 'octopus'"),
        ("dataset.categories", ["cat", "cat"], "twice"),
        ("dataset.drawings", "vector", "raw, simplified, binary"),
        ("dataset.extension", "bin", "must be 'ndjson' for simplified drawings"),
        ("dataset.limit", 0, "at least 1"),
        ("dataset.base_url", "", "URL or a folder"),
        ("report.layout", "umap", "tsne, pca, random"),
        ("report.top_countries", 50, "from 1 to 20"),
        ("report.name", "../escape", "plain file name"),
        ("join.verify_sample", -1, "from 0 (no check) to 100000"),
        ("join.verify_sample", "all", "from 0 (no check) to 100000"),
        ("profile.min_drawings", 0, "at least 1"),
        ("profile.min_drawings", "30", "at least 1"),
        ("profile.min_drawings", True, "at least 1"),
    ],
)
def test_bad_value_names_the_parameter(key, value, expected):
    with pytest.raises(ParamError) as caught:
        parse_params(with_value(key, value))
    message = str(caught.value)
    assert message.startswith(f"params.yaml: {key}:"), message
    assert expected in message


def test_unquoted_yaml_booleans_are_accepted_for_recognized():
    assert parse_params(with_value("sample.recognized", True)).sample.recognized == "true"
    assert parse_params(with_value("sample.recognized", False)).sample.recognized == "false"


def test_unknown_key_is_rejected():
    raw = with_value("sample.size", 10)
    with pytest.raises(ParamError, match=r"sample\.size: unknown key"):
        parse_params(raw)


def test_missing_section_and_file(tmp_path):
    raw = copy.deepcopy(DEFAULTS)
    del raw["sample"]
    with pytest.raises(ParamError, match="sample: section is missing"):
        parse_params(raw)
    with pytest.raises(PipelineError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "bad.yaml").write_text("dataset: [unclosed\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_params(tmp_path / "bad.yaml")


def test_category_with_space_and_limit():
    raw = with_value("dataset.categories", ["The Eiffel Tower"])
    raw["dataset"]["limit"] = 500
    params = parse_params(raw)
    assert params.dataset.categories == ("The Eiffel Tower",)
    assert params.dataset.limit == 500


def test_profile_section_is_optional():
    raw = with_value("sample.n", 10)
    raw.pop("profile", None)
    assert parse_params(raw).profile.min_drawings == 30
