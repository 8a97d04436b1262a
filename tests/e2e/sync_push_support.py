"""Building small Keap changesets by hand (Parquet in the contract layout), so the push tests do
not depend on the desired-state and changeset assets, plus the checks the push tests share."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from assets.sync.ledger import ledger_relation
from orchestration.http import RetryPolicy
from orchestration.resources.keap import KeapClient
from orchestration.storage.derived import write_partition
from sandbox import credentials, records
from tests.conftest import Sandbox

DAY = "2026-01-15"
CHANGESET_SCHEMA = pa.schema([
    ("change_id", pa.string()), ("action", pa.string()), ("profile_id", pa.int64()),
    ("contact_id", pa.string()), ("match_email", pa.string()),
    ("fields", pa.list_(pa.string())), ("body", pa.string()),
    ("update_mask", pa.list_(pa.string())), ("tag", pa.string()), ("tag_id", pa.string()),
    ("depends_on", pa.string()), ("conflict", pa.string()),
])


def change_id(action: str, profile_id: int, target: str, payload: Any) -> str:
    canon = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{action}|{profile_id}|{target}|{canon}".encode()).hexdigest()[:32]


def create(profile_id: int, email: str, **fields: Any) -> dict[str, Any]:
    body = {"email_addresses": [{"email": email, "field": "EMAIL1"}], **fields}
    return {"change_id": change_id("create", profile_id, f"email:{email}", body),
            "action": "create", "profile_id": profile_id, "contact_id": None,
            "match_email": email, "fields": sorted(["email", *fields]),
            "body": json.dumps(body), "update_mask": None}


def update(profile_id: int, contact_id: str, email: str, body: dict[str, Any]
           ) -> dict[str, Any]:
    mask = sorted(body)
    return {"change_id": change_id("update", profile_id, contact_id, [body, mask]),
            "action": "update", "profile_id": profile_id, "contact_id": contact_id,
            "match_email": email, "fields": mask, "body": json.dumps(body), "update_mask": mask}


def tag(action: str, profile_id: int, email: str, name: str, *, contact_id: str | None = None,
        tag_id: str | None = None, depends_on: str | None = None) -> dict[str, Any]:
    target = contact_id or f"email:{email}"
    return {"change_id": change_id(action, profile_id, target, name), "action": action,
            "profile_id": profile_id, "contact_id": contact_id, "match_email": email,
            "fields": None, "body": None, "update_mask": None, "tag": name, "tag_id": tag_id,
            "depends_on": depends_on}


def write_changeset(root: Path, rows: list[dict[str, Any]], day: str = DAY, *,
                    tag_categories: dict[str, str | None] | None = None,
                    custom_fields: dict[str, dict[str, str]] | None = None) -> None:
    """A `sync/keap_changeset` partition for `day`, and the `sync/keap_desired` manifest extras
    the push reads (tag categories, custom field rules)."""
    con = duckdb.connect()
    try:
        table = pa.Table.from_pylist(
            [{k: r.get(k) for k in CHANGESET_SCHEMA.names} for r in rows],
            schema=CHANGESET_SCHEMA)
        con.register("cs", table)
        write_partition(con, root, "keap_changeset", day, "SELECT * FROM cs", "change_id",
                        run_id="test", source="sync")
        con.execute("CREATE TABLE d (profile_id BIGINT, email VARCHAR)")
        write_partition(con, root, "keap_desired", day, "SELECT * FROM d", "profile_id",
                        run_id="test", source="sync",
                        extra={"tag_categories": tag_categories or {},
                               "custom_fields": custom_fields or {}, "managed_tags": [],
                               "mapping_fingerprint": "test", "conflict": {}})
    finally:
        con.close()


def seed_contacts(sandbox: Sandbox, n: int, start: int = 1) -> list[dict[str, Any]]:
    docs = [{"id": str(i), "given_name": "Given", "family_name": f"F{i}",
             "email_addresses": [{"email": f"old{i}@example.com", "field": "EMAIL1"}],
             "phone_numbers": [], "addresses": [], "tag_ids": [], "custom_fields": [],
             "create_time": "2026-01-01T00:00:00.000Z",
             "update_time": "2026-01-01T00:00:00.000Z"} for i in range(start, start + n)]
    records.save_many(sandbox.store, "keap", "contacts", docs)
    return docs


def seed_tag(sandbox: Sandbox, tag_id: str, name: str, holders: list[str]) -> None:
    records.save_many(sandbox.store, "keap", "tags", [
        {"id": tag_id, "name": name, "create_time": "2026-01-01T00:00:00.000Z",
         "update_time": "2026-01-01T00:00:00.000Z"}])
    docs = []
    for doc in sandbox.store.iter_docs("keap", "contacts"):
        if doc["id"] in holders:
            doc["tag_ids"] = [*doc.get("tag_ids", []), tag_id]
            docs.append(doc)
    records.save_many(sandbox.store, "keap", "contacts", docs)


def client(sandbox: Sandbox, *, windows: list[tuple[int, float]] | None = None,
           max_attempts: int = 6) -> closing[KeapClient]:
    """A Keap client on the sandbox (fast retries), closed by `with`."""
    return closing(KeapClient(f"{sandbox.base_url}/keap/crm", api_key=credentials.KEAP_API_KEY,
                      windows=windows or [(1000, 1.0)], timeout=10,
                      retry=RetryPolicy(max_attempts=max_attempts, base_delay=0.01,
                                        max_delay=0.1, min_retry_after=0.01)))


def standard_changes(sandbox: Sandbox, n_new: int = 12, n_existing: int = 8
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Existing contacts 1..n_existing (tag 'Old Stage' id 900 on all of them); a changeset of
    n_new creates (each tagged 'Active Applicant', category 'Pipeline', and given a custom field
    by label), n_existing updates (job title), tag adds on the existing ones and removal of
    'Old Stage'. Returns (rows, expectations)."""
    seed_contacts(sandbox, n_existing)
    seed_tag(sandbox, "900", "Old Stage", [str(i) for i in range(1, n_existing + 1)])
    rows: list[dict[str, Any]] = []
    for i in range(n_new):
        email = f"new{i}@example.com"
        c = create(1000 + i, email, given_name=f"N{i}", family_name="New",
                   custom_fields=[{"label": "Current Stage", "content": "Application Review"}])
        rows += [c, tag("tag_add", 1000 + i, email, "Active Applicant",
                        depends_on=c["change_id"])]
    for i in range(1, n_existing + 1):
        email = f"old{i}@example.com"
        rows += [update(i, str(i), email, {"job_title": f"Engineer {i}"}),
                 tag("tag_add", i, email, "Active Applicant", contact_id=str(i)),
                 tag("tag_remove", i, email, "Old Stage", contact_id=str(i), tag_id="900")]
    return rows, {"n_new": n_new, "n_existing": n_existing}


