"""Helpers of the restore tests: a create whose reply was lost, the restore ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from assets.recovery.restore.apply import apply
from assets.recovery.restore.ledger import Ledger, ledger_relation

if TYPE_CHECKING:
    from tests.e2e.conftest import World

# the counts of a preview that say it would write something
ACTIONS = ("create", "update_records", "delete", "replace", "tag_add", "tag_remove")


def written(counts: dict[str, int]) -> dict[str, int]:
    """The counts of writes a preview plans (records and configuration), the zeros left out."""
    return {k: v for k, v in counts.items() if any(k.endswith(a) for a in ACTIONS) and v}


def lost_create_started(root: Path, plan_id: str, source: str, entity: str,
                        backup_id: str) -> tuple[str, str]:
    """An apply killed after it sent the plan's one create of `entity` and before the answer
    reached the ledger: a `started` row of a run that never finished. Returns the write id and
    the create's body (JSON text) for the test to make the create that did land."""
    con = duckdb.connect()
    try:
        (wid, body), = con.execute(
            "SELECT change_id, new_value FROM read_parquet(?) WHERE entity = ?",
            [str(Path(root) / "restore" / "plans" / plan_id / "changes.parquet"), entity]
        ).fetchall()
    finally:
        con.close()
    killed = Ledger(root, plan_id, "killed-run", source)
    killed.record_started([{"write_id": wid, "entity": entity, "action": "create",
                            "backup_id": backup_id, "attempt": 1}])
    killed.close()
    return wid, body


def lost_create_applied(w: World, plan_id: str, entity: str, backup_id: str, name: str,
                        create: Callable[[dict], dict]) -> str:
    """An apply of a plan whose one HighLevel create of `entity` was sent by a killed run and
    landed (`create` makes it, as the vendor did): the re-run confirms the write once, fails
    nothing and makes no second record named `name`. Returns the landed record's id."""
    wid, body = lost_create_started(w.root, plan_id, "highlevel", entity, backup_id)
    lost = create(json.loads(body))
    counts = apply(w.root, plan_id)
    assert counts["confirmed_after_crash"] == 1 and counts["failed_permanent"] == 0
    same = [d["id"] for d in w.sandbox_docs("highlevel", entity).values() if d["name"] == name]
    assert same == [lost["id"]]                             # no second record
    assert ledger_rows(w.root, "SELECT count(*) FROM restore_ledger WHERE write_id = ? AND "
                       "status = 'succeeded'", wid) == [(1,)]
    return lost["id"]


def ledger_rows(root: Path, sql: str, *params: object) -> list[tuple]:
    """Rows of a query over the `restore_ledger` and `restore_idmap` views."""
    con = duckdb.connect()
    try:
        ledger_relation(con, root)
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()
