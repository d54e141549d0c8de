"""The house's floors: every import of the package, top level and inside functions, runs down.

Floors, lowest first (DESIGN.md): ``errors, version < checks < engine < plans < chains | graphs
< workloads | records < plotting | torch < lab | report < cli``. A module may import its own
room and the rooms of lower floors; two rooms on one floor stand apart (chains and graphs share
what they both need through ``plans``). Inside a room, imports form no circle. The package's
face (``checkpoint_ad/__init__.py``, ``__main__.py``) stands above every floor.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "checkpoint_ad"
FLOORS = [("errors", "version"), ("checks",), ("engine",), ("plans",), ("chains", "graphs"),
          ("workloads", "records"), ("plotting", "torch"), ("lab", "report"), ("cli",)]
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
FACE = ("checkpoint_ad", "checkpoint_ad.__main__")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def resolve(importer: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package's modules that ``node`` (in module ``importer``) imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.startswith("checkpoint_ad")]
    if node.level:
        base = importer.split(".") if importer in PACKAGES else importer.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if not source.startswith("checkpoint_ad"):
        return []
    found = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES]
    return found or [source]


def imports() -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every import of a package module, at any depth."""
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found += [(name, target, node.lineno) for target in resolve(name, node)]
    return found


def test_every_import_of_the_package_names_a_module_that_exists():
    missing = [f"{importer}:{line} imports {imported}, which does not exist"
               for importer, imported, line in imports() if imported not in MODULES]
    assert not missing, "\n".join(missing)


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_has_a_floor():
    homeless = sorted({room(m) for m in MODULES if m not in FACE} - set(FLOOR) - {"experiments"})
    assert not homeless, f"rooms without a floor in this test: {homeless}"


def test_imports_never_run_back_up_nor_across_a_floor():
    wrong = []
    for importer, imported, line in imports():
        if importer in FACE or room(importer) == room(imported):
            continue
        if imported in FACE:
            wrong.append(f"{importer}:{line} imports the package's face {imported}")
            continue
        source, target = FLOOR[room(importer)], FLOOR[room(imported)]
        if target > source:
            wrong.append(f"{importer}:{line} -> {imported}: runs back up")
        elif target == source:
            wrong.append(f"{importer}:{line} -> {imported}: two rooms of one floor")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph = networkx.DiGraph((a, b) for a, b, _ in imports() if a != b and a not in FACE)
    circles = [sorted(c) for c in networkx.strongly_connected_components(graph) if len(c) > 1]
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("text, expected", [
    ("from ..chains import policies", ["checkpoint_ad.chains.policies"]),
    ("from ..errors import PolicyError", ["checkpoint_ad.errors"]),
    ("from . import plans", ["checkpoint_ad.graphs.plans"]),
    ("import checkpoint_ad.engine.ops", ["checkpoint_ad.engine.ops"]),
    ("import numpy", []),
])
def test_resolve_reads_relative_and_absolute_imports(text, expected):
    assert resolve("checkpoint_ad.graphs.costs", ast.parse(text).body[0]) == expected
