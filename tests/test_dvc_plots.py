"""`dvc plots show` and `dvc plots diff` draw offline, in the repository as it is committed: the
page template (.dvc/config plots.html_template) carries vega, vega-lite and vega-embed inline.

Real dvc renders the committed plot data; real Chromium opens the page, every plot must have drawn
its bars (coloured pixels on its canvas) and no request may leave the page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from browser import browser_page
from conftest import ROOT, run

pytestmark = pytest.mark.browser

# Per plot div: its canvas's count of saturated pixels (vega's bars; axes and text are grey).
BAR_PIXELS = """() => [...document.querySelectorAll('div[id]')]
  .filter((div) => div.querySelector('canvas, svg'))
  .map((div) => {
    const canvas = div.querySelector('canvas');
    if (canvas === null) return [div.id, div.querySelectorAll('svg path').length];
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let coloured = 0;
    for (let i = 0; i < data.length; i += 4) {
      const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
      if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 40) coloured += 1;
    }
    return [div.id, coloured];
  })"""

PLOTS = {"reports_countries_json", "reports_profile_recognized_json"}


@pytest.fixture
def repo(tmp_path: Path, isolated_env: dict[str, str]) -> Path:
    """A git + DVC repository with this one's DVC config, pipeline file and committed plots."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo, isolated_env)
    run(["dvc", "init", "-q"], repo, isolated_env)
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvc/config"):
        shutil.copy2(ROOT / name, repo / name)
    shutil.copytree(ROOT / "third_party", repo / "third_party")
    (repo / "reports").mkdir()
    for path in (ROOT / "reports").glob("*.json"):
        shutil.copy2(path, repo / "reports" / path.name)
    run(["git", "add", "-A"], repo, isolated_env)
    run(["git", "commit", "-qm", "committed plots"], repo, isolated_env)
    return repo


def assert_draws_offline(page_path: Path) -> None:
    html = page_path.read_text(encoding="utf-8")
    assert "<script src=" not in html, "the page loads a script from elsewhere"
    with browser_page() as page:
        page.goto(page_path.as_uri())
        page.wait_for_function(f"() => document.querySelectorAll('canvas').length >= {len(PLOTS)}")
        drawn = dict(page.evaluate(BAR_PIXELS))
        assert page.console_errors == []
        assert [url for url in page.requests if url != page_path.as_uri()] == []
    assert set(drawn) == PLOTS
    for plot, pixels in drawn.items():
        assert pixels > 500, f"{plot} drew no bars ({pixels} coloured pixels)"


def test_plots_show_draws_offline(repo: Path, isolated_env: dict[str, str]) -> None:
    out = run(["dvc", "plots", "show"], repo, isolated_env).stdout
    page = repo / "dvc_plots" / "index.html"
    assert page.as_uri() in out
    assert_draws_offline(page)
    # the rendered page is not something to commit
    assert run(["git", "status", "--porcelain"], repo, isolated_env).stdout == ""


def test_plots_diff_draws_offline(repo: Path, isolated_env: dict[str, str]) -> None:
    """The workspace against the last commit, as the README's `dvc plots diff` does."""
    countries = repo / "reports" / "countries.json"
    rows = json.loads(countries.read_text())
    rows[0]["drawings"] += 100
    countries.write_text(json.dumps(rows))
    run(["dvc", "plots", "diff", "HEAD", "-o", "diff"], repo, isolated_env)
    assert_draws_offline(repo / "diff" / "index.html")
