"""Restore apply: carry out a saved plan, exactly, or refuse.

1. The diff is computed again (backup as of T, live now, same selection/modes/fields) and
   matched to the plan by change id. Only changes the plan holds are made; a change of the plan
   that is no longer needed (done by an earlier run, or its person was erased meanwhile: the
   backup no longer has them and the suppression list hides them) is skipped.
2. Refusal: when a live record the plan touches was changed or deleted since the preview (its
   update time differs; our own succeeded writes excepted), or when the backup values differ
   from the ones previewed (hash), nothing is written and the message names the records.
3. Writes in dependency order, through the vendor clients (pacing, retries): deletes of new
   records, recreations (new ids recorded in the ledger), field updates, tags, then HighLevel
   opportunities, which need their contact's live id, then notes and tasks (children.py,
   children_apply.py: on the contacts' live ids, new ones read from the ledger). Every outcome
   goes to the ledger first; a re-run of the plan skips what succeeded. A live note or task
   the plan touches is compared by update time and, as HighLevel's have none, by a hash of the
   record as read (`live_version`).
4. Killed mid-way (SIGKILL, power loss): each write has a `started` ledger row before it is
   sent, so a write whose answer never reached the ledger is known. The next run does not take
   its record's new update time for someone else's edit, looks a create up before sending it
   again (no duplicate contact), and records a write whose effect the fresh diff already shows
   as succeeded ("confirmed") instead of sending it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from assets.catalog.views import open_catalog
from assets.recovery.restore.children import live_rows_sql
from assets.recovery.restore.children_apply import apply_children
from assets.recovery.restore.highlevel import apply_highlevel
from assets.recovery.restore.hl_location import live_versions_sql
from assets.recovery.restore.keap import apply_keap
from assets.recovery.restore.ledger import (
    PERMANENT,
    RETRYABLE,
    SUCCEEDED,
    Ledger,
    compact_orphans,
    ledger_relation,
    succeeded_write_ids,
    unresolved_started,
)
from assets.recovery.restore.plan import (
    Plan,
    Selection,
    compute,
    load_plan,
    open_client,
    plan_dir,
)
from assets.recovery.restore.runner import Runner
from orchestration.storage import audit
from orchestration.storage.parquet import duck_path

if TYPE_CHECKING:
    from orchestration.resources import CrmClient

SHOWN_IDS = 10


class RestoreRefused(RuntimeError):
    """The plan no longer describes the live system (or the backup); preview again."""


@contextlib.contextmanager
def _apply_lock(root: Path) -> Iterator[None]:
    path = Path(root) / "restore" / ".apply.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RestoreRefused("another restore apply is running on this data root; wait "
                                 "for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def apply(root: Path, plan_id: str, *, client: CrmClient = None, run_id: str | None = None,
          concurrency: int = 4) -> dict[str, int]:
    """Apply plan `plan_id`; returns counts. Raises RestoreRefused when the live state changed
    in a way the plan did not see."""
    root = Path(root)
    plan = load_plan(root, plan_id)
    run = run_id or f"restore-{uuid.uuid4().hex[:12]}"
    own = client is None
    client = client or open_client(plan.source)
    try:
        with _apply_lock(root):
            compact_orphans(root, run)
            con = open_catalog(root)
            try:
                prepare(con, root, plan, client)
                counts = execute(con, root, plan, client, run, concurrency)
            finally:
                con.close()
    except RestoreRefused as e:
        audit.record(root, "restore_apply", target=f"{plan.source}/contacts", run_id=run_id,
                     plan_id=plan_id, status="refused", details={"reason": str(e)[:500]})
        raise
    finally:
        if own:
            client.close()
    failed = counts.get(RETRYABLE, 0) + counts.get(PERMANENT, 0)
    audit.record(root, "restore_apply", target=f"{plan.source}/contacts", run_id=run_id,
                 plan_id=plan_id, status="succeeded" if not failed else "partial",
                 counts=counts, details={"as_of": plan.as_of, "apply_run": run})
    return counts


def prepare(con: duckdb.DuckDBPyConnection, root: Path, plan: Plan, client: CrmClient) -> None:
    """Fresh diff, plan rows, and the checks that make apply refuse."""
    compute(con, root, client, plan.source, plan.as_of, Selection(**plan.selection),
            plan.modes, plan.fields)
    path = plan_dir(root, plan.plan_id) / "changes.parquet"
    con.execute(f"CREATE OR REPLACE TEMP TABLE planned AS SELECT * FROM "
                f"read_parquet('{duck_path(path)}')")
    # a plan saved before notes and tasks were restored has no live_version column
    con.execute("ALTER TABLE planned ADD COLUMN IF NOT EXISTS live_version VARCHAR")
    con.execute("CREATE OR REPLACE TEMP TABLE ours (entity VARCHAR, live_id VARCHAR)")
    # records this plan wrote: succeeded writes, and writes a killed run had sent without
    # recording the answer (they may have landed)
    con.execute("""INSERT INTO ours SELECT DISTINCT entity, live_id FROM restore_ledger
                   WHERE plan_id = ? AND status = 'succeeded' AND live_id IS NOT NULL""",
                [plan.plan_id])
    ours = sorted({(r[1], r[4]) for r in unresolved_started(con, plan.plan_id) if r[4]})
    if ours:
        con.executemany("INSERT INTO ours VALUES (?, ?)", ours)
    opp_live = ("UNION ALL SELECT 'opportunities', id, _source_updated_at, NULL "
                f"FROM opp_live_all UNION ALL {live_versions_sql()}"
                if plan.source == "highlevel" else "")
    changed = con.execute(f"""
        WITH now AS (SELECT 'contacts' AS entity, id, _source_updated_at,
                            NULL::VARCHAR AS live_version FROM live_all
                     {opp_live} UNION ALL {live_rows_sql()})
        SELECT DISTINCT p.entity, p.live_id,
               CASE WHEN n.id IS NULL THEN 'deleted' ELSE 'changed' END
        FROM planned p LEFT JOIN now n ON n.entity = p.entity AND n.id = p.live_id
        WHERE p.live_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ours o WHERE o.entity = p.entity
                          AND o.live_id = p.live_id)
          AND (n.id IS NULL OR n._source_updated_at IS DISTINCT FROM p.live_updated_at
               OR n.live_version IS DISTINCT FROM p.live_version)
        ORDER BY 1, 2""").fetchall()
    if changed:
        named = ", ".join(f"{e} {i} ({how})" for e, i, how in changed[:SHOWN_IDS])
        more = f" and {len(changed) - SHOWN_IDS} more" if len(changed) > SHOWN_IDS else ""
        raise RestoreRefused(
            f"refused: {len(changed)} live {plan.source} records this plan touches changed "
            f"after the preview: {named}{more}. Nothing was written. Run `talentvault restore "
            f"preview` again to see the current differences and apply the new plan.")
    drift = con.execute("""
        SELECT p.entity, coalesce(p.backup_id, p.live_id), coalesce(p.field, '(record)')
        FROM planned p JOIN changes c USING (change_id)
        WHERE p.value_hash IS DISTINCT FROM c.value_hash ORDER BY 1, 2, 3""").fetchall()
    if drift:
        named = ", ".join(f"{e} {i} {f}" for e, i, f in drift[:SHOWN_IDS])
        raise RestoreRefused(
            f"refused: the backup as of {plan.as_of} no longer holds the values previewed for "
            f"{len(drift)} changes ({named}); the backup was changed (re-run, erasure or "
            f"retention). Run `talentvault restore preview` again.")
    # what to do now: the plan's changes still needed, plus children of records this plan
    # recreated (their tags and, on HighLevel, anything keyed by the new id)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE todo AS
        SELECT c.* FROM changes c
        WHERE c.change_id IN (SELECT change_id FROM planned)
           OR (c.entity = 'contacts' AND c.action IN ('tag_add', 'tag_remove')
               AND c.live_id IN (SELECT live_id FROM restore_ledger WHERE plan_id = ?
                                 AND action = 'create' AND status = 'succeeded'))""",
                [plan.plan_id])
    # a HighLevel `replace` whose delete half was done before a run stopped: the fresh diff
    # sees a missing opportunity (`create`); it finishes the planned replace, under its id
    # (live id NULL: nothing left to delete)
    con.execute("""
        INSERT INTO todo
        SELECT c.* REPLACE (p.change_id AS change_id, 'replace' AS action)
        FROM changes c JOIN planned p
          ON p.entity = 'opportunities' AND p.action = 'replace' AND p.backup_id = c.backup_id
        WHERE c.entity = 'opportunities' AND c.action = 'create'
          AND c.change_id NOT IN (SELECT change_id FROM planned)""")


