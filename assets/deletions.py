"""How a backup learns that records were deleted at the vendor.

No vendor's change listing shows deletions (Greenhouse: "deletions are visible only by webhook or
by diffing full id listings"; Keap and HighLevel likewise). Two signals exist:

- the **id sweep**: list every id the API still has and diff it with the backed-up state. Exact,
  but it costs a listing of the whole entity (Greenhouse has no id-only listing: every record
  again; Keap's `fields=id` listing 1,000 ids a call), so a daily sweep makes an incremental
  cost as much as a full backup;
- **webhook deletions**: the inbox's `delete` rows (Greenhouse `delete_candidate`,
  `delete_application`, `merge_candidate`'s duplicate, `offer_deleted`; Keap `contact.delete`,
  `note.delete`, `task.delete`, `opportunity.delete`, `company.delete`;
  HighLevel `ContactDelete`, `OpportunityDelete`), free and on time when the vendor delivers.

The policy (`TALENTVAULT_DELETION_SWEEP`): `daily` sweeps on every incremental (the exact
behaviour, at the cost above); `weekly` sweeps when the entity's last sweep (a full backup counts)
is 7 days old and takes the inbox's deletions on the other days; `auto` (the default) is daily
while the entity is small (the last sweep listed at most 20,000 ids: a few dozen calls) and weekly
beyond. The trade-off, in `weekly`: a deletion the vendor's webhook did not deliver (webhooks not
registered, or lost) is seen up to 7 days late, at the next sweep; as-of queries in between show
the record alive. The webhook deletions are taken on every incremental, sweep day or not. Each
partition's manifest says which signal it used (`deletions`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb

from orchestration.storage.snapshots import SnapshotStorage
from orchestration.storage.state_sql import history_sql, state_sql
from orchestration.webhooks.inbox import events_sql

POLICY_VAR = "TALENTVAULT_DELETION_SWEEP"
POLICIES = ("auto", "daily", "weekly")
AUTO_DAILY_MAX_IDS = 20_000
SWEEP_EVERY_DAYS = 7
# the inbox's object type of each entity whose deletions vendors announce by webhook
OBJECT_TYPES = {
    ("greenhouse", "candidates"): "candidate", ("greenhouse", "applications"): "application",
    ("greenhouse", "offers"): "offer", ("greenhouse", "jobs"): "job",
    ("keap", "contacts"): "contact", ("keap", "notes"): "note", ("keap", "tasks"): "task",
    ("keap", "opportunities"): "opportunity", ("keap", "companies"): "company",
    ("highlevel", "contacts"): "contact", ("highlevel", "opportunities"): "opportunity",
    ("highlevel", "notes"): "note", ("highlevel", "tasks"): "task",
    ("highlevel", "conversations"): "conversation", ("highlevel", "messages"): "message",
    ("highlevel", "appointments"): "appointment",
}


class PolicyError(ValueError):
    """TALENTVAULT_DELETION_SWEEP holds something else than auto, daily or weekly."""


def policy() -> str:
    value = os.environ.get(POLICY_VAR, "auto").strip().lower() or "auto"
    if value not in POLICIES:
        raise PolicyError(f"{POLICY_VAR}={value!r} is not a deletion sweep policy: set it to "
                          "auto, daily or weekly (or leave it unset for auto)")
    return value


@dataclass(frozen=True)
class Sweep:
    policy: str            # daily | weekly (auto resolved)
    run: bool              # list every id today
    reason: str
    next_sweep: str | None = None

    def manifest(self, **counts: Any) -> dict[str, Any]:
        return {"policy": self.policy, "swept": self.run, "reason": self.reason,
                **({"next_sweep": self.next_sweep} if self.next_sweep else {}), **counts}


def plan_sweep(storage: SnapshotStorage, source: str, entity: str, day: date) -> Sweep:
    """Whether today's incremental lists every id, by the policy and the entity's manifests."""
    chosen = policy()
    earlier = [m for m in storage.manifests(source, entity) if m["snapshot_date"] < day.isoformat()]
    swept = [m for m in earlier if _swept(m)]
    if chosen == "auto":
        live = _live_ids(swept[-1]) if swept else None
        chosen = "daily" if live is None or live <= AUTO_DAILY_MAX_IDS else "weekly"
        why = (f"auto: {live:,} ids at the last sweep" if live is not None
               else "auto: no sweep yet")
        why += f" ({'at most' if chosen == 'daily' else 'more than'} {AUTO_DAILY_MAX_IDS:,})"
    else:
        why = f"{POLICY_VAR}={chosen}"
    if chosen == "daily":
        return Sweep("daily", True, why)
    if not swept:
        return Sweep("weekly", True, f"{why}; no sweep yet")
    last = date.fromisoformat(swept[-1]["snapshot_date"])
    due = last + timedelta(days=SWEEP_EVERY_DAYS)
    if day >= due:
        return Sweep("weekly", True, f"{why}; last sweep on {last}", due.isoformat())
    return Sweep("weekly", False, f"{why}; last sweep on {last}, next on {due}; deletions "
                 "from webhooks meanwhile", due.isoformat())


def _swept(manifest: dict[str, Any]) -> bool:
    deletions = manifest.get("deletions")
    if deletions is not None:
        return bool(deletions.get("swept"))
    return True   # partitions from before the policy: full, or incremental with a daily sweep


def _live_ids(manifest: dict[str, Any]) -> int | None:
    live = (manifest.get("deletions") or {}).get("live_ids")
    if live is not None:
        return int(live)
    return int(manifest.get("upserts", 0)) if manifest.get("mode") == "full" else None


def alive_before_sql(storage: SnapshotStorage, source: str, entity: str,
                     day: date, columns: str = "id") -> str | None:
    """SELECT `columns` of every record alive in the backed-up state before `day` (None: no
    state)."""
    entity_dir = storage.entity_dir(source, entity)
    earlier = [d for d in entity_dir.glob("snapshot_date=*")
               if d.name.split("=", 1)[1] < day.isoformat() and any(d.glob("*.parquet"))]
    if not earlier:
        return None
    state = state_sql(history_sql(entity_dir, before_day=day.isoformat()),
                      entity_dir=entity_dir, before_day=day.isoformat())
    return f"SELECT {columns} FROM ({state})"


def parent_gone(con: duckdb.DuckDBPyConnection, storage: SnapshotStorage, source: str,
                entity: str, day: date, column: str, parent: str) -> list[Any]:
    """Ids alive before `day` whose parent (`column` -> `parent` entity) is not alive at the end
    of `day` in the parent's backup: a deleted HighLevel conversation takes its messages, and
    the conversations are listed whole every day. Nothing when the parent has no partition
    for `day` (its backup has not run: nothing can be concluded)."""
    if not any(storage.partition_dir(source, parent, day).glob("*.parquet")):
        return []
    alive = alive_before_sql(storage, source, entity, day, f"id, {column} AS parent_id")
    parents = alive_before_sql(storage, source, parent, day + timedelta(days=1))
    if alive is None or parents is None:
        return []
    rows = con.execute(f"""
        SELECT a.id FROM ({alive}) a
        WHERE a.parent_id IS NOT NULL AND a.parent_id NOT IN (SELECT id FROM ({parents}))
        ORDER BY a.id
    """).fetchall()
    return [r[0] for r in rows]


def webhook_deletions(con: duckdb.DuckDBPyConnection, root: Path, storage: SnapshotStorage,
                      source: str, entity: str, day: date, id_type: str) -> list[Any]:
    """Ids alive before `day` whose deletion the webhook inbox holds. Like a sweep, this is
    what is gone when the backup runs (Greenhouse's deletion webhooks carry no time of their
    own, and the receive time is the receiver's clock, not the vendor's): a deletion made
    after the window's end and before the run is stamped in this partition, as a sweep at that
    moment would."""
    object_type = OBJECT_TYPES.get((source, entity))
    alive = alive_before_sql(storage, source, entity, day)
    events = events_sql(root)
    if object_type is None or alive is None or events is None:
        return []
    rows = con.execute(f"""
        SELECT a.id FROM ({alive}) a
        SEMI JOIN (
            SELECT TRY_CAST(object_id AS {id_type}) AS id FROM ({events})
            WHERE source = ? AND object_type = ? AND op = 'delete'
        ) d USING (id)
        ORDER BY a.id
    """, [source, object_type]).fetchall()
    return [r[0] for r in rows]
