"""The build: who is left out (quarantine, suppression, shared emails, consent), the desired
table, its manifest extras and the written partition."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import duckdb

from assets.identity.config import NormalizationConfig
from assets.identity.inputs import has_partition
from assets.identity.normalize import connect
from assets.sync.desired import events as stream
from assets.sync.desired.base import NAME, SOURCE, STATE
from assets.sync.desired.fields import fields
from assets.sync.desired.state import current_state, load_inputs, register_rules
from assets.sync.desired.tags import tags
from assets.sync.mapping import Mapping
from orchestration.storage import suppression
from orchestration.storage.derived import read_manifest, write_partition


def exclusions(con: duckdb.DuckDBPyConnection, m: Mapping, root: Path) -> None:
    """`sync_excluded(profile_id, reason)`: one reason per left-out profile."""
    suppression.register(con, root)
    skip_consent = "p.can_email IS NOT DISTINCT FROM FALSE" if m.can_email_false == "skip" \
        else "FALSE"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_excluded AS
        WITH cids AS (SELECT profile_id, unnest(candidate_ids) AS cid FROM prof),
        mails AS (SELECT profile_id, unnest(emails) AS e FROM prof),
        quarantined AS (SELECT DISTINCT profile_id FROM cids
                        WHERE cid IN (SELECT candidate_id FROM quar
                                      WHERE candidate_id IS NOT NULL)),
        suppressed AS (
            SELECT profile_id FROM mails
            WHERE tv_identity_hash('email', e) IN (SELECT hash FROM suppressed_hashes)
            UNION SELECT profile_id FROM prof
            WHERE tv_identity_hash('email', email) IN (SELECT hash FROM suppressed_hashes)
            UNION SELECT profile_id FROM cids
            WHERE tv_identity_hash('greenhouse_candidate', cid)
                  IN (SELECT hash FROM suppressed_hashes)),
        shared AS (SELECT DISTINCT profile_id FROM mails WHERE e IN (
                       SELECT e FROM mails GROUP BY e HAVING count(DISTINCT profile_id) > 1))
        SELECT * FROM (
        SELECT p.profile_id,
               CASE WHEN p.profile_id IN (SELECT profile_id FROM quarantined) THEN 'quarantined'
                    WHEN p.profile_id IN (SELECT profile_id FROM suppressed) THEN 'suppressed'
                    WHEN p.email IS NULL THEN 'no_email'
                    WHEN p.profile_id IN (SELECT profile_id FROM shared) THEN 'shared_email'
                    WHEN {skip_consent} THEN 'can_email_false'
               END AS reason
        FROM prof p) WHERE reason IS NOT NULL
    """)


DESIRED_SQL = """
    SELECT p.profile_id, p.email, p.emails, f.fields,
           coalesce(t.tags, []::VARCHAR[]) AS tags,
           coalesce(c.events, []::VARCHAR[]) AS events,
           -- which recorded events (sync/events) imply each tag: what the ledger's tag writes
           -- link to (sync.ledger_events)
           te.tag_events,
           -- what the Keap changeset reads of the row: its incremental build compares these
           -- instead of decoding every row's fields
           hash(p.email, p.emails, f.fields, coalesce(t.tags, []::VARCHAR[])) AS row_hash
    FROM prof p
    JOIN sync_fields f USING (profile_id)
    LEFT JOIN (SELECT profile_id, list_sort(list(DISTINCT tag)) AS tags FROM sync_tags
               GROUP BY ALL) t USING (profile_id)
    LEFT JOIN sync_cur c USING (profile_id)
    LEFT JOIN sync_tag_events te USING (profile_id)
    WHERE p.profile_id NOT IN (SELECT profile_id FROM sync_excluded)
"""


def phone_config(root: Path, day: str) -> NormalizationConfig:
    """The phone region the identity run of `day` used (its manifest keeps the config)."""
    manifest = read_manifest(root, "candidate_profiles", day) or {}
    region = (manifest.get("config") or {}).get("default_phone_region") or "US"
    validation = (manifest.get("config") or {}).get("phone_validation") or "possible"
    return NormalizationConfig(default_phone_region=region, phone_validation=validation)


def build_desired(con: duckdb.DuckDBPyConnection, root: Path, day: str, m: Mapping) -> None:
    """Every temp table up to `DESIRED_SQL` (the caller writes or reads it)."""
    load_inputs(con, root, day)
    register_rules(con, m)
    current_state(con, m)
    stream.derive(con, m)
    stream.new_events(con, root, day)
    tags(con, m)
    stream.tag_events(con)
    fields(con, m, phone_config(root, day))
    exclusions(con, m, root)


def manifest_extra(con: duckdb.DuckDBPyConnection, m: Mapping) -> dict[str, Any]:
    managed = con.execute("SELECT tag, category FROM sync_managed ORDER BY tag").fetchall()
    return {
        "mapping_fingerprint": m.fingerprint,
        "mapping_path": str(m.path),
        "managed_tags": [t for t, _ in managed],
        "tag_categories": {t: c for t, c in managed},
        "custom_fields": m.custom_fields(),
        "conflict": m.conflict(),
    }


def write_desired(root: Path, day: str, m: Mapping, run_id: str) -> dict[str, Any]:
    """Build and write partition `day` of sync/keap_desired; returns the manifest and counts
    (no personal values: ids and counts only)."""
    spill = root / SOURCE / f".spill-{uuid.uuid4().hex[:8]}"
    spill.mkdir(parents=True, exist_ok=True)
    con = connect(NormalizationConfig(), spill)
    try:
        build_desired(con, root, day, m)
        events = stream.write_events(con, root, day, run_id)
        manifest = write_partition(con, root, NAME, day, DESIRED_SQL, "profile_id",
                                   run_id=run_id, extra={**manifest_extra(con, m),
                                                         "events_recorded": events["rows"]},
                                   source=SOURCE)
        summary = summarize(con)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return {"manifest": manifest, **summary}


def summarize(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    excluded = dict(con.execute(
        "SELECT reason, count(*) FROM sync_excluded GROUP BY ALL ORDER BY ALL").fetchall())
    by_tag = con.execute(f"""
        SELECT tag, count(*) FROM (SELECT unnest(tags) AS tag FROM ({DESIRED_SQL}))
        GROUP BY ALL ORDER BY 2 DESC, 1""").fetchall()
    by_event = con.execute(f"""
        SELECT event, count(*) FROM (SELECT unnest(events) AS event FROM ({DESIRED_SQL}))
        GROUP BY ALL ORDER BY 2 DESC, 1""").fetchall()
    by_field = con.execute(f"""
        SELECT k, count(*) FILTER (WHERE v IS NOT NULL), count(*) FILTER (WHERE v IS NULL)
        FROM (SELECT unnest(map_keys(fields)) AS k, unnest(map_values(fields)) AS v
              FROM ({DESIRED_SQL})) GROUP BY ALL ORDER BY 1""").fetchall()
    profiles = con.execute("SELECT count(*) FROM prof").fetchall()[0][0]
    managed = con.execute("SELECT count(*) FROM sync_managed").fetchall()[0][0]
    return {"profiles_read": profiles, "excluded": excluded, "by_tag": by_tag,
            "by_event": by_event, "by_field": by_field, "managed_tags": managed}


def has_inputs(root: Path, day: str) -> bool:
    """Whether every input of `day` has landed (for callers that want to skip, not fail)."""
    return (read_manifest(root, "candidate_profiles", day) is not None
            and all(has_partition(root, "greenhouse", e, day) for e in STATE))
