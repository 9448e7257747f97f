"""The package's layering (README, "Layout"): each module imports only from layers below its
own or from its own package, stages import no other stage, and no modules import each other in
a circle. Read from the sources, so an import inside a function counts as much as one on top."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "pipeline"
#: The layers, lowest first: a module may import from a lower layer or its own package only.
LAYERS = (
    {"errors"},
    {"native"},
    {"store"},
    {"params", "formats"},
    {"stats", "download", "reportkit"},
    {"stages", "demo"},
    {"__main__"},
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def modules() -> dict[str, Path]:
    """Every Python module of the package by dotted name (C extensions by their source)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*")):
        if path.suffix not in (".py", ".c") or "__pycache__" in path.parts:
            continue
        parts = ("pipeline", *path.relative_to(PACKAGE).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports, anywhere in it."""
    if path.suffix != ".py":
        return set()
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                names.add(child if child in known else node.module)
    return {name for name in names if name in known and name != "pipeline"}


def part(name: str) -> str:
    """The layer's part a module belongs to: its sub-package, or itself at the top."""
    return name.split(".")[1]


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) for name, path in known.items() if name != "pipeline"}


def test_every_module_is_in_a_layer():
    unplaced = sorted(name for name in graph() if part(name) not in RANK)
    assert not unplaced, f"modules in no layer (move each into a package): {unplaced}"


def test_no_module_imports_one_above_or_beside_it():
    wrong = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if part(name) in RANK
        and part(target) != part(name)
        and RANK.get(part(target), len(LAYERS)) >= RANK[part(name)]
    ]
    assert not wrong, wrong


def test_stages_import_no_other_stage():
    stages = [
        f"{name} -> {target}"
        for name, targets in graph().items()
        for target in targets
        if part(name) == "stages" and part(target) == "stages" and target != "pipeline.stages"
    ]
    assert not stages, stages


def test_no_import_circles():
    edges = graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for target in sorted(edges.get(name, ())):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(edges):
        visit(name, [])


def test_the_checks_see_a_circle_and_an_upward_import(tmp_path):
    """The parser finds both kinds of import, so the tests above can fail."""
    known = {"pipeline.store.layout": tmp_path / "a.py", "pipeline.stages.join": tmp_path / "b.py"}
    (tmp_path / "a.py").write_text("def f():\n    from pipeline.stages import join\n")
    (tmp_path / "b.py").write_text("from pipeline.store.layout import x\n")
    assert imports(tmp_path / "a.py", known) == {"pipeline.stages.join"}
    assert imports(tmp_path / "b.py", known) == {"pipeline.store.layout"}
    assert RANK[part("pipeline.stages.join")] > RANK[part("pipeline.store.layout")]
