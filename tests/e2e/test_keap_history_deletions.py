"""A Keap contact's history (notes, tasks, emails, opportunities) learns its deletions without a
sweep: a note or task deleted on its own arrives as Keap's `note.delete` / `task.delete` REST
hook, and what a deleted contact takes along (Keap announces only `contact.delete`) is found
from the same day's contacts backup. Over the sandbox's real hooks and receiver."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assets import deletions
from orchestration.cli.webhooks import webhooks_app
from orchestration.times import iso
from tests.e2e.conftest import ALL_SPECS, backed_up_docs, served_world
from tests.e2e.test_webhooks_e2e import receiver

HISTORY = ("notes", "tasks", "emails", "opportunities")
SPECS = [s for s in ALL_SPECS if s.schema.source == "keap"
         and s.schema.entity in ("contacts", *HISTORY)]


def contact_of(doc: dict) -> str:
    return str(doc.get("contact_id") or (doc.get("contact") or {}).get("id"))


def test_keap_history_deletions_come_from_hooks_and_the_contacts_backup(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GREENHOUSE_BASE_URL", "KEAP_BASE_URL", "HIGHLEVEL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with served_world(tmp_path, candidates=60, seed=5) as w, receiver(w.root) as url:
        registered = CliRunner().invoke(webhooks_app, ["register", "--source", "keap",
                                                       "--url", f"{url}/webhooks/keap"])
        assert registered.exit_code == 0, registered.output
        assert '"note.delete"' in registered.output and '"task.delete"' in registered.output
        w.backup(w.day(), SPECS)
        monkeypatch.setenv(deletions.POLICY_VAR, "weekly")

        docs = {e: w.sandbox_docs("keap", e) for e in HISTORY}
        owners = Counter(contact_of(d) for e in HISTORY for d in docs[e].values())
        # the contact with the most history goes, with everything it holds
        gone_contact = max(owners, key=lambda c: (owners[c], c))
        taken = {e: {i for i, d in docs[e].items() if contact_of(d) == gone_contact}
                 for e in HISTORY}
        assert sum(map(len, taken.values())) >= 2
        # and a note and a task of other contacts are deleted on their own
        note_id, note = next((i, d) for i, d in sorted(docs["notes"].items())
                             if contact_of(d) != gone_contact)
        task_id = next(i for i, d in sorted(docs["tasks"].items())
                       if contact_of(d) != gone_contact)
        midnight = w.store.now()
        w.store.set_now(midnight + timedelta(hours=12))   # a day with no other change
        keap = w.clients()["keap"]
        try:
            for path in (f"/rest/v2/contacts/{contact_of(note)}/notes/{note_id}",
                         f"/rest/v2/tasks/{task_id}", f"/rest/v2/contacts/{gone_contact}"):
                assert keap.http.request("DELETE", path).status_code == 204, path
        finally:
            keap.close()
        w.admin("POST", "/webhooks/flush", json={"timeout": 30})
        w.store.set_now(midnight + timedelta(days=1))

        manifests = w.backup(w.day(), SPECS)
        end = iso(w.store.now() - timedelta(milliseconds=1))
        for spec in SPECS:
            key, entity = spec.key.to_user_string(), spec.schema.entity
            m = manifests[key]
            assert m["mode"] == "incremental" and m["deletions"]["swept"] is False, key
            # the backed-up state is the sandbox's: nothing deleted is left alive
            assert set(backed_up_docs(w.root, "keap", entity, end)) == set(
                w.sandbox_docs("keap", entity)), key
        alone = {"notes": {note_id}, "tasks": {task_id}}
        for entity in HISTORY:
            d = manifests[f"keap/{entity}"]["deletions"]
            expected = taken[entity] | alone.get(entity, set())
            assert manifests[f"keap/{entity}"]["deletes"] == len(expected), entity
            assert d["with_parent"] == len(taken[entity]), entity
            assert d["from_webhooks"] == len(alone.get(entity, ())), entity
        assert manifests["keap/contacts"]["deletions"]["from_webhooks"] == 1
