"""Keap notes, tasks, emails, opportunities and companies backed up end to end over the sandbox:
a full, then incrementals over simulated days whose life adds, edits, completes, moves and
deletes them; each day the SQL views (current and as of the day's end) equal the sandbox's
state. A broken email (a body that is not UTF-8, a subject with a lone surrogate) lands with
the rest and is named; `forget` of a person quoted in another contact's note and email body
leaves no byte of their address in the Keap backups."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path

import duckdb

from assets.catalog.views import open_catalog
from orchestration.times import iso
from sandbox import records
from tests.e2e.conftest import ALL_SPECS, World, backed_up_docs, served_world, strip

KINDS = ("notes", "tasks", "emails", "opportunities", "companies")
SPECS = [s for s in ALL_SPECS if s.schema.source == "keap"
         and s.schema.entity in ("contacts", "opportunity_stages", *KINDS)]


def end_of_day(w: World) -> str:
    return iso(w.store.now() - timedelta(milliseconds=1))


def assert_backup_is_the_sandbox(w: World) -> None:
    con = open_catalog(w.root)
    for kind in KINDS:
        truth = strip("keap", kind, w.sandbox_docs("keap", kind))
        assert truth, kind
        assert strip("keap", kind, backed_up_docs(w.root, "keap", kind, end_of_day(w))) == \
            truth, kind
        current = {str(i) for (i,) in con.execute(f"SELECT id FROM keap.{kind}").fetchall()}
        assert current == truth.keys(), kind


def test_three_days_of_incrementals_match_the_sandbox(tmp_path: Path) -> None:
    with served_world(tmp_path, candidates=80, seed=8) as w:
        first = w.backup(w.day(), SPECS)
        assert all(first[f"keap/{k}"]["mode"] == "full" for k in KINDS)
        assert_backup_is_the_sandbox(w)
        # the stages the opportunities move through: all of them, every opportunity's among them
        stages = backed_up_docs(w.root, "keap", "opportunity_stages", end_of_day(w))
        assert stages == w.sandbox_docs("keap", "opportunity_stages") and len(stages) == 5
        assert open_catalog(w.root).execute(
            "SELECT count(*) FROM keap.opportunities WHERE stage_id NOT IN "
            "(SELECT id FROM keap.opportunity_stages)").fetchone()[0] == 0
        changed = {k: 0 for k in KINDS}
        for _ in range(3):
            w.tick(1)
            day = w.backup(w.day(), SPECS)
            for kind in KINDS:
                m = day[f"keap/{kind}"]
                assert m["mode"] == "incremental", (kind, m["mode"])
                # the day's changes, not the whole list again
                assert m["upserts"] < len(w.sandbox_docs("keap", kind)) / 2, (kind, m)
                changed[kind] += m["upserts"] + m["deletes"]
            assert day["keap/opportunity_stages"]["mode"] == "full"     # reference data
            # an email's body is read once, by id: the day's new emails, not every email
            assert day["keap/emails"]["api_calls"] <= day["keap/emails"]["upserts"] + 4
            assert_backup_is_the_sandbox(w)
        assert all(changed.values()), changed
        con = open_catalog(w.root)
        # history: an edited note has several versions, a deleted one a delete row
        [(versions,)] = con.execute("SELECT max(n) FROM (SELECT count(*) n FROM "
                                    "keap.notes_history GROUP BY id)").fetchall()
        assert versions >= 2
        assert con.execute("SELECT count(*) FROM keap.notes_history WHERE _op = 'delete'"
                           ).fetchone()[0] > 0


def test_a_broken_email_lands_with_the_rest_and_is_named(tmp_path: Path) -> None:
    """Bad input: a body whose bytes are not UTF-8 (the API's base64 carries them) and a subject
    holding a lone surrogate (JSON can carry "\\udc80"). Every email lands; the manifest names
    both in `repaired_text`; the body's bytes stay intact in the base64 field."""
    with served_world(tmp_path, candidates=60, seed=5) as w:
        emails = w.sandbox_docs("keap", "emails")
        bad_body, bad_subject = sorted(emails)[:2]
        emails[bad_body]["plain_content"] = base64.b64encode(b"caf\x80 \xff ok").decode()
        emails[bad_subject]["subject"] = "Re: caf\udc80"
        for i in (bad_body, bad_subject):
            records.save(w.store, "keap", "emails", emails[i])
        m = w.backup(w.day(), [s for s in SPECS if s.schema.entity == "emails"])["keap/emails"]
        assert m["upserts"] == len(emails)
        assert m["repaired_text"] == {"records": 2, "sample_ids": [bad_body, bad_subject]}
        raw = {i: json.loads(r) for i, r in duckdb.connect().execute(
            f"SELECT id, _raw FROM read_parquet('{w.root}/keap/emails/*/*.parquet') "
            "WHERE id IN (?, ?)", [bad_body, bad_subject]).fetchall()}
        assert base64.b64decode(raw[bad_body]["plain_content"]) == b"caf\x80 \xff ok"
        assert raw[bad_subject]["subject"] == "Re: caf\ufffd"
        # SQL's JSON functions read every email of the partition (an escaped lone surrogate in
        # `_raw` made DuckDB refuse the whole query)
        subjects = dict(duckdb.connect().execute(
            f"SELECT id, json_extract_string(_raw, '$.subject') FROM read_parquet("
            f"'{w.root}/keap/emails/*/*.parquet')").fetchall())
        assert len(subjects) == len(emails) and subjects[bad_subject] == "Re: caf\ufffd"


def test_forget_reaches_keap_notes_and_emails_quoting_the_person(tmp_path: Path) -> None:
    """A recruiter pastes a person's address into another contact's note and email (a
    referral); forgetting the person removes those too: no byte of the address stays in the
    Keap backups, raw or in decoded Parquet."""
    from assets.recovery.erasure import forget

    with served_world(tmp_path, candidates=80, seed=8) as w:
        contacts = w.sandbox_docs("keap", "contacts")
        person = next(c for c in contacts.values() if c["email_addresses"])
        email = person["email_addresses"][0]["email"]
        note = next(n for n in w.sandbox_docs("keap", "notes").values()
                    if n["contact_id"] != person["id"])
        note["text"] = f"Referred by a friend, write to {email} too."
        mail = next(e for e in w.sandbox_docs("keap", "emails").values()
                    if e["contact_id"] != person["id"])
        mail["plain_content"] = base64.b64encode(f"Please copy {email}.".encode()).decode()
        records.save(w.store, "keap", "notes", note)
        records.save(w.store, "keap", "emails", mail)
        w.backup(w.day(), SPECS)
        folder = w.root / "keap"
        assert any(email.encode() in f.read_bytes() for f in folder.rglob("*.parquet"))
        forget(w.root, email=email)
        files = [f for f in folder.rglob("*") if f.is_file()]
        assert files and not any(email.lower().encode() in f.read_bytes().lower()
                                 for f in files)
        con = duckdb.connect()
        for kind in ("contacts", "notes", "emails"):
            rows = con.execute(f"SELECT count(*) FROM read_parquet('{folder}/{kind}/*/*.parquet')"
                               " t WHERE contains(lower(CAST(to_json(t) AS VARCHAR)), ?)",
                               [email.lower()]).fetchone()[0]
            assert rows == 0, kind
        ids = {r[0] for r in con.execute(f"SELECT id FROM read_parquet('{folder}/*/*/*.parquet',"
                                         " union_by_name = true)").fetchall()}
        assert note["id"] not in ids and mail["id"] not in ids
