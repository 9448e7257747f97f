"""The README and docs/: every relative link leads to a file that exists and every anchor to a
heading in it, and the README stays a front door (docs/ holds the rest)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def prose(path: Path) -> list[str]:
    """The file's lines outside code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of the file's headings."""
    found = set()
    for line in prose(path):
        if m := HEADING.match(line):
            text = re.sub(r"[^\w\- ]", "", m.group(1).lower())
            found.add(text.replace(" ", "-"))
    return found


def broken(path: Path) -> list[str]:
    wrong = []
    for line in prose(path):
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            name, _, anchor = target.partition("#")
            linked = (path.parent / name).resolve() if name else path
            if not linked.exists():
                wrong.append(f"{target}: no such file")
            elif anchor and anchor not in anchors(linked):
                wrong.append(f"{target}: no heading with that anchor")
    return wrong


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_and_anchors_resolve(path):
    assert not broken(path)


def test_every_doc_is_linked_from_the_readme():
    linked = {target.partition("#")[0] for target in LINK.findall("\n".join(prose(DOCS[0])))}
    assert {p.relative_to(ROOT).as_posix() for p in DOCS[1:]} <= linked


def test_the_readme_is_a_front_door():
    assert len(DOCS[0].read_text(encoding="utf-8").splitlines()) <= 200


def test_the_check_finds_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "a.md").write_text(
        "# Top\n\n[x](b.md) [y](#nowhere) [z](#top)\n```\n[w](c.md)\n```\n"
    )
    assert broken(tmp_path / "a.md") == [
        "b.md: no such file",
        "#nowhere: no heading with that anchor",
    ]