def execute(con: duckdb.DuckDBPyConnection, root: Path, plan: Plan, client: CrmClient, run: str,
            concurrency: int) -> dict[str, int]:
    done = succeeded_write_ids(con, plan.plan_id)
    # attempt numbers: the highest so far (a `started` row and its outcome share one)
    attempts = dict(con.execute("SELECT write_id, max(attempt) FROM restore_ledger "
                                "WHERE plan_id = ? GROUP BY ALL", [plan.plan_id]).fetchall())
    ledger = Ledger(root, plan.plan_id, run, plan.source)
    runner = Runner(ledger, done, attempts, concurrency)
    confirmed = 0
    try:
        since = plan.live_watermark or plan.as_of
        if plan.source == "keap":
            apply_keap(con, client, runner, since=since)
        else:
            apply_highlevel(con, client, runner, since=since)
        # notes and tasks after the contacts they belong to (new contact ids from the ledger)
        apply_children(con, root, client, runner, plan.source, since)
        confirmed = _confirm_landed(con, root, plan.plan_id, run, ledger)
    finally:
        ledger.close()
    planned = con.execute("SELECT count(*) FROM planned").fetchone()[0]
    needed = con.execute("SELECT count(*) FROM todo").fetchone()[0]
    return {**{k: v for k, v in ledger.counts.items()}, "planned_changes": planned,
            "changes_still_needed": needed, "skipped_already_done": runner.skipped,
            "confirmed_after_crash": confirmed, "api_calls": client.calls}


