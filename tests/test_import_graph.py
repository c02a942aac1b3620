"""The import graph of the four packages: no cycles, layers import downward only, no private
cross-package imports.

Every ``import`` and ``from ... import`` of every module counts, wherever it is written
(module level, under ``TYPE_CHECKING``, inside a function): an import moved into a function
still ties the two modules together. Layers, lowest first: ``search_spaces`` <- ``predictors``
<- ``devices`` <- ``nas``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("search_spaces", "predictors", "devices", "nas")


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the four packages."""
    out: dict[str, Path] = {}
    for pkg in LAYERS:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, Path()).name == "__init__.py"


def _imports(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) of every import in ``path`` that targets one
    of the four packages; ``from pkg import mod`` targets the module ``pkg.mod`` when it is one."""
    tree = ast.parse(path.read_text(), filename=str(path))
    base = name if _is_package(name) else name.rpartition(".")[0]
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in LAYERS:
                    out.append((a.name, None, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = base
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                mod = f"{pkg}.{node.module}" if node.module else pkg
            else:
                mod = node.module or ""
            if mod.split(".")[0] not in LAYERS:
                continue
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if sub in MODULES:
                    out.append((sub, None, node.lineno))
                else:
                    out.append((mod, a.name, node.lineno))
    return out


EDGES = {m: _imports(m, p) for m, p in MODULES.items()}


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def _private(module: str) -> bool:
    return any(part.startswith("_") and not part.startswith("__") for part in module.split(".")[1:])


def test_the_walk_sees_the_packages() -> None:
    for pkg in LAYERS:
        assert pkg in MODULES, f"{pkg}/__init__.py not found under {ROOT}"
    assert sum(len(v) for v in EDGES.values()) > 50  # a walk that finds nothing proves nothing


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (or a module importing itself)."""
    graph = {m: sorted({t for t, _, _ in EDGES[m] if t in MODULES}) for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan, recursive (the graph is small)
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph[v]:
                out.append(sorted(comp))

    for m in sorted(graph):
        if m not in index:
            visit(m)
    return out


def test_no_import_cycles() -> None:
    cycles = _cycles()
    assert not cycles, "import cycles (move what both sides need into a lower module): " + "; ".join(
        " <-> ".join(c) for c in cycles)


def test_packages_import_downward_only() -> None:
    bad = [f"{m} ({MODULES[m].relative_to(ROOT)}:{line}) imports {t}"
           for m, edges in EDGES.items() for t, _, line in edges if _layer(t) > _layer(m)]
    assert not bad, "imports of a higher package (layers: " + " <- ".join(LAYERS) + "):\n" + "\n".join(bad)


def test_no_private_cross_package_imports() -> None:
    bad = []
    for m, edges in EDGES.items():
        for t, name, line in edges:
            if t.split(".")[0] == m.split(".")[0]:
                continue
            if _private(t) or (name is not None and name.startswith("_")):
                bad.append(f"{m} ({MODULES[m].relative_to(ROOT)}:{line}) imports {t}{'.' + name if name else ''}")
    assert not bad, ("imports of another package's private modules or names (make them public in its "
                     "__init__):\n" + "\n".join(bad))


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not _private(m) and m.count(".") == 0))
def test_package_imports(module: str) -> None:
    import importlib

    importlib.import_module(module)
