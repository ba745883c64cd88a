"""The import graph of ``engine/`` and ``ui/``, read from the source: no cycles, no Streamlit in the engine.

Every ``import`` statement counts, wherever it is in a file: an import inside a
function only moves a cycle from import time to call time, so late imports
are no way round this test (the style guide's rule: a concept two modules need
goes into a third, lower module). How an import becomes edges follows what
Python runs:

* ``import a.b.c`` and ``from a.b.c import x`` run ``a.b.c`` (its
  ``__init__`` when it is a package);
* ``from a.b import c`` runs the submodule ``a.b.c`` when ``c`` is a module
  file, and only ``a.b``'s ``__init__`` when ``c`` is a name defined there;
* each of these first runs the ``__init__`` of every package above the
  module, except the packages the importing module itself lives in (they
  are always initialised before it);
* relative imports resolve against the importing module's package.

So a submodule that takes a name from its own package's ``__init__``
(``from engine.recommend import HybridModel`` inside ``engine/recommend/x.py``)
is a cycle when that ``__init__`` imports the submodule, while importing
``engine`` itself is harmless as long as ``engine/__init__.py`` imports none of
its children.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import networkx as nx  # a dependency of torch, so always installed beside the engine
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "ui")


@dataclass(frozen=True)
class ImportSite:
    """One imported module name as written (made absolute), and where."""

    module: str  # absolute dotted name of the module after ``import`` / ``from``
    names: tuple[str, ...] | None  # the names after ``from ... import``; None for ``import x``
    path: str  # file, relative to the root
    line: int
    scope: str | None  # enclosing function or class, for late imports

    @property
    def where(self) -> str:
        late = f" (inside {self.scope})" if self.scope else ""
        return f"{self.path}:{self.line}{late}"


def find_modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name → file, for every .py file under the ``packages`` folders of ``root``."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join(parts)
            if name in modules and modules[name].name == "__init__.py":
                continue  # a package beside a module of its name: Python imports the package
            modules[name] = path
    return modules


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, path: str):
        self.package = module.split(".") if is_package else module.split(".")[:-1]
        self.path = path
        self.scopes: list[str] = []
        self.sites: list[ImportSite] = []

    def _scoped(self, node):
        self.scopes.append(node.name)
        self.generic_visit(node)
        self.scopes.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def _add(self, module: str, names: tuple[str, ...] | None, node: ast.AST) -> None:
        scope = ".".join(self.scopes) or None
        self.sites.append(ImportSite(module, names, self.path, node.lineno, scope))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, None, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            keep = len(self.package) - (node.level - 1)
            if keep <= 0:
                raise ValueError(f"{self.path}:{node.lineno}: relative import beyond the top package")
            base = self.package[:keep] + (node.module.split(".") if node.module else [])
            module = ".".join(base)
        else:
            module = node.module or ""
        self._add(module, tuple(alias.name for alias in node.names), node)

    def visit_Call(self, node: ast.Call) -> None:
        # importlib.import_module("a.b") / __import__("a.b") with a literal name
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if (
            name in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            self._add(node.args[0].value, None, node)
        self.generic_visit(node)


def import_sites(root: Path, modules: dict[str, Path]) -> dict[str, list[ImportSite]]:
    """Every import of every module, at any depth of the file."""
    sites = {}
    for name, path in modules.items():
        rel = path.relative_to(root).as_posix()
        collector = _ImportCollector(name, path.name == "__init__.py", rel)
        collector.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        sites[name] = collector.sites
    return sites


def _prefixes(dotted: str) -> list[str]:
    parts = dotted.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def _known(dotted: str, modules: dict[str, Path]) -> str | None:
    """The module ``dotted`` names, or its longest prefix that is one (``import a.b.missing``)."""
    for prefix in reversed(_prefixes(dotted)):
        if prefix in modules:
            return prefix
    return None


def site_targets(importer: str, site: ImportSite, modules: dict[str, Path]) -> dict[str, bool]:
    """The graph's modules an import runs, each → True when it runs only as a package
    initialised before the imported module (``[x runs first]`` in the report)."""
    base = _known(site.module, modules)
    if base is None:
        return {}  # outside the packages read
    explicit: set[str] = set()
    first = set(_prefixes(base)[:-1])  # packages above the module run before it
    if site.names is None or base != site.module:
        explicit.add(base)
    else:
        for name in site.names:
            sub = f"{base}.{name}"
            if sub in modules:  # ``from a.b import c`` with c a module file runs a.b, then a.b.c
                explicit.add(sub)
                first.add(base)
            else:  # a name defined in a.b (its __init__ when a package)
                explicit.add(base)
    # the packages the importer lives in are initialised before it: no edge
    first -= set(_prefixes(importer)) | explicit
    return {t: t in first for t in sorted(explicit | {p for p in first if p in modules})}


def import_graph(root: Path, packages: tuple[str, ...]) -> nx.DiGraph:
    """Modules of ``packages`` under ``root``; an edge a → b when a imports (runs) b.

    Each edge keeps ``sites``: the import statements that make it, as 'file:line'.
    """
    modules = find_modules(root, packages)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for importer, sites in import_sites(root, modules).items():
        for site in sites:
            for target, as_parent in site_targets(importer, site, modules).items():
                if not graph.has_edge(importer, target):
                    graph.add_edge(importer, target, sites=[])
                where = f"{site.where} [{target} runs first]" if as_parent else site.where
                if where not in graph.edges[importer, target]["sites"]:
                    graph.edges[importer, target]["sites"].append(where)
    return graph


def find_cycles(graph: nx.DiGraph) -> list[list[str]]:
    """For every strongly connected set of modules, the shortest cycle through each of them.

    A cycle is a path whose last module is its first, starting at its smallest name.
    """
    cycles: set[tuple[str, ...]] = set()
    for component in nx.strongly_connected_components(graph):
        sub = graph.subgraph(component)
        for node in sorted(component):
            best = None
            for succ in sorted(sub.successors(node)):
                path = [node] + nx.shortest_path(sub, succ, node)
                if best is None or len(path) < len(best):
                    best = path
            if best is None:
                continue  # a lone module that does not import itself
            ring = best[:-1]
            start = ring.index(min(ring))
            ring = ring[start:] + ring[:start]
            cycles.add((*ring, ring[0]))
    return [list(c) for c in sorted(cycles, key=lambda c: (len(c), c))]


def describe_cycle(graph: nx.DiGraph, cycle: list[str]) -> str:
    lines = [" -> ".join(cycle)]
    for a, b in pairwise(cycle):
        lines.append(f"    {a} -> {b}: {'; '.join(graph.edges[a, b]['sites'])}")
    return "\n".join(lines)


def cycle_report(graph: nx.DiGraph) -> str:
    """Each cycle with the import statements of its edges, then any other import
    between modules of one cycle group (to be broken too); "" without cycles."""
    cycles = find_cycles(graph)
    if not cycles:
        return ""
    body = [describe_cycle(graph, c) for c in cycles]
    shown = {edge for c in cycles for edge in pairwise(c)}
    for component in sorted(map(sorted, nx.strongly_connected_components(graph))):
        rest = sorted(e for e in graph.subgraph(component).edges if e not in shown)
        if rest:
            body.append(f"also among {', '.join(component)}:")
            body += [f"    {a} -> {b}: {'; '.join(graph.edges[a, b]['sites'])}" for a, b in rest]
    text = "\n".join(body)
    return f"{len(cycles)} import cycle(s) (imports inside functions count too):\n{text}"


def streamlit_imports(root: Path, package: str) -> list[str]:
    """'file:line module' for each import of Streamlit, or of the ui package, inside ``package``."""
    modules = find_modules(root, (package,))
    found = []
    for sites in import_sites(root, modules).values():
        for site in sites:
            top = site.module.split(".")[0]
            if top in ("streamlit", "ui"):
                found.append(f"{site.where}: {site.module}")
    return found


# --- the project ----------------------------------------------------------------------------


def test_engine_and_ui_have_no_import_cycles():
    graph = import_graph(ROOT, PACKAGES)
    assert graph.number_of_nodes() > 40  # read the real packages, not an empty folder
    report = cycle_report(graph)
    if report:
        pytest.fail(report, pytrace=False)


def test_engine_imports_no_streamlit():
    found = streamlit_imports(ROOT, "engine")
    if found:
        pytest.fail("the engine imports Streamlit or ui/ (which does):\n" + "\n".join(found), pytrace=False)


def test_engine_init_imports_none_of_its_children():
    # what makes ``from engine import columns`` and ``import engine`` inside the engine harmless
    graph = import_graph(ROOT, PACKAGES)
    assert list(graph.successors("engine")) == []


# --- the checker itself ---------------------------------------------------------------------


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


ACYCLIC = {
    "pkg/__init__.py": '"""Imports none of its children."""\n__version__ = "1"\n',
    "pkg/a.py": "import os\nfrom pkg import __version__, b\nfrom pkg.sub.c import C\n",
    "pkg/b.py": "import numpy as np\n\n\ndef f():\n    from .sub import c\n    return c\n",
    "pkg/sub/__init__.py": "from .c import C\n",
    "pkg/sub/c.py": "import pkg\n\nclass C:\n    pass\n",
    "other/__init__.py": "",
    "other/d.py": "import streamlit as st\nfrom pkg.a import os\n",
}


def test_checker_passes_an_acyclic_package(tmp_path):
    root = _write(tmp_path, ACYCLIC)
    graph = import_graph(root, ("pkg", "other"))
    assert cycle_report(graph) == ""
    # the edges the rules give: submodule vs package name, relative, late, package __init__ first
    assert set(graph.edges) == {
        ("pkg.a", "pkg"), ("pkg.a", "pkg.b"), ("pkg.a", "pkg.sub.c"), ("pkg.a", "pkg.sub"),
        ("pkg.b", "pkg.sub.c"), ("pkg.b", "pkg.sub"), ("pkg.sub", "pkg.sub.c"),
        ("pkg.sub.c", "pkg"), ("other.d", "pkg.a"), ("other.d", "pkg"),
    }  # fmt: skip
    assert streamlit_imports(root, "pkg") == []
    assert streamlit_imports(root, "other") == ["other/d.py:1: streamlit"]


CYCLIC = {
    # hidden behind an import inside a method, written relative
    "late": {
        "pkg/a.py": "from pkg.b import helper\n",
        "pkg/b.py": "def helper():\n    pass\n\nclass K:\n    def m(self):\n        from . import a\n",
    },
    # a submodule taking a name from its own package's __init__, which imports it
    "through_init": {
        "pkg/__init__.py": "from pkg.a import A\nfrom pkg.b import B\n",
        "pkg/a.py": "class A:\n    pass\n",
        "pkg/b.py": "def f():\n    from pkg import A\n\nclass B:\n    pass\n",
    },
    # importing a module of another package runs that package's __init__ first
    "other_package_init": {
        "pkg/a.py": "def f():\n    import importlib\n    return importlib.import_module('other.c')\n",
        "other/__init__.py": "from other.d import D\n",
        "other/c.py": "",
        "other/d.py": "from pkg import a\nD = 1\n",
    },
}
CYCLE_OF = {
    "late": ["pkg.a", "pkg.b", "pkg.a"],
    "through_init": ["pkg", "pkg.b", "pkg"],
    "other_package_init": ["other", "other.d", "pkg.a", "other"],
}


def test_checker_finds_hidden_cycles(tmp_path):
    for case, files in CYCLIC.items():
        root = _write(tmp_path / case, {"pkg/__init__.py": "", "other/__init__.py": "", **files})
        graph = import_graph(root, ("pkg", "other"))
        assert find_cycles(graph) == [CYCLE_OF[case]], case
        report = cycle_report(graph)
        assert " -> ".join(CYCLE_OF[case]) in report, case
    assert "pkg/b.py:6 (inside K.m)" in cycle_report(import_graph(tmp_path / "late", ("pkg",)))
