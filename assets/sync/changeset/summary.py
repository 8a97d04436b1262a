"""The changeset's counts for metadata and the manifest (no values), and where a day's
partition lives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from assets.sync.changeset.base import ACTIONS, NAME, SOURCE
from orchestration.storage.derived import partition_dir


def profile_counts(con: duckdb.DuckDBPyConnection) -> None:
    """`profile_counts`: per profile, what no changeset row carries (fields kept by keap_wins,
    fields without a free slot, changes skipped as dead letters, a shared contact lost), so an
    incremental build can keep the counts of the profiles it does not recompute."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE profile_counts AS
        SELECT profile_id, sum(kept)::BIGINT AS kept, sum(no_slot)::BIGINT AS no_slot,
               sum(skipped)::BIGINT AS skipped, sum(shared)::BIGINT AS shared
        FROM (SELECT profile_id, count(*) FILTER (WHERE note LIKE '%(keap_wins)') AS kept,
                     count(*) FILTER (WHERE note LIKE '%slot') AS no_slot, 0 AS skipped,
                     0 AS shared FROM diff GROUP BY profile_id
              UNION ALL
              SELECT profile_id, 0, 0, count(*), 0 FROM skipped GROUP BY profile_id
              UNION ALL
              SELECT profile_id, 0, 0, 0, count(*) FROM shared GROUP BY profile_id)
        GROUP BY profile_id
        HAVING sum(kept) + sum(no_slot) + sum(skipped) + sum(shared) > 0
    """)


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
    kept, no_slot, skipped, shared = con.execute("""
        SELECT coalesce(sum(kept), 0), coalesce(sum(no_slot), 0), coalesce(sum(skipped), 0),
               coalesce(sum(shared), 0) FROM profile_counts""").fetchone()
    rejected, rejected_contacts, rejected_profiles = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE scope = 'contact'), count(DISTINCT profile_id)
        FROM rejects""").fetchone()
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
