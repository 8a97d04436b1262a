"""The import graph of the repository's own code, read from the source with `ast` (nothing is
imported, so it is fast and sees imports that only run inside functions or for type checking:
each one is an arrow a reader has to follow).

    uv run python tests/import_graph.py            # the rooms, their arrows and cycles
    uv run python tests/import_graph.py sandbox    # the modules of one package and their cycles

Nodes are dotted module names (a package's `__init__.py` is the package's name); an arrow
A -> B means A imports B. `from p import x` points at p.x when that is a module, else at p.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("assets", "checks", "orchestration", "sandbox")
# the code location's wiring: the one place allowed to import every room (assets included):
# the definitions, jobs and schedules, the CLI, what a step process preloads, and the demo's
# in-process schedule and automation ticks
WIRING = ("orchestration.definitions", "orchestration.jobs", "orchestration.schedules",
          "orchestration.cli", "orchestration.preload", "orchestration.in_process")

Graph = dict[str, set[str]]


def module_files(root: Path = REPO, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module below the given top-level packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: climb from the module's own package
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join([*here, base] if base else here)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that `name` is or lies inside; None for outside code."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def import_graph(root: Path = REPO, packages: Iterable[str] = PACKAGES) -> Graph:
    """module -> the repository modules it imports (anywhere in the file)."""
    known = module_files(root, packages)
    graph: Graph = {}
    for module, path in known.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = _targets(node, module, path.name == "__init__.py")
            if isinstance(node, ast.ImportFrom):
                # `from p import x`: the module p.x if there is one, else p itself
                base, names = targets[0], targets[1:]
                resolved = [n for n in names if n in known] or [base]
                targets = resolved if len(resolved) == len(names) else [base, *resolved]
            for target in targets:
                hit = _resolve(target, known)
                if hit and hit != module:
                    edges.add(hit)
        graph[module] = edges
    return graph


def within(graph: Graph, package: str) -> Graph:
    """The part of the graph among one package's own modules."""
    def inside(m: str) -> bool:
        return m == package or m.startswith(package + ".")
    return {m: {t for t in ts if inside(t)} for m, ts in graph.items() if inside(m)}


def top_level(graph: Graph) -> Graph:
    """The graph between top-level packages (an arrow for any import between their modules)."""
    packages: Graph = {}
    for module, targets in graph.items():
        top = module.split(".")[0]
        packages.setdefault(top, set()).update(
            t.split(".")[0] for t in targets if t.split(".")[0] != top)
    return packages


def room_of(module: str) -> str:
    """A module's room: its top-level package, with the code location's wiring apart."""
    if module.startswith(WIRING):
        return "wiring"
    return module.split(".")[0]


def rooms(graph: Graph) -> Graph:
    """The graph between rooms (an arrow for any import between their modules)."""
    found: Graph = {}
    for module, targets in graph.items():
        room = room_of(module)
        found.setdefault(room, set()).update(
            r for r in map(room_of, targets) if r != room)
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _print(graph: Graph) -> None:
    for node in sorted(graph):
        print(f"{node} -> {', '.join(sorted(graph[node])) or '(nothing)'}")
    loops = cycles(graph)
    print("cycles: " + ("; ".join(" <-> ".join(c) for c in loops) if loops else "none"))


if __name__ == "__main__":
    full = import_graph()
    if len(sys.argv) > 1:
        _print(within(full, sys.argv[1]))
    else:
        _print(rooms(full))
        print(f"module-level cycles: {len(cycles(full))}")
