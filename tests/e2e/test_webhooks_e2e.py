"""Webhooks end to end: the sandbox emits the three vendors' real webhooks over sockets to the
receiver (uvicorn on a free port), hooks registered through `talentvault webhooks register`;
the inbox holds exactly the changed ids and no personal values, forgeries store nothing, and the
sensor asks for the right backup runs."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from orchestration.cli.webhooks import webhooks_app
from orchestration.storage.audit import events_glob
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.webhooks.app import Settings, create_app
from orchestration.webhooks.inbox import events_sql, inbox_dir
from orchestration.webhooks.register import KEAP_EVENTS
from orchestration.webhooks.sensor import webhook_sensor
from sandbox import process
from tests.e2e.conftest import World, served_world

SECRET = "e2e-greenhouse-secret"


@contextlib.contextmanager
def receiver(root: Path) -> Iterator[str]:
    port = process.free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings.from_env(root)), host="127.0.0.1",
                                           port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    mp = pytest.MonkeyPatch()
    mp.setenv("GREENHOUSE_WEBHOOK_SECRET", SECRET)
    for name in ("GREENHOUSE_BASE_URL", "KEAP_BASE_URL", "HIGHLEVEL_BASE_URL",
                 "HIGHLEVEL_WEBHOOK_PUBLIC_KEY"):
        mp.delenv(name, raising=False)
    try:
        with served_world(tmp_path_factory.mktemp("hooks"), candidates=60, seed=11) as w:
            yield w
    finally:
        mp.undo()


def inbox_rows(root: Path) -> list[dict]:
    sql = events_sql(root)
    if sql is None:
        return []
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM ({sql}) ORDER BY seq")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def ids(rows: list[dict], source: str, object_type: str) -> set[str]:
    return {r["object_id"] for r in rows if r["source"] == source
            and r["object_type"] == object_type}


def ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def changed(w: World, source: str, entity: str, field: str, since: datetime) -> set[str]:
    """The sandbox's truth: records updated at or after `since`, and records deleted since."""
    live = {i for i, d in w.sandbox_docs(source, entity).items()
            if (t := ts(d.get(field))) and t >= since}
    gone = {str(t["id"]) for t in w.store.tombstones(source, entity)
            if ts(t["deleted_at"]) >= since}
    return live | gone


