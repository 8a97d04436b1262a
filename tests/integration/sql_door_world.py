"""A tiny data root with one of every kind of file the SQL door shows, and the secrets it must
not: built once per test module (a few hundred milliseconds), shared by the SQL door tests."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from assets.keap.schemas import contacts
from assets.sync.catalog import LEDGER_TYPES
from orchestration.storage import audit, suppression
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.webhooks import hook_secrets
from orchestration.webhooks.inbox import COLUMNS as INBOX_COLUMNS

DAY = "2026-01-05"
EMAIL = "ada.lovelace@example.com"      # a person's address: must never reach the audit trail
SECRET_FILES = ("state/suppression.salt", "state/keap_oauth.json",
                "state/webhooks/keap_hook_secret")


def build(root: Path) -> Path:
    w = SnapshotStorage(root=str(root)).writer(contacts, DAY, mode="full", run_id="r",
                                               window=(None, None))
    w.add([{"id": str(i), "given_name": f"N{i}", "update_time": f"{DAY}T10:00:00Z",
            "email_addresses": [{"email": EMAIL if i == 4 else f"p{i}@example.com",
                                 "field": "EMAIL1"}]}
           for i in range(1, 8)])
    w.commit()
    con = duckdb.connect()
    profiles = root / "identity" / "candidate_profiles" / f"snapshot_date={DAY}"
    profiles.mkdir(parents=True)
    con.execute(f"""COPY (SELECT 9001::BIGINT AS profile_id, [9001, 9005]::BIGINT[] AS
                    candidate_ids, [9007]::BIGINT[] AS merged_candidate_ids,
                    [501]::BIGINT[] AS application_ids, '{EMAIL}' AS email)
                    TO '{profiles / 'part-00000.parquet'}'""")
    for name in ("keap_changeset", "keap_rejects"):
        folder = root / "sync" / name / f"snapshot_date={DAY}"
        folder.mkdir(parents=True)
        con.execute(f"COPY (SELECT 'c1' AS change_id, 9001::BIGINT AS profile_id, '4' AS "
                    f"contact_id, 'update' AS action) TO '{folder / 'part-00000.parquet'}'")
    ledger = root / "sync" / "ledger" / "run_id=r1"
    ledger.mkdir(parents=True)
    cols = ", ".join(f"NULL::{t} AS \"{c}\"" for c, t in LEDGER_TYPES.items()
                     if c not in ("change_id", "profile_id", "contact_id", "status", "run_id",
                                  "attempt"))
    con.execute(f"COPY (SELECT 'c1' AS change_id, 9001::BIGINT AS profile_id, '4' AS contact_id,"
                f" 'failed_permanent' AS status, 'r1' AS run_id, 1 AS attempt, {cols}) "
                f"TO '{ledger / 'part-00000.parquet'}'")
    wal = root / "sync" / "ledger" / "_wal"
    wal.mkdir(parents=True)
    (wal / ".empty.jsonl").write_text("")
    inbox = root / "webhooks" / "inbox" / f"date={DAY}"
    inbox.mkdir(parents=True)
    event = {c: None for c in INBOX_COLUMNS} | {
        "seq": 1, "event_id": "e1", "source": "keap", "event_type": "contact.delete",
        "object_type": "contact", "object_id": "4", "op": "delete",
        "received_at": f"{DAY}T11:00:00Z"}
    (inbox / "events.jsonl").write_text(json.dumps(event) + "\n")
    audit.record(root, "backup", target="keap/contacts", counts={"rows": 7})
    # the secrets that live in the data root
    suppression.salt(root)
    (root / "state" / "keap_oauth.json").write_text('{"refresh_token": "rt-SECRET"}')
    hook_secrets.learn_secret(root, "hook-SECRET")
    return root
