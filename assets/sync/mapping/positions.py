"""Where a value sits in the mapping document: YAML node marks to line numbers by key path."""

from __future__ import annotations

import yaml


def lines_of(node: yaml.Node | None) -> dict[tuple, int]:
    """Path (keys and list indexes) -> 1-based line, for every node of the document."""
    out: dict[tuple, int] = {}

    def walk(n: yaml.Node, path: tuple) -> None:
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
                out[(*path, key)] = k.start_mark.line + 1
                walk(v, (*path, key))
                out[(*path, key)] = k.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*path, i))

    if node is not None:
        walk(node, ())
    return out


def line_of(lines: dict[tuple, int], path: tuple) -> int | None:
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "(top level)"
