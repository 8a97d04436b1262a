"""Dagster's private modules (`dagster._...`) are imported only where docs/architecture.md says
why ("Dagster internals we rely on"): each is a place to re-read when Dagster is upgraded past
1.13. Anywhere else (the demo, assets, checks, the CLI) the public `dagster` API is used. Read
from the source with `ast`, so imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

from tests import import_graph

DOCUMENTED = {"orchestration.automation", "orchestration.in_process", "orchestration.instance",
              "orchestration.pools"}
ARCHITECTURE = import_graph.REPO / "docs" / "architecture.md"


def private_dagster_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [])
        found |= {n for n in names if n.startswith("dagster._")}
    return found


def test_only_the_documented_modules_import_dagster_internals():
    users = {module for module, path in import_graph.module_files().items()
             if private_dagster_imports(path)}
    assert users == DOCUMENTED
    assert "orchestration.cli.demo_run" not in users


def test_the_architecture_page_lists_each_of_them():
    section = ARCHITECTURE.read_text().split("## Dagster internals we rely on", 1)[1]
    section = section.split("\n## ", 1)[0]
    for module in DOCUMENTED:
        assert f"`{module.replace('.', '/')}.py`" in section, module


def test_the_reader_sees_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import dagster as dg\n\ndef f():\n    from dagster._core.events import X\n"
                      "    import dagster._utils.interrupts\n")
    assert private_dagster_imports(source) == {"dagster._core.events",
                                               "dagster._utils.interrupts"}
