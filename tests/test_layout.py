"""The house rules a reader relies on (docs/architecture.md): one job per file, typed boundaries.
Read from the source with `ast`, nothing imported."""

from __future__ import annotations

import ast
import statistics
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRODUCT = ("assets", "checks", "orchestration")  # the sandbox is a vendor emulator, apart
LONGEST = 500
MEDIAN = 100


def product_files() -> list[Path]:
    return sorted(p for package in PRODUCT for p in (REPO / package).rglob("*.py"))


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


@pytest.fixture(scope="module")
def trees() -> dict[str, ast.Module]:
    return {str(p.relative_to(REPO)): ast.parse(p.read_text(), filename=str(p))
            for p in product_files()}


def test_no_product_file_is_longer_than_500_lines():
    long = {str(p.relative_to(REPO)): lines(p) for p in product_files() if lines(p) > LONGEST}
    assert long == {}


def test_the_median_product_file_is_short():
    assert statistics.median(lines(p) for p in product_files()) <= MEDIAN


def _any_clients(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args.args + node.args.kwonlyargs + node.args.posonlyargs
            found += [f"{node.name}({a.arg})" for a in args
                      if a.arg == "client" and (a.annotation is None
                                                or ast.unparse(a.annotation) == "Any")]
    return found


def test_vendor_clients_are_typed(trees):
    # `client: Any` hides which vendor API a function calls; the types are in
    # orchestration/resources (KeapClient, HighLevelClient, CrmClient, VendorClient ...)
    untyped = {f: c for f, t in trees.items() if (c := _any_clients(t))}
    assert untyped == {}


def test_resources_are_typed_parameters(trees):
    found = {f for f, t in trees.items() for node in ast.walk(t)
             if isinstance(node, ast.keyword) and node.arg == "required_resource_keys"}
    assert found == set()


def test_the_rules_see_what_they_forbid():
    tree = ast.parse("def f(client: Any, x): ...\ndef g(client): ...\ndef h(client: 'K'): ...")
    assert _any_clients(tree) == ["f(client)", "g(client)"]
