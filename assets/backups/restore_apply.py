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
   opportunities, which need their contact's live id. Every outcome goes to the ledger first;
   a re-run of the plan skips what succeeded.
4. Killed mid-way (SIGKILL, power loss): each write has a `started` ledger row before it is
   sent, so a write whose answer never reached the ledger is known. The next run does not take
   its record's new update time for someone else's edit, looks a create up before sending it
   again (no duplicate contact), and records a write whose effect the fresh diff already shows
   as succeeded ("confirmed") instead of sending it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from assets.backups.catalog import open_catalog
from assets.backups.restore_fields import OPPORTUNITY_FIELDS, SPECS
from assets.backups.restore_ledger import (
    PERMANENT,
    RETRYABLE,
    SUCCEEDED,
    Ledger,
    compact_orphans,
    ledger_relation,
    succeeded_write_ids,
    unresolved_started,
)
from assets.backups.restore_plan import Selection, compute, load_plan, open_client, plan_dir
from orchestration.http import ApiError
from orchestration.storage import audit

KEAP_ARRAYS = ("email_addresses", "phone_numbers", "addresses", "fax_numbers",
               "social_accounts", "custom_fields")
SHOWN_IDS = 10


class RestoreRefused(RuntimeError):
    """The plan no longer describes the live system (or the backup); preview again."""


@dataclass
class Write:
    write_id: str
    entity: str
    action: str
    backup_id: str | None
    live_id: str | None
    fields: list[str]
    run: Callable[[], Any]    # performs the call; returns the live id (or (live id, remark))
    tag: str | None = None


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