def test_webhooks_from_the_sandbox_reach_the_inbox_and_the_sensor(world: World, tmp_path):
    w = world
    runner = CliRunner()
    with receiver(w.root) as url:
        for source in ("greenhouse", "highlevel", "keap"):
            result = runner.invoke(webhooks_app, ["register", "--source", source, "--url",
                                                  f"{url}/webhooks/{source}"])
            assert result.exit_code == 0, result.output
        hooks = w.admin("GET", "/webhooks")["hooks"]
        assert {(h["source"], h["status"]) for h in hooks} == {
            ("greenhouse", "Active"), ("highlevel", "Active"), ("keap", "Verified")}

        start = w.store.now()
        w.admin("POST", "/tick", json={"days": 1})
        w.admin("POST", "/webhooks/flush", json={"timeout": 20})
        clients = w.clients()
        keap, hl = clients["keap"], clients["highlevel"]
        try:
            contacts = [c for page in keap.contact_pages() for c in page]
            edited, deleted, tagged = contacts[0], contacts[1], contacts[2]
            keap.update_contact(edited["id"], {"given_name": "Webhook"})
            keap.delete_contact(deleted["id"])
            tag = next(t for page in keap.tag_pages() for t in page)
            keap.apply_tags(tag["id"], [tagged["id"]])
            hl_contacts = [c for page in hl.contact_pages() for c in page]
            hl.update_contact(hl_contacts[0]["id"], {"companyName": "Webhook Co"})
            hl.delete_contact(hl_contacts[1]["id"])
        finally:
            for c in clients.values():
                c.close()
        w.admin("POST", "/webhooks/flush", json={"timeout": 20})

        rows = inbox_rows(w.root)
        deliveries = w.admin("GET", "/webhooks/deliveries")["deliveries"]
        assert {d["source"] for d in deliveries} == {"greenhouse", "keap", "highlevel"}
        assert all(d["status_code"] == 200 for d in deliveries), [
            (d["source"], d["event"], d["status_code"], d["error"]) for d in deliveries
            if d["status_code"] != 200][:5]

        # exactly the changed ids, per the sandbox's own records and tombstones
        assert ids(rows, "keap", "contact") == changed(w, "keap", "contacts", "update_time",
                                                       start)
        keap_ops = {(r["object_id"], r["event_type"]) for r in rows if r["source"] == "keap"}
        assert {(str(edited["id"]), "contact.edit"), (str(deleted["id"]), "contact.delete"),
                (str(tagged["id"]), "contactGroup.applied")} <= keap_ops
        assert ids(rows, "highlevel", "contact") == changed(w, "highlevel", "contacts",
                                                            "dateUpdated", start)
        assert ids(rows, "greenhouse", "application") == changed(
            w, "greenhouse", "applications", "updated_at", start)
        gh_deleted = {str(t["id"]) for t in w.store.tombstones("greenhouse", "candidates")
                      if ts(t["deleted_at"]) >= start}
        assert gh_deleted == {r["object_id"] for r in rows if r["source"] == "greenhouse"
                              and r["object_type"] == "candidate" and r["op"] == "delete"}

        # no personal values: names and emails of everyone whose id is in the inbox
        raw = b"".join(p.read_bytes() for p in inbox_dir(w.root).rglob("*") if p.is_file())
        people = [d for i, d in w.sandbox_docs("greenhouse", "candidates").items()
                  if i in ids(rows, "greenhouse", "candidate")]
        people += [d for i, d in w.sandbox_docs("keap", "contacts").items()
                   if i in ids(rows, "keap", "contact")]
        people += [d for i, d in w.sandbox_docs("highlevel", "contacts").items()
                   if i in ids(rows, "highlevel", "contact")]
        values = set()
        for d in people:
            values |= {e.get("value") or e.get("email") for e in
                       d.get("email_addresses") or [] if isinstance(e, dict)}
            values |= {d.get("email"), d.get("family_name"), d.get("last_name"),
                       d.get("lastName")}
        values = {v for v in values if isinstance(v, str) and len(v) >= 4}
        assert len(values) > 10
        assert [v for v in values if v.encode() in raw] == []

        # forgeries are refused and store nothing
        before = len(inbox_rows(w.root))
        body = json.dumps({"action": "delete_candidate", "payload": {"person": {"id": 1}}})
        forged = httpx.post(f"{url}/webhooks/greenhouse", content=body, headers={
            "Greenhouse-Event-ID": "forged-1", "Signature": "sha256 " + hmac.new(
                b"guessed", body.encode(), hashlib.sha256).hexdigest()})
        assert forged.status_code == 401
        forged_keap = httpx.post(f"{url}/webhooks/keap", headers={"X-Hook-Secret": "guess"},
                                 json={"event_key": "contact.delete", "object_type": "contact",
                                       "object_keys": [{"id": 1, "timestamp": "x"}]})
        assert forged_keap.status_code == 401
        hl_body = json.dumps({"type": "ContactDelete", "locationId": "x", "id": "c1",
                              "timestamp": w.store.now().isoformat(), "webhookId": "f-1"})
        forged_hl = httpx.post(f"{url}/webhooks/highlevel", content=hl_body, headers={
            "X-GHL-Signature": base64.b64encode(
                Ed25519PrivateKey.generate().sign(hl_body.encode())).decode()})
        assert forged_hl.status_code == 401
        assert len(inbox_rows(w.root)) == before

    status = json.loads(runner.invoke(webhooks_app, ["status"]).output)
    assert {s: v["rows"] for s, v in status["sources"].items()} == {
        s: sum(1 for r in rows if r["source"] == s) for s in ("greenhouse", "keap", "highlevel")}
    assert status["keap_verified_secrets"] == len(KEAP_EVENTS)

    # the sensor: one run per source, for the day of the latest changes (the sandbox's today)
    today = w.store.now().date().isoformat()
    with dg.DagsterInstance.ephemeral() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources={
            "storage": SnapshotStorage(root=str(w.root))})
        result = webhook_sensor(ctx)
        requests = {r.job_name: r for r in result.run_requests}
        assert set(requests) == {"greenhouse_backup_job", "keap_backup_job",
                                 "highlevel_backup_job"}
        assert {r.partition_key for r in requests.values()} == {today}
        n_keap = len({r["event_id"] for r in rows if r["source"] == "keap"})
        assert requests["keap_backup_job"].tags["talentvault/webhook_events"] == str(n_keap)
        again = webhook_sensor(dg.build_sensor_context(
            instance=instance, cursor=result.cursor,
            resources={"storage": SnapshotStorage(root=str(w.root))}))
        assert again.run_requests == []

    # each registration is in the audit trail
    con = duckdb.connect()
    audit = con.execute(f"SELECT target, status, counts FROM read_parquet('{events_glob(w.root)}'"
                        ", union_by_name = true) WHERE action = 'webhook_register' ORDER BY "
                        "target").fetchall()
    assert [(t, s) for t, s, _ in audit] == [("webhooks/greenhouse", "succeeded"),
                                            ("webhooks/highlevel", "succeeded"),
                                            ("webhooks/keap", "succeeded")]
    assert json.loads(audit[2][2]) == {"hooks": len(KEAP_EVENTS), "verified": len(KEAP_EVENTS)}

    # unregister deletes the Keap hooks of that URL (through Keap's v1 API)
    out = runner.invoke(webhooks_app, ["unregister", "--url", f"{url}/webhooks/keap"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.output)["deleted"]) == len(KEAP_EVENTS)
    assert [h for h in w.admin("GET", "/webhooks")["hooks"] if h["source"] == "keap"] == []
