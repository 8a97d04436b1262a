"""HighLevel calendars and appointments backed up (assets/highlevel/appointments.py), end to end
over the sandbox: its daily life books, reschedules, cancels, marks and deletes appointments and
delivers its real webhooks to the receiver; the incrementals list each calendar over a window of
event time and read the contacts the inbox names, write only what changed, and the backed-up
state (SQL, as of each day's end, and the current view) equals the sandbox's, deletions
included. Without webhooks, the daily sweep of a small account lists all of event time and is
exact as well; a same-day re-run writes the same versions; forget reaches appointments whose
notes quote the person."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from assets import deletions
from assets.catalog.views import open_catalog
from tests.e2e.conftest import ALL_SPECS, served_world
from tests.e2e.test_highlevel_notes_backup import (
    assert_backup_is_the_sandbox,
    hooked_world,
    swept_day,
)

SPECS = [s for s in ALL_SPECS if s.key.to_user_string() in
         ("highlevel/contacts", "highlevel/calendars", "highlevel/appointments")]
KINDS = ("calendars", "appointments")


def test_with_webhooks_incrementals_read_windows_and_named_contacts_and_match_the_sandbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with hooked_world(tmp_path, monkeypatch) as w:
        first = w.backup(w.day(), SPECS)
        m = first["highlevel/appointments"]
        assert m["mode"] == "full" and m["upserts"] == len(w.sandbox_docs("highlevel",
                                                                          "appointments"))
        assert first["highlevel/calendars"]["upserts"] == 3
        assert_backup_is_the_sandbox(w, KINDS)
        monkeypatch.setenv(deletions.POLICY_VAR, "weekly")
        contacts = len(w.sandbox_docs("highlevel", "contacts"))
        totals = {"upserts": 0, "deletes": 0}
        for _ in range(3):
            before = w.sandbox_docs("highlevel", "appointments")
            w.admin("POST", "/tick", json={"days": 1})
            w.admin("POST", "/webhooks/flush", json={"timeout": 30})
            after = w.sandbox_docs("highlevel", "appointments")
            m = w.backup(w.day(), SPECS)["highlevel/appointments"]
            d = m["deletions"]
            assert m["mode"] == "incremental" and d["swept"] is False, d
            # the cost follows the day's change: calendars' windows and a few contacts
            assert d["calendars"] == 3 and 0 < d["contacts_read"] < contacts / 2, d
            assert d["read_calls"] < 1 + 3 + d["contacts_read"] + d["read_by_id"] + 1, d
            # only new and changed versions are written, every one of them
            changed = {i for i in after if before.get(i) != after[i]}
            assert m["upserts"] == len(changed), (m["upserts"], len(changed), d)
            assert d["unchanged_skipped"] > 0, d
            assert m["deletes"] == len(before.keys() - after.keys()), d
            totals["upserts"] += m["upserts"]
            totals["deletes"] += m["deletes"]
            assert_backup_is_the_sandbox(w, KINDS)
        assert totals["upserts"] > 0 and totals["deletes"] > 0
        # the current view is the sandbox too
        con = open_catalog(w.root)
        current = {i: json.loads(raw) for i, raw in con.execute(
            "SELECT id, _raw FROM highlevel.appointments").fetchall()}
        assert current == w.sandbox_docs("highlevel", "appointments")


def test_without_webhooks_the_daily_sweep_of_a_small_account_is_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with swept_day(tmp_path, monkeypatch, SPECS) as (w, day):
        m = day["highlevel/appointments"]
        d = m["deletions"]
        assert d["swept"] is True and d["event_time_from"] == "2018-01-01", d
        assert d["unchanged_skipped"] > 0 and m["upserts"] < d["listed_in_windows"], (d, m)
        assert m["deletes"] > 0
        assert_backup_is_the_sandbox(w, KINDS)
        again = w.backup(w.day(), SPECS)["highlevel/appointments"]
        assert (again["upserts"], again["deletes"]) == (m["upserts"], m["deletes"])
        assert_backup_is_the_sandbox(w, KINDS)


def test_forget_reaches_the_appointments_of_the_person(tmp_path: Path) -> None:
    """Every appointment of the person's contact, and an appointment note quoting their email
    (a recruiter pastes it), are erased with the person: no byte of the address stays."""
    from assets.recovery.erasure import forget

    with served_world(tmp_path, candidates=80, seed=8) as w:
        w.backup(w.day(), SPECS)
        appointments = w.sandbox_docs("highlevel", "appointments")
        contacts = w.sandbox_docs("highlevel", "contacts")
        quoting = next(a for a in appointments.values()
                       if contacts[a["contactId"]].get("email")
                       and contacts[a["contactId"]]["email"] in a["notes"])
        email = contacts[quoting["contactId"]]["email"]
        theirs = {i for i, a in appointments.items() if a["contactId"] == quoting["contactId"]}
        forget(w.root, email=email)
        folder = w.root / "highlevel" / "appointments"
        files = sorted(folder.rglob("*.parquet"))
        assert files and not any(email.encode() in f.read_bytes() for f in files)
        con = duckdb.connect()
        ids = {r[0] for r in con.execute(
            f"SELECT id FROM read_parquet('{folder}/*/*.parquet')").fetchall()}
        assert ids and not ids & theirs
        assert len(ids) == len(appointments) - len(theirs)
