"""The changeset's counts for metadata and the manifest (no values), and where a day's
partition lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from assets.sync.changeset.base import ACTIONS, NAME, SOURCE
from orchestration.storage.derived import partition_dir


def summary_counts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts for metadata and the manifest: per action, contacts and fields touched,
    conflicts, skipped (dead letter, shared contact). No values."""
    by_action = dict(con.execute(
        "SELECT action, count(*) FROM changeset GROUP BY action").fetchall())
    fields = dict(con.execute("""
        SELECT f, count(*) FROM (SELECT unnest(fields) AS f FROM changeset
                                 WHERE action IN ('create', 'update'))
        GROUP BY f ORDER BY f""").fetchall())
    contacts, profiles, conflicts = con.execute("""
        SELECT count(DISTINCT contact_id), count(DISTINCT profile_id),
               count(*) FILTER (WHERE conflict IS NOT NULL) FROM changeset""").fetchone()
    kept, no_slot = con.execute("""
        SELECT count(*) FILTER (WHERE note LIKE '%(keap_wins)'),
               count(*) FILTER (WHERE note LIKE '%slot') FROM diff""").fetchone()
    rejected, rejected_contacts, rejected_profiles = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE scope = 'contact'), count(DISTINCT profile_id)
        FROM rejects""").fetchone()
    skipped = con.execute("SELECT count(*) FROM skipped").fetchone()[0]
    shared = con.execute("SELECT count(*) FROM shared").fetchone()[0]
    return {
        **{a: int(by_action.get(a, 0)) for a in ACTIONS},
        "changes": int(sum(by_action.values())),
        "contacts_touched": int(contacts) + int(by_action.get("create", 0)),
        "profiles_touched": int(profiles),
        "fields_touched": {k: int(v) for k, v in fields.items()},
        "conflicts": int(conflicts),
        "fields_kept_keap_wins": int(kept),
        "fields_without_free_slot": int(no_slot),
        "skipped_dead_letter": int(skipped),
        "skipped_shared_contact": int(shared),
        "rejected": int(rejected),
        "rejected_contacts": int(rejected_contacts),
        "rejected_profiles": int(rejected_profiles),
    }


def changeset_partition(root: Path, day: str) -> Path:
    return partition_dir(root, NAME, day, SOURCE)
