"""HighLevel notes and tasks: records that belong to a contact, listed per contact.

HighLevel lists a contact's notes or tasks in one unpaged call (`GET /contacts/{id}/notes`) and
offers no "changed since" listing for them: a note's only time is its creation (an edit keeps
`dateAdded`), a task has none. So a backup chooses **which contacts to read**, and each listing is
complete for its contact:

- a **full** backup (the first, or a restarted chain) reads every contact;
- an **incremental** reads the contacts whose notes or tasks can have changed: the ones the
  webhook inbox names (NoteCreate / NoteUpdate / NoteDelete, TaskCreate / TaskComplete /
  TaskDelete carry the contact; ContactCreate / ContactDelete the contact itself) and the
  contacts created or updated in the window (HighLevel's contact search, by update time). Every
  contact is read again on the deletion sweep's days (`TALENTVAULT_DELETION_SWEEP`,
  assets/deletions.py: daily for small accounts, weekly beyond 20,000 records): what no webhook
  announced (a task edited, a webhook lost) is seen at the latest then;
- a version is written only when the record is new or its content differs from the backed-up
  one (the listing repeats every unchanged note of a contact read again), stamped with the time
  the backup saw it; a record that was alive and is missing from its contact's listing, or whose
  contact is gone, is deleted; on a sweep, so is every record of a contact no longer listed.

Each partition's manifest says what was read (`deletions`: policy, swept, contacts read and why,
versions unchanged and skipped, deletions by listing and by webhook).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from assets import deletions
from orchestration.resources.highlevel import HighLevelClient
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.schema import canonical_json
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.storage.writer import PartitionWriter
from orchestration.webhooks.inbox import events_sql

OBJECT_TYPES = {"notes": "note", "tasks": "task", "appointments": "appointment"}
BATCH = 500             # records per batch handed to the writer


def contact_ids(client: HighLevelClient, updated_from: datetime | None = None,
                updated_to: datetime | None = None) -> list[str]:
    return [str(c["id"]) for page in client.contact_pages(updated_from=updated_from,
                                                          updated_to=updated_to)
            for c in page]


def inbox_contacts(storage: SnapshotStorage, kind: str, since: datetime) -> set[str]:
    """Contacts the webhook inbox names since `since`: the contact of a note or task event,
    and a created or deleted contact itself."""
    events = events_sql(storage.path(), since=(since - timedelta(days=1)).date())
    if events is None:
        return set()
    con = connect_duckdb()
    try:
        rows = con.execute(f"""
            SELECT DISTINCT CASE WHEN object_type = 'contact' THEN object_id
                                 ELSE related_id END
            FROM ({events})
            WHERE source = 'highlevel'
              AND coalesce(vendor_timestamp, received_at) >= ?::TIMESTAMPTZ
              AND (object_type = ? OR event_type IN ('ContactCreate', 'ContactDelete'))
        """, [since, OBJECT_TYPES[kind]]).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows if r[0]}


def read(client: HighLevelClient, kind: str, contacts: list[str],
         missing: set[str]) -> list[dict[str, Any]]:
    """The notes or tasks of each contact; contacts that are gone go to `missing`."""
    listed: list[dict[str, Any]] = []
    for cid in contacts:
        items = client.contact_children(cid, kind)
        if items is None:
            missing.add(cid)
        else:
            listed += items
    return listed


def extract(kind: str, client: HighLevelClient, storage: SnapshotStorage,
            writer: PartitionWriter, day: date, mode: str, window_from: datetime | None,
            window_to: datetime) -> list[str]:
    """Write the day's notes or tasks through `writer`; returns the ids deleted since."""
    calls = client.calls
    missing: set[str] = set()
    if mode == "full":
        contacts = contact_ids(client)
        why = {"all": len(contacts)}
        sweep = None
    else:
        sweep = deletions.plan_sweep(storage, "highlevel", kind, day)
        if sweep.run:
            contacts = contact_ids(client)
            why = {"all": len(contacts)}
        else:
            assert window_from is not None
            hooked = inbox_contacts(storage, kind, window_from)
            changed = set(contact_ids(client, window_from, window_to))
            contacts = sorted(hooked | changed)
            why = {"named_by_webhooks": len(hooked), "changed_in_window": len(changed)}
    listed = read(client, kind, contacts, missing)
    alive = deletions.alive_before_sql(storage, "highlevel", kind, day, "id, contactId, _raw")
    con = connect_duckdb()
    try:
        kept, skipped, gone = _diff(con, alive, listed, contacts, missing,
                                    everything=mode == "full" or bool(sweep and sweep.run))
        hooked_gone = [] if sweep is None else deletions.webhook_deletions(
            con, storage.path(), storage, "highlevel", kind, day, "VARCHAR")
    finally:
        con.close()
    add(writer, kept)
    counts = {"contacts_read": len(contacts), "contacts_gone": len(missing), **why,
              "listed": len(listed), "unchanged_skipped": skipped, "from_listing": len(gone),
              "read_calls": client.calls - calls}
    if sweep is None:
        writer.extra["deletions"] = {"policy": "full", "swept": True,
                                     "live_ids": len(listed), **counts}
        return gone
    writer.extra["deletions"] = sweep.manifest(
        **counts, **({"live_ids": len(listed)} if sweep.run else {}),
        from_webhooks=len(hooked_gone))
    return sorted(set(gone) | set(hooked_gone))


def add(writer: PartitionWriter, records: list[dict[str, Any]]) -> None:
    for i in range(0, len(records), BATCH):
        writer.add(records[i:i + BATCH])


def _diff(con: duckdb.DuckDBPyConnection, alive: str | None, listed: list[dict[str, Any]],
          contacts: list[str], missing: set[str], *, everything: bool
          ) -> tuple[list[dict[str, Any]], int, list[str]]:
    """What to write (new or changed records), how many listed records were unchanged, and
    which alive records are gone: missing from their contact's listing, their contact gone, or
    (`everything`: every contact was listed) their contact no longer listed."""
    if alive is None:
        return listed, 0, []
    kept, skipped = changed(con, alive, listed)
    seen = pa.table({"id": [str(r["id"]) for r in listed]})  # noqa: F841  (read by DuckDB)
    read_set = pa.table({"contactId": contacts})  # noqa: F841
    gone_set = pa.table({"contactId": sorted(missing)})  # noqa: F841
    listed_contacts = "" if everything else "AND a.contactId IN (SELECT contactId FROM read_set)"
    gone = [r[0] for r in con.execute(f"""
        SELECT a.id FROM ({alive}) a
        WHERE a.id NOT IN (SELECT id FROM seen)
          AND (a.contactId IN (SELECT contactId FROM gone_set)
               OR (TRUE {listed_contacts}))
        ORDER BY a.id
    """).fetchall()]
    return kept, skipped, gone


def changed(con: duckdb.DuckDBPyConnection, alive: str | None,
            listed: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The listed records that are new or differ from their backed-up version (`_raw` of the
    `alive` state), and how many were unchanged: a listing repeats every unchanged record."""
    if alive is None:
        return listed, 0
    seen = pa.table({"id": [str(r["id"]) for r in listed],  # noqa: F841  (read by DuckDB)
                     "raw": [canonical_json(r) for r in listed]})
    unchanged = {r[0] for r in con.execute(f"""
        SELECT s.id FROM seen s JOIN ({alive}) a ON a.id = s.id AND a._raw = s.raw
    """).fetchall()}
    kept = [r for r in listed if str(r["id"]) not in unchanged]
    return kept, len(listed) - len(kept)