def check_final_state(sandbox: Sandbox, n_new: int, n_existing: int,
                      skip_emails: frozenset[str] = frozenset()) -> None:
    """Keap holds exactly what the standard changeset implies."""
    contacts = sandbox.records("keap", "contacts")
    by_email = Counter(e["email"].lower() for c in contacts
                       for e in c.get("email_addresses") or [])
    assert all(n == 1 for n in by_email.values()), "a duplicate contact was made"
    tags = {t["name"]: t for t in sandbox.records("keap", "tags")}
    assert sorted(tags) == ["Active Applicant", "Old Stage"]
    categories = sandbox.records("keap", "tag_categories")
    assert [c["name"] for c in categories] == ["Pipeline"]
    assert tags["Active Applicant"]["category"]["id"] == categories[0]["id"]
    fields = sandbox.records("keap", "custom_fields")
    assert [f["label"] for f in fields] == ["Current Stage"]
    active = str(tags["Active Applicant"]["id"])
    emails = {e["email"]: c for c in contacts for e in c.get("email_addresses") or []}
    for i in range(n_new):
        email = f"new{i}@example.com"
        if email in skip_emails:
            assert email not in emails
            continue
        c = emails[email]
        assert c["given_name"] == f"N{i}" and c["tag_ids"] == [active]
        assert c["custom_fields"] == [{"id": str(fields[0]["id"]),
                                       "content": "Application Review"}]
    for i in range(1, n_existing + 1):
        c = emails[f"old{i}@example.com"]
        assert c["job_title"] == f"Engineer {i}" and c["tag_ids"] == [active]
        assert c["family_name"] == f"F{i}"  # untouched fields stay


def ledger_rows(root: Path) -> list[dict[str, Any]]:
    con = duckdb.connect()
    try:
        return ledger_relation(con, root).to_arrow_table().to_pylist()
    finally:
        con.close()


def check_each_once(root: Path, rows: list[dict[str, Any]],
                    except_ids: frozenset[str] = frozenset()) -> None:
    """Every change succeeded exactly once in the ledger (but those expected to fail)."""
    succeeded = Counter(r["change_id"] for r in ledger_rows(root) if r["status"] == "succeeded")
    want = {r["change_id"] for r in rows} - except_ids
    assert set(succeeded) == want
    assert all(n == 1 for n in succeeded.values())


def writes(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests("keap") if r["method"] != "GET"]


def kill_at_wal_lines(cmd: list[str], wal: Path, lines: int, what: str,
                      seconds: float = 90) -> None:
    """Run `cmd` (a push or a reverse sync in a child process) and SIGKILL it once its
    write-ahead log `wal` holds `lines` lines."""
    import os
    import signal
    import subprocess
    import time

    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(repo)})
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if wal.exists() and wal.read_bytes().count(b"\n") >= lines:
                proc.send_signal(signal.SIGKILL)
                break
            if proc.poll() is not None:
                out, err = proc.communicate()
                raise AssertionError(f"the {what} ended before it was killed: {out!r} "
                                     f"{err[-2000:]!r}")
            time.sleep(0.01)
        else:
            raise AssertionError(f"the {what} wrote too few ledger lines in {seconds:.0f} s")
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
