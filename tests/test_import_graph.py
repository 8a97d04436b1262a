"""The sandbox stands apart from the product: no import cycle inside it, no arrow from it into
the product, and the product reaches it only through its two entry points (besides the
`talentvault sandbox` commands). Read from the source with `ast` (tests/import_graph.py)."""

from __future__ import annotations

import pytest

from tests import import_graph as g

PRODUCT = ("assets", "checks", "orchestration")
# what the product may import from the sandbox: starting / finding a server and reading a
# stopped world's clock, and the built-in credentials; the rest is reached over HTTP
ENTRY_POINTS = {"sandbox.process", "sandbox.credentials"}
SANDBOX_COMMANDS = "orchestration.cli.sandbox"  # `talentvault sandbox ...` manages the world


@pytest.fixture(scope="module")
def graph() -> g.Graph:
    return g.import_graph()


def test_the_sandbox_has_no_import_cycle(graph):
    assert g.cycles(g.within(graph, "sandbox")) == []


def test_the_sandbox_imports_nothing_of_the_product(graph):
    assert g.top_level(graph)["sandbox"] == set()


def test_the_product_reaches_the_sandbox_only_through_its_entry_points(graph):
    reach = {module: sorted(t for t in targets if t.split(".")[0] == "sandbox")
             for module, targets in graph.items()
             if module.split(".")[0] in PRODUCT and module != SANDBOX_COMMANDS}
    assert {m: ts for m, ts in reach.items() if set(ts) - ENTRY_POINTS} == {}
    assert set().union(*map(set, reach.values())) == ENTRY_POINTS  # both are in use


def test_the_graph_sees_cycles_and_imports_inside_functions(tmp_path):
    # the proof is only as good as its reader: a cycle through a function-level import and a
    # relative import must show
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("from pkg.a import f\n")
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = g.import_graph(tmp_path, ["pkg"])
    assert graph["pkg.d"] == {"pkg.c"}
    assert g.cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]


def test_assets_have_no_import_cycle(graph):
    # the restore writers once imported apply.py for its write machinery while apply.py
    # imported them (now restore/runner.py), and verify.py and verify_seals.py each other
    assert g.cycles(g.within(graph, "assets")) == []


WIRING = g.WIRING


def test_only_the_wiring_reaches_the_recovery_room_and_the_catalog(graph):
    # e.g. the webhook sensor needs neither the catalog's key nor its verify check
    reach = {module for module, targets in graph.items()
             if module.startswith(("orchestration", "checks"))
             and any(t.startswith(("assets.recovery", "assets.catalog")) for t in targets)}
    assert reach and {m for m in reach if not m.startswith(WIRING)} == set()


def test_no_module_of_the_product_is_in_an_import_cycle(graph):
    assert g.cycles(graph) == []


def test_the_rooms_import_downward_only(graph):
    # wiring -> assets -> checks -> orchestration -> sandbox's entry points; nothing but the
    # wiring climbs back into assets/ (issue 14's proof)
    r = g.rooms(graph)
    assert g.cycles(r) == []
    assert r["checks"] <= {"orchestration", "sandbox"}
    assert r["orchestration"] <= {"sandbox"}
    assert "assets" in r["wiring"]  # the wiring does register the assets


def test_the_storage_floor_imports_only_downward(graph):
    # orchestration/storage/ reads and writes the data root for everyone above it
    floor = {m: ts for m, ts in graph.items() if m.startswith("orchestration.storage")}
    assert floor
    climbs = {m: sorted(t for t in ts if not t.startswith(("orchestration", "sandbox")))
              for m, ts in floor.items()}
    assert {m: ts for m, ts in climbs.items() if ts} == {}
    assert not any(t.startswith(g.WIRING) for ts in floor.values() for t in ts)


def test_rooms_put_the_wiring_apart():
    assert g.room_of("orchestration.cli.sql") == "wiring"
    assert g.room_of("orchestration.definitions") == "wiring"
    assert g.room_of("orchestration.storage.writer") == "orchestration"
    assert g.room_of("assets.sync.push") == "assets"
