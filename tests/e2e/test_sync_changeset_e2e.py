"""The changeset against the sandbox over real sockets: backup -> identity -> desired ->
changeset -> push (the real one), then the changeset again. What the push wrote from our bodies
must read back as "nothing to change", through the ledger overlay the same day and through the
next day's Keap backup; a day of recruiting life later the only changes are for profiles whose
ATS state changed or whose Keap contact someone edited, and no email is ever created twice."""

from __future__ import annotations

from collections import Counter
from datetime import date

import duckdb

from assets.identity.build import build_identity
from assets.identity.config import IdentityConfig
from assets.sync.changeset import build_changeset
from assets.sync.desired import write_desired
from assets.sync.mapping import load_mapping
from assets.sync.push import run_push
from tests.e2e.conftest import SYNC_SPECS


def _day_pipeline(w, day: str, run: str) -> dict:
    """Backups, identity, desired and changeset for `day`; the changeset's counts."""
    w.backup(date.fromisoformat(day), SYNC_SPECS, run_id=f"backup-{run}")
    build_identity(w.root, day, IdentityConfig(), f"identity-{run}").close()
    write_desired(w.root, day, load_mapping(), f"desired-{run}")
    return _changeset(w, day, run)


def _changeset(w, day: str, run: str) -> dict:
    b = build_changeset(w.root, day, f"changeset-{run}")
    try:
        return b.manifest["counts"]
    finally:
        b.close()


def _push(w, day: str, run: str):
    client = w.clients()["keap"]
    try:
        return run_push(client, w.root, day, f"push-{run}")
    finally:
        client.close()


def _rows(w, day: str) -> list[tuple]:
    return duckdb.sql(f"""
        SELECT action, profile_id, contact_id, match_email FROM read_parquet(
            '{w.root}/sync/keap_changeset/snapshot_date={day}/*.parquet')""").fetchall()


def _emails_on_several_contacts(w) -> Counter:
    held = Counter()
    for doc in w.sandbox_docs("keap", "contacts").values():
        for e in {str(x.get("email", "")).strip().lower() for x in doc.get("email_addresses")
                  or []}:
            held[e] += 1
    return held


def test_pushed_bodies_read_back_as_nothing_to_change(sandbox_world):
    w = sandbox_world
    day = w.day().isoformat()
    before = _emails_on_several_contacts(w)
    first = _day_pipeline(w, day, "1")
    assert first["create"] > 0 and first["tag_add"] > 0 and first["update"] > 0
    pushed = _push(w, day, "1")
    pushed_at = w.store.now()  # every write of ours is stamped at or before this
    assert pushed.failed_retryable == 0
    # the ledger overlay: the same day, recomputed right after the push, is empty except for
    # dead letters (skipped, counted)
    again = _changeset(w, day, "1b")
    assert again["changes"] == 0, again
    assert again["skipped_dead_letter"] == pushed.failed_permanent
    # no email the desired state holds sits on more contacts than before the push
    after = _emails_on_several_contacts(w)
    desired = {r[0] for r in duckdb.sql(f"""
        SELECT email FROM read_parquet('{w.root}/sync/keap_desired/snapshot_date={day}/*.parquet')
    """).fetchall()}
    assert [e for e in desired if after[e] > max(before[e], 1)] == []

    # a day of recruiting life, then the next day's run reads the push back from the backup
    w.tick(1)
    nxt = w.day().isoformat()
    assert nxt > day
    counts = _day_pipeline(w, nxt, "2")
    rows = _rows(w, nxt)
    assert counts["changes"] == len(rows)
    changed = {r[0] for r in duckdb.sql(f"""
        WITH a AS (SELECT * FROM read_parquet(
                       '{w.root}/sync/keap_desired/snapshot_date={day}/*.parquet')),
             b AS (SELECT * FROM read_parquet(
                       '{w.root}/sync/keap_desired/snapshot_date={nxt}/*.parquet'))
        SELECT b.profile_id FROM b LEFT JOIN a USING (profile_id)
        WHERE a.profile_id IS NULL OR a.fields IS DISTINCT FROM b.fields
           OR a.tags IS DISTINCT FROM b.tags OR a.emails IS DISTINCT FROM b.emails""").fetchall()}
    # contacts someone edited in Keap during the simulated day (after every write of ours)
    edited = {r[0] for r in duckdb.sql(f"""
        WITH k AS (SELECT contact_id, update_time FROM read_parquet(
                       '{w.root}/identity/keap_contacts/snapshot_date={nxt}/*.parquet'))
        SELECT contact_id FROM k WHERE update_time > TIMESTAMPTZ '{pushed_at.isoformat()}'
    """).fetchall()}
    # profiles whose contact someone deleted in Keap that day (a new contact is right then)
    deleted = {r[0] for r in duckdb.sql(f"""
        WITH gone AS (SELECT id FROM read_parquet(
                          '{w.root}/keap/contacts/snapshot_date={nxt}/*.parquet')
                      WHERE _op = 'delete'),
             held AS (SELECT d.profile_id, k.contact_id FROM read_parquet(
                          '{w.root}/sync/keap_desired/snapshot_date={day}/*.parquet') d
                      JOIN (SELECT contact_id, unnest(emails) AS email FROM read_parquet(
                          '{w.root}/identity/keap_contacts/snapshot_date={day}/*.parquet')) k
                          USING (email)
                      UNION ALL
                      SELECT profile_id, contact_id FROM read_parquet(
                          '{w.root}/sync/ledger/*/*.parquet'))
        SELECT profile_id FROM held WHERE contact_id IN (SELECT id FROM gone)""").fetchall()}
    unexplained = [r for r in rows
                   if r[1] not in changed and r[1] not in deleted and r[2] not in edited]
    assert unexplained == [], unexplained[:10]
    # a create is only ever for an email no contact holds
    held = _emails_on_several_contacts(w)
    assert [r for r in rows if r[0] == "create" and held[r[3]]] == []
