"""HighLevel notes and tasks backed up incrementally (assets/highlevel/children.py), end to end
over the sandbox: the sandbox's daily life adds, edits, completes and deletes them and delivers
its real webhooks to the receiver; the incrementals read only the contacts the inbox names or
that changed, write only what changed, and the backed-up state (SQL, as of each day's end)
equals the sandbox's, deletions included. Without webhooks, the daily sweep of a small account
reads every contact and is exact as well."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from assets import deletions
from orchestration.cli.webhooks import webhooks_app
from orchestration.times import iso
from tests.e2e.conftest import ALL_SPECS, World, backed_up_docs, served_world
from tests.e2e.test_webhooks_e2e import receiver

SPECS = [s for s in ALL_SPECS if s.key.to_user_string() in
         ("highlevel/contacts", "highlevel/notes", "highlevel/tasks")]
KINDS = ("notes", "tasks")


def end_of_day(w: World) -> str:
    return iso(w.store.now() - timedelta(milliseconds=1))


def assert_backup_is_the_sandbox(w: World, kinds: tuple[str, ...] = KINDS) -> None:
    for kind in kinds:
        truth = w.sandbox_docs("highlevel", kind)
        assert truth, kind
        assert backed_up_docs(w.root, "highlevel", kind, end_of_day(w)) == truth, kind


@contextlib.contextmanager
def hooked_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A served world whose HighLevel webhooks reach a running receiver."""
    for name in ("GREENHOUSE_BASE_URL", "KEAP_BASE_URL", "HIGHLEVEL_BASE_URL",
                 "HIGHLEVEL_WEBHOOK_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)
    with served_world(tmp_path, candidates=150, seed=7) as w, receiver(w.root) as url:
        result = CliRunner().invoke(webhooks_app, ["register", "--source", "highlevel",
                                                   "--url", f"{url}/webhooks/highlevel"])
        assert result.exit_code == 0, result.output
        yield w


def test_with_webhooks_incrementals_read_only_named_contacts_and_match_the_sandbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with hooked_world(tmp_path, monkeypatch) as w:
        first = w.backup(w.day(), SPECS)
        contacts = len(w.sandbox_docs("highlevel", "contacts"))
        for kind in KINDS:
            m = first[f"highlevel/{kind}"]
            assert m["mode"] == "full" and m["deletions"]["contacts_read"] == contacts
        assert_backup_is_the_sandbox(w)
        monkeypatch.setenv(deletions.POLICY_VAR, "weekly")
        deleted = {kind: 0 for kind in KINDS}
        for _ in range(3):
            w.admin("POST", "/tick", json={"days": 1})
            w.admin("POST", "/webhooks/flush", json={"timeout": 30})
            day = w.backup(w.day(), SPECS)
            for kind in KINDS:
                m = day[f"highlevel/{kind}"]
                d = m["deletions"]
                assert m["mode"] == "incremental" and d["swept"] is False, (kind, d)
                # the cost follows the day's change: a few contacts, not all of them
                assert 0 < d["contacts_read"] < contacts / 2, (kind, d)
                assert d["named_by_webhooks"] > 0, (kind, d)
                deleted[kind] += m["deletes"]
            assert_backup_is_the_sandbox(w)
        assert deleted["notes"] > 0 and deleted["tasks"] > 0


@contextlib.contextmanager
def swept_day(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              specs: list) -> Iterator[tuple[World, dict[str, dict]]]:
    """A small world backed up, a day of life, and that day's backup (the `auto` policy sweeps
    a small account daily): the world and the day's manifests."""
    monkeypatch.setenv(deletions.POLICY_VAR, "auto")
    with served_world(tmp_path, candidates=80, seed=8) as w:
        w.backup(w.day(), specs)
        w.tick(1)
        yield w, w.backup(w.day(), specs)


def test_without_webhooks_the_daily_sweep_of_a_small_account_is_exact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with swept_day(tmp_path, monkeypatch, SPECS) as (w, day):
        for kind in KINDS:
            m = day[f"highlevel/{kind}"]
            d = m["deletions"]
            assert d["swept"] is True and d["reason"], d
            # the listing repeats every unchanged record: only the changes are written
            assert d["unchanged_skipped"] > 0 and m["upserts"] < d["listed"], (kind, d, m)
        assert_backup_is_the_sandbox(w)
        # the same day again: the partition is replaced by the same versions and deletions
        again = w.backup(w.day(), SPECS)
        for k in KINDS:
            assert (again[f"highlevel/{k}"]["upserts"], again[f"highlevel/{k}"]["deletes"]) == (
                day[f"highlevel/{k}"]["upserts"], day[f"highlevel/{k}"]["deletes"]), k
        assert_backup_is_the_sandbox(w)


def test_forget_reaches_the_notes_that_quote_the_person(tmp_path: Path) -> None:
    """A note quoting a person's email (recruiters paste it into call summaries) is erased with
    the person: no byte of the address stays in the notes' partitions, decoded or raw."""
    from assets.recovery.erasure import forget

    with served_world(tmp_path, candidates=80, seed=8) as w:
        w.backup(w.day(), SPECS)
        notes = w.sandbox_docs("highlevel", "notes")
        contacts = w.sandbox_docs("highlevel", "contacts")
        email = next(contacts[n["contactId"]]["email"] for n in notes.values()
                     if contacts.get(n["contactId"], {}).get("email")
                     and contacts[n["contactId"]]["email"] in n["body"])
        forget(w.root, email=email)
        folder = w.root / "highlevel" / "notes"
        files = sorted(folder.rglob("*.parquet"))
        assert files and not any(email.encode() in f.read_bytes() for f in files)
        con = duckdb.connect()
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{folder}/*/*.parquet') t "
                           "WHERE contains(lower(CAST(to_json(t) AS VARCHAR)), ?)",
                           [email.lower()]).fetchone()[0]
        assert rows == 0


def test_a_10_mb_note_lands_with_the_rest_and_is_named(tmp_path: Path) -> None:
    """Bad input from the vendor: a 10 MB note (past what HighLevel's UI lets anyone type, but
    the API returns it). The partition lands with every note; the manifest names it. (A lone
    surrogate in a record's text: tests/unit/test_schema_rows.py.)"""
    from sandbox import records

    with served_world(tmp_path, candidates=60, seed=5) as w:
        notes = w.sandbox_docs("highlevel", "notes")
        big = sorted(notes)[0]
        notes[big]["body"] = "x" * 10_000_000
        records.save(w.store, "highlevel", "notes", notes[big])
        m = w.backup(w.day(), [s for s in SPECS if s.schema.entity == "notes"])[
            "highlevel/notes"]
        assert m["upserts"] == len(notes)
        assert m["large_records"]["sample_ids"] == [big]
        assert m["large_records"]["records"] == 1
        assert m["large_records"]["max_bytes"] > 10_000_000
        assert "repaired_text" not in m
        con = duckdb.connect()
        [(n,)] = con.execute(f"SELECT length(body) FROM read_parquet('{w.root}/highlevel/notes/"
                             "*/*.parquet') WHERE id = ?", [big]).fetchall()
        assert n == 10_000_000