def apply(root: Path, plan_id: str, *, client: Any = None, run_id: str | None = None,
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


def prepare(con: duckdb.DuckDBPyConnection, root: Path, plan: Any, client: Any) -> None:
    """Fresh diff, plan rows, and the checks that make apply refuse."""
    compute(con, root, client, plan.source, plan.as_of, Selection(**plan.selection),
            plan.modes, plan.fields)
    path = plan_dir(root, plan.plan_id) / "changes.parquet"
    con.execute(f"CREATE OR REPLACE TEMP TABLE planned AS SELECT * FROM read_parquet('{path}')")
    done = succeeded_write_ids(con, plan.plan_id)
    con.execute("CREATE OR REPLACE TEMP TABLE ours (live_id VARCHAR)")
    # records this plan wrote: succeeded writes, and writes a killed run had sent without
    # recording the answer (they may have landed)
    ours = sorted({v for v in done.values() if v}
                  | {r[4] for r in unresolved_started(con, plan.plan_id) if r[4]})
    if ours:
        con.execute("INSERT INTO ours SELECT unnest(?)", [ours])
    opp_live = ("UNION ALL SELECT 'opportunities', id, _source_updated_at FROM opp_live_all"
                if plan.source == "highlevel" else "")
    changed = con.execute(f"""
        WITH now AS (SELECT 'contacts' AS entity, id, _source_updated_at FROM live_all
                     {opp_live})
        SELECT DISTINCT p.entity, p.live_id,
               CASE WHEN n.id IS NULL THEN 'deleted' ELSE 'changed' END
        FROM planned p LEFT JOIN now n ON n.entity = p.entity AND n.id = p.live_id
        WHERE p.live_id IS NOT NULL AND p.live_id NOT IN (SELECT live_id FROM ours)
          AND (n.id IS NULL OR n._source_updated_at IS DISTINCT FROM p.live_updated_at)
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


def values(con: duckdb.DuckDBPyConnection, rel: str, ids: list[str], fields: tuple
           ) -> dict[str, dict[str, Any]]:
    """Backup values (canonical, parsed) of some records: id -> {field: value}."""
    if not ids:
        return {}
    cols = ", ".join(f'CAST({f.sql} AS VARCHAR) AS "{f.name}"' for f in fields)
    rows = con.execute(f"SELECT id, {cols} FROM {rel} WHERE id IN (SELECT unnest(?))",
                       [ids]).fetchall()
    names = [f.name for f in fields]
    return {r[0]: {n: clean(json.loads(v)) for n, v in zip(names, r[1:], strict=True)
                   if v is not None} for r in rows}


def clean(value: Any) -> Any:
    """Drop null members of objects (the canonical form keeps every key of its shape)."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def execute(con: duckdb.DuckDBPyConnection, root: Path, plan: Any, client: Any, run: str,
            concurrency: int) -> dict[str, int]:
    done = succeeded_write_ids(con, plan.plan_id)
    # attempt numbers: the highest so far (a `started` row and its outcome share one)
    attempts = dict(con.execute("SELECT write_id, max(attempt) FROM restore_ledger "
                                "WHERE plan_id = ? GROUP BY ALL", [plan.plan_id]).fetchall())
    ledger = Ledger(root, plan.plan_id, run, plan.source)
    runner = Runner(ledger, done, attempts, concurrency)
    confirmed = 0
    try:
        if plan.source == "keap":
            from assets.backups.restore_keap import apply_keap

            apply_keap(con, client, runner, since=plan.live_watermark or plan.as_of)
        else:
            from assets.backups.restore_highlevel import apply_highlevel

            apply_highlevel(con, client, runner, since=plan.live_watermark or plan.as_of)
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


class Runner:
    """Runs writes in a small pool, skipping what succeeded before, recording every outcome."""

    def __init__(self, ledger: Ledger, done: dict[str, str | None], attempts: dict[str, int],
                 concurrency: int):
        self.ledger, self.done, self.attempts = ledger, done, attempts
        self.concurrency = max(1, concurrency)
        self.skipped = 0

    def tried_before(self, write_id: str) -> bool:
        return self.attempts.get(write_id, 0) > 0

    def run(self, writes: list[Write]) -> dict[str, str | None]:
        """Run the writes (a phase); returns write_id -> live id for the ones that succeeded
        now or before."""
        results: dict[str, str | None] = {}
        todo = []
        for w in writes:
            if w.write_id in self.done:
                results[w.write_id] = self.done[w.write_id] or w.live_id
                self.skipped += 1
            else:
                todo.append(w)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            for w, live_id in zip(todo, pool.map(self._one, todo), strict=True):
                if live_id is not False:
                    results[w.write_id] = live_id
        return results

    def start(self, writes: list[Write]) -> None:
        """`started` rows, before the calls are sent (see the module docstring, 4.)."""
        self.ledger.record_started([
            {"write_id": w.write_id, "entity": w.entity, "action": w.action,
             "backup_id": w.backup_id, "live_id": w.live_id, "tag": w.tag, "fields": w.fields,
             "attempt": self.attempts.get(w.write_id, 0) + 1} for w in writes])

    def _one(self, w: Write) -> str | None | bool:
        attempt = self.attempts.get(w.write_id, 0) + 1
        common = {"write_id": w.write_id, "entity": w.entity, "action": w.action,
                  "backup_id": w.backup_id, "tag": w.tag, "fields": w.fields or None,
                  "attempt": attempt}
        self.start([w])
        try:
            live_id = w.run()
        except ApiError as e:
            status = RETRYABLE if e.retryable else PERMANENT
            self.ledger.record(**common, live_id=w.live_id, status=status,
                               http_status=e.status, error=_error_text(e))
            return False
        except (KeyError, ValueError, TypeError) as e:
            self.ledger.record(**common, live_id=w.live_id, status=PERMANENT,
                               error=f"{type(e).__name__}: {e}")
            return False
        note = None
        if isinstance(live_id, tuple):   # succeeded with a remark (e.g. a field left out)
            live_id, note = live_id
        self.ledger.record(**common, live_id=live_id or w.live_id, status=SUCCEEDED, error=note)
        return live_id or w.live_id

    def record_outcome(self, w: Write, status: str, error: str | None = None,
                       http_status: int | None = None, live_id: str | None = None) -> None:
        """For batched calls (tags): one ledger row per record of the batch."""
        self.ledger.record(write_id=w.write_id, entity=w.entity, action=w.action,
                           backup_id=w.backup_id, live_id=live_id or w.live_id, tag=w.tag,
                           fields=w.fields or None, status=status, error=error,
                           http_status=http_status,
                           attempt=self.attempts.get(w.write_id, 0) + 1)


def _error_text(e: ApiError) -> str:
    """Status, call and the names of the fields the vendor objected to: the vendor's message
    itself can quote the values sent, so it is not kept."""
    path = e.url.split("?", 1)[0]
    names: list[str] = []
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        body = json.loads(e.body or "")
        names += [str(d.get("resource")) for d in body.get("details") or [] if d.get("resource")]
        meta = body.get("meta") or {}
        if meta.get("matchingField"):
            names.append(f"duplicate {meta['matchingField']} of contact {meta.get('contactId')}")
    where = f" ({', '.join(names)})" if names else ""
    return f"HTTP {e.status} {e.method} {path}{where}" if e.status else f"{e.method} {path}: " \
        f"no reply after {e.attempts} attempts"


def write_id(*parts: str | None) -> str:
    import hashlib

    return hashlib.sha256("|".join(p or "" for p in parts).encode()).hexdigest()[:32]


__all__ = ["OPPORTUNITY_FIELDS", "SPECS", "RestoreRefused", "Runner", "Write", "apply",
           "clean", "values", "write_id"]
