"""HighLevel appointments (interview schedules): which ones a backup reads, and what is gone.

What the API allows: `GET /calendars/events` lists one calendar's appointments by **event
time** (their start in [startTime, endTime], epoch ms; unpaged; no "changed since" filter);
`GET /contacts/{id}/appointments` lists all of one contact's, in a thinner shape
(GetEventSchema); `GET /calendars/events/appointments/{id}` reads one whole. An appointment
carries `dateUpdated`, but nothing lists by it. So:

- a **full** backup (the first, a restarted chain) and the deletion sweep's days
  (`TALENTVAULT_DELETION_SWEEP`, assets/deletions.py) list every calendar over all of event
  time (HISTORY_FROM to HORIZON ahead, a year a call);
- an **incremental** lists every calendar over a rolling window of event time, LOOKBACK before
  the day to LOOKAHEAD after it (where bookings, reschedules, cancellations and showed / no-show
  marks happen), plus the contacts the webhook inbox names (AppointmentCreate / Update /
  Delete carry the contact; ContactCreate / ContactDelete the contact itself) through their
  per-contact listing, complete for that contact (the per-parent machinery of
  assets/highlevel/children.py). An appointment the contact listing shows but the window did
  not is read whole by id (the listing's shape is not the event's);
- what is gone: an alive appointment missing from its contact's listing, or whose contact is
  gone; one that should have been in a window that was read (its backed-up start inside it, or
  its calendar no longer listed) and is not is read by id: gone when HighLevel no longer has
  it, else written as it is now (moved out of the window); the inbox's AppointmentDelete;
- a version is written only when the record is new or differs from the backed-up one; its
  version time is `dateUpdated`.

Trade-off: a change outside the window that no webhook announced (an old appointment
re-marked, a lost delivery) is seen at the next sweep, up to 7 days late for large accounts.
Cost of an incremental: 1 + calendars + named contacts + appointments read by id calls.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from assets import deletions
from assets.highlevel import children
from orchestration.resources.highlevel import HighLevelClient
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.storage.writer import PartitionWriter

LOOKBACK = timedelta(days=30)      # past appointments still being marked showed / no-show
LOOKAHEAD = timedelta(days=180)    # bookings and reschedules ahead
HISTORY_FROM = datetime(2018, 1, 1, tzinfo=UTC)   # before HighLevel's API existed
HORIZON = timedelta(days=730)      # a full listing reaches this far ahead
SPAN = timedelta(days=365)         # event time per listing call


def spans(lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """[lo, hi] cut into listing calls of at most SPAN (the listing's ends are inclusive)."""
    out, at = [], lo
    while at <= hi:
        end = min(at + SPAN, hi)
        out.append((at, end))
        at = end + timedelta(milliseconds=1)
    return out


def extract(kind: str, client: HighLevelClient, storage: SnapshotStorage,
            writer: PartitionWriter, day: date, mode: str, window_from: datetime | None,
            window_to: datetime) -> list[str]:
    """Write the day's new and changed appointments through `writer`; returns the ids
    deleted since the backed-up state. (`kind` is "appointments": the per-parent signature.)"""
    calls = client.calls
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    sweep = None if mode == "full" else deletions.plan_sweep(storage, "highlevel", kind, day)
    everything = sweep is None or sweep.run
    lo, hi = ((HISTORY_FROM, start + timedelta(days=1) + HORIZON) if everything
              else (start - LOOKBACK, start + timedelta(days=1) + LOOKAHEAD))
    calendars = [str(c["id"]) for c in client.calendars()]
    listed: dict[str, dict[str, Any]] = {}
    for cal in calendars:
        for a, b in spans(lo, hi):
            listed.update((str(e["id"]), e) for e in client.calendar_events(cal, a, b))
    in_windows = len(listed)
    named: list[str] = []
    missing: set[str] = set()
    if not everything:
        assert window_from is not None
        named = sorted(children.inbox_contacts(storage, kind, window_from))
    by_contact = {str(e["id"]) for e in children.read(client, kind, named, missing)}
    by_id = sorted(by_contact - listed.keys())
    alive = deletions.alive_before_sql(storage, "highlevel", kind, day,
                                       "id, contactId, calendarId, startTime, _raw")
    con = connect_duckdb()
    try:
        gone, doubtful = _missing(con, alive, listed.keys() | by_contact,
                                  [c for c in named if c not in missing], missing, calendars,
                                  None if everything else (lo, hi))
        for aid in by_id + doubtful:
            record = client.appointment(aid)
            if record is not None:
                listed[aid] = record
            elif aid in doubtful:
                gone.append(aid)
        kept, skipped = children.changed(con, alive, list(listed.values()))
        hooked = [] if sweep is None else deletions.webhook_deletions(
            con, storage.path(), storage, "highlevel", kind, day, "VARCHAR")
    finally:
        con.close()
    children.add(writer, kept)
    hooked = [i for i in hooked if i not in listed]
    counts = {"calendars": len(calendars), "event_time_from": lo.date().isoformat(),
              "event_time_to": hi.date().isoformat(), "listed_in_windows": in_windows,
              "contacts_read": len(named), "contacts_gone": len(missing),
              "read_by_id": len(by_id) + len(doubtful), "unchanged_skipped": skipped,
              "from_listing": len(gone), "read_calls": client.calls - calls}
    if sweep is None:
        writer.extra["deletions"] = {"policy": "full", "swept": True, "live_ids": len(listed),
                                     **counts}
        return sorted(gone)
    writer.extra["deletions"] = sweep.manifest(
        **counts, **({"live_ids": len(listed)} if sweep.run else {}),
        from_webhooks=len(hooked))
    return sorted(set(gone) | set(hooked))


def _missing(con: Any, alive: str | None, seen: set[str], contacts: list[str],
             contacts_gone: set[str], calendars: list[str],
             window: tuple[datetime, datetime] | None) -> tuple[list[str], list[str]]:
    """Alive appointments that were not seen: (gone: missing from their contact's complete
    listing, or their contact gone; doubtful: expected in a calendar window that was read, or
    on a calendar no longer listed; `window` None: every calendar over all time was read)."""
    if alive is None:
        return [], []
    ids = pa.table({"id": sorted(seen)})  # noqa: F841  (read by DuckDB)
    read_set = pa.table({"contactId": contacts})  # noqa: F841
    gone_set = pa.table({"contactId": sorted(contacts_gone)})  # noqa: F841
    cals = pa.table({"calendarId": calendars})  # noqa: F841
    in_window = "TRUE" if window is None else "a.startTime BETWEEN ? AND ?"
    rows = con.execute(f"""
        SELECT a.id, a.contactId IN (SELECT contactId FROM read_set)
                     OR a.contactId IN (SELECT contactId FROM gone_set) AS listed_by_contact
        FROM ({alive}) a
        WHERE a.id NOT IN (SELECT id FROM ids)
          AND (a.contactId IN (SELECT contactId FROM read_set)
               OR a.contactId IN (SELECT contactId FROM gone_set)
               OR a.calendarId IS NULL OR a.calendarId NOT IN (SELECT calendarId FROM cals)
               OR ({in_window}))
        ORDER BY a.id
    """, [] if window is None else list(window)).fetchall()
    return [r[0] for r in rows if r[1]], [r[0] for r in rows if not r[1]]