def _confirm_landed(con: duckdb.DuckDBPyConnection, root: Path, plan_id: str, run: str,
                    ledger: Ledger) -> int:
    """Writes an earlier, killed run sent without recording the answer, whose effect the fresh
    diff shows (nothing left to change for that record, field or tag): recorded as succeeded
    ("confirmed"), so each write of the plan ends with exactly one succeeded row."""
    ledger_relation(con, root)        # again: this run's write-ahead log exists now
    n = 0
    for wid, entity, action, backup_id, live_id, tag, fields, attempt in unresolved_started(
            con, plan_id):
        still_needed = con.execute("""
            SELECT count(*) FROM changes c WHERE c.entity = $entity AND (
                ($action = 'create' AND c.action IN ('create', 'replace')
                 AND c.backup_id = $backup_id)
             OR ($action = 'delete' AND c.action IN ('delete', 'replace')
                 AND c.live_id = $live_id)
             OR ($action = 'update' AND c.action = 'update' AND c.live_id = $live_id
                 AND list_contains($fields, c.field))
             OR ($action IN ('tag_add', 'tag_remove') AND c.action = $action
                 AND c.live_id = $live_id AND c.tag = $tag))""",
            {"entity": entity, "action": action, "backup_id": backup_id, "live_id": live_id,
             "fields": list(fields or []), "tag": tag}).fetchone()[0]
        if still_needed:
            continue
        ledger.record(write_id=wid, entity=entity, action=action, backup_id=backup_id,
                      live_id=live_id, tag=tag, fields=list(fields or []) or None,
                      status=SUCCEEDED, attempt=attempt,
                      error="confirmed: the live record already shows this write (an earlier "
                            "run stopped before recording the answer)")
        n += 1
    return n
