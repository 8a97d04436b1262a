"""The audit trail: one append-only record per backup run, sync push, restore preview, restore
apply, erasure and retention prune, and per read through the SQL door (`sql_query`,
`sql_export`; orchestration/storage/read_audit.py): who, what, when, counts and ids, never personal
values. `subjects` lists the people an event is about, as ids (`profile:42`,
`keap_contact:17`), so "who looked at this person" is a query (`talentvault audit reads`).

Each event is its own small Parquet file, `<root>/audit/events/date=YYYY-MM-DD/<ts>-<id>.parquet`,
written to a temporary name and renamed, so a crash never leaves half an event and concurrent
writers (Dagster steps in several processes) never contend for one file. The catalog exposes them
as `audit.events`.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from orchestration.storage import parquet, primary

AUDIT_DIR = ("audit", "events")
ACTIONS = ("backup", "sync_push", "restore_preview", "restore_apply", "erasure",
           "retention_prune", "verify", "webhook_register", "sql_query", "sql_export",
           "sql_refused", "sql_session")
# who acts, when a person (not a Dagster run) does: set by a wrapper that knows the person
ACTOR_ENV = "TALENTVAULT_ACTOR"
SCHEMA = pa.schema([
    ("event_id", pa.string()), ("at", pa.timestamp("us", tz="UTC")), ("action", pa.string()),
    ("actor", pa.string()), ("run_id", pa.string()), ("target", pa.string()),
    ("plan_id", pa.string()), ("status", pa.string()), ("counts", pa.string()),
    ("details", pa.string()), ("subjects", pa.list_(pa.string())),
])


def events_dir(root: Path) -> Path:
    return Path(root).joinpath(*AUDIT_DIR)


def events_glob(root: Path) -> str:
    return str(events_dir(root) / "date=*" / "*.parquet")


def actor(run_id: str | None = None) -> str:
    """Who acted: the Dagster run (for runs launched from the UI, a schedule or a sensor), the
    person named by `TALENTVAULT_ACTOR` (a wrapper that authenticated them), or the
    operating-system user (for the CLI)."""
    if run_id:
        return f"dagster-run:{run_id}"
    if os.environ.get(ACTOR_ENV, "").strip():
        return f"actor:{os.environ[ACTOR_ENV].strip()}"
    try:
        return f"os-user:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"os-uid:{os.getuid()}"


def record(root: Path, action: str, *, target: str, status: str = "succeeded",
           run_id: str | None = None, who: str | None = None, plan_id: str | None = None,
           counts: dict[str, int | float] | None = None,
           details: dict[str, Any] | None = None,
           subjects: list[str] | None = None) -> str:
    """Append one event; returns its id. `target` names what was acted on (an asset key, a
    source, a plan); `counts` and `details` must hold ids and numbers only, never personal
    values (emails, names, phones); `subjects` the ids of the people it is about."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; expected one of {', '.join(ACTIONS)}")
    now = datetime.now(UTC)
    event_id = uuid.uuid4().hex
    row = {"event_id": event_id, "at": now, "action": action, "actor": who or actor(run_id),
           "run_id": run_id, "target": target, "plan_id": plan_id, "status": status,
           "counts": json.dumps(counts or {}, sort_keys=True, default=str),
           "details": json.dumps(details or {}, sort_keys=True, default=str),
           "subjects": sorted(set(subjects or []))}
    folder = events_dir(root) / f"date={now.date().isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{now.strftime('%Y%m%dT%H%M%S%f')}-{event_id[:12]}.parquet"
    tmp = folder / f".{name}.tmp"
    parquet.write_table(pa.Table.from_pylist([row], schema=SCHEMA), tmp)
    os.replace(tmp, folder / name)
    primary.sync_up(root)   # a bucket primary: the event goes up at once
    return event_id
