"""HighLevel conversations and messages backed up, end to end over the sandbox: the sandbox's
daily life sends and receives SMS and emails, logs calls, marks messages read and deletes
conversations; the messages backup is incremental by update time (the location-wide export),
learns a deleted conversation's messages from the day's conversation listing, and the backed-up
state (SQL, as of each day's end) equals the sandbox's. An erasure reaches message bodies that
quote the person; a body whose bytes are not UTF-8 lands with the rest, named in the manifest."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import httpx
import pytest

from assets import deletions
from orchestration.times import iso
from sandbox import credentials
from tests.e2e.conftest import ALL_SPECS, World, backed_up_docs, served_world, strip

SPECS = [s for s in ALL_SPECS if s.key.to_user_string() in
         ("highlevel/contacts", "highlevel/conversations", "highlevel/messages")]


def assert_backup_is_the_sandbox(w: World) -> None:
    end = iso(w.store.now() - timedelta(milliseconds=1))
    for entity in ("conversations", "messages"):
        truth = strip("highlevel", entity, w.sandbox_docs("highlevel", entity))   # as served
        assert truth and strip("highlevel", entity, backed_up_docs(
            w.root, "highlevel", entity, end)) == truth, entity


def inbound(w: World, conversation: dict, text: str) -> str:
    """An inbound SMS through the API (a lone surrogate in `text` arrives as a broken byte)."""
    r = httpx.post(f"{w.base_url}/highlevel/conversations/messages/inbound",
                   content=json.dumps({"type": "SMS", "conversationId": conversation["id"],
                                       "contactId": conversation["contactId"],
                                       "conversationProviderId": "carrier-1", "message": text}),
                   headers={"Authorization": f"Bearer {credentials.HIGHLEVEL_TOKEN}",
                            "Content-Type": "application/json", "Version": "2021-04-15"})
    assert r.status_code == 200, r.text
    return r.json()["messageId"]


def test_messages_are_backed_up_incrementally_and_match_the_sandbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(deletions.POLICY_VAR, "weekly")
    with served_world(tmp_path, candidates=150, seed=7) as w:
        first = w.backup(w.day(), SPECS)
        assert first["highlevel/messages"]["mode"] == "full"
        assert_backup_is_the_sandbox(w)
        # an email's headers come from its own endpoint: every email row has them
        emails, headed = duckdb.connect().execute(
            "SELECT count(*), count(subject) FILTER (WHERE len(email_to) = 1 AND email_from "
            f"LIKE '%@%') FROM read_parquet('{w.root}/highlevel/messages/*/*.parquet') "
            "WHERE \"messageType\" = 'TYPE_EMAIL'").fetchone()
        assert emails > 0 and headed == emails
        total = len(w.sandbox_docs("highlevel", "messages"))
        gone = 0
        for _ in range(3):
            w.tick(1)
            day = w.backup(w.day(), SPECS)
            m = day["highlevel/messages"]
            assert m["mode"] == "incremental" and m["deletions"]["swept"] is False, m
            # the day's new and read messages, not the whole history
            assert 0 < m["upserts"] < total / 3, m
            gone += m["deletions"]["with_parent"]
            assert_backup_is_the_sandbox(w)
        assert gone > 0    # deleted conversations took their messages, seen without a sweep
        # the same day again converges to the same state
        w.backup(w.day(), SPECS)
        assert_backup_is_the_sandbox(w)


def test_forget_reaches_message_bodies_that_quote_the_person(tmp_path: Path) -> None:
    from assets.recovery.erasure import forget

    with served_world(tmp_path, candidates=80, seed=8) as w:
        contacts = w.sandbox_docs("highlevel", "contacts")
        conversation = next(c for c in w.sandbox_docs("highlevel", "conversations").values()
                            if contacts[c["contactId"]].get("email"))
        email = contacts[conversation["contactId"]]["email"]
        # the person writes back quoting their address (the world's messages do too, rarer)
        inbound(w, conversation, f"Please use {email} from now on.")
        w.backup(w.day(), SPECS)
        forget(w.root, email=email)
        for entity in ("conversations", "messages"):
            folder = w.root / "highlevel" / entity
            files = sorted(folder.rglob("*.parquet"))
            assert files and not any(email.encode() in f.read_bytes() for f in files), entity
            rows = duckdb.connect().execute(
                f"SELECT count(*) FROM read_parquet('{folder}/*/*.parquet') t "
                "WHERE contains(lower(CAST(to_json(t) AS VARCHAR)), ?)",
                [email.lower()]).fetchone()[0]
            assert rows == 0, entity


def test_a_body_with_bytes_that_are_not_utf8_lands_with_the_rest(tmp_path: Path) -> None:
    """Bad input from the vendor: an inbound SMS whose bytes are not UTF-8 (a carrier's other
    encoding). The page is read, the partition lands with every message, the body keeps its
    readable text (U+FFFD for the broken bytes) and the manifest names the message."""
    with served_world(tmp_path, candidates=60, seed=5) as w:
        conversation = next(iter(w.sandbox_docs("highlevel", "conversations").values()))
        broken = inbound(w, conversation, "Caf\udce9 at 9?")
        m = w.backup(w.day(), [s for s in SPECS if s.schema.entity == "messages"])[
            "highlevel/messages"]
        assert m["upserts"] == len(w.sandbox_docs("highlevel", "messages"))
        assert m["repaired_text"]["sample_ids"] == [broken], m.get("repaired_text")
        [(body,)] = duckdb.connect().execute(
            f"SELECT body FROM read_parquet('{w.root}/highlevel/messages/*/*.parquet') "
            "WHERE id = ?", [broken]).fetchall()
        assert body.startswith("Caf") and body.endswith(" at 9?") and "\ufffd" in body
