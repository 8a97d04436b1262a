"""The webhook receiver over HTTP (Starlette's TestClient): each vendor's signature scheme,
replay and staleness rules, the Keap handshake, and an inbox of ids only, deduped and durable."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from orchestration.webhooks import hook_secrets
from orchestration.webhooks.app import Settings, create_app
from orchestration.webhooks.catalog import catalog_statements
from orchestration.webhooks.events import greenhouse_event_id
from orchestration.webhooks.inbox import Inbox, events_sql, inbox_dir
from orchestration.webhooks.sensor import pending_by_source
from orchestration.webhooks.signatures import load_ed25519_public_key

SECRET = "gh-webhook-secret"
NOW = datetime(2026, 1, 20, 9, 30, tzinfo=UTC)
PERSON = {"first_name": "Zelda", "last_name": "Quartermaine",
          "email_addresses": [{"value": "zelda.q@example.org", "type": "personal"}],
          "phone_numbers": [{"value": "+1 555 0199", "type": "mobile"}]}


def rows(root: Path) -> list[dict]:
    sql = events_sql(root)
    if sql is None:
        return []
    con = duckdb.connect()
    rel = con.sql(f"SELECT * FROM ({sql}) ORDER BY seq")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def inbox_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(inbox_dir(root).rglob("*")) if p.is_file())


@pytest.fixture
def hl_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def client(tmp_path: Path, hl_key: Ed25519PrivateKey) -> TestClient:
    public = hl_key.public_key()
    settings = Settings(root=tmp_path, greenhouse_secret=SECRET,
                        highlevel_key=lambda: public, clock=lambda: NOW)
    return TestClient(create_app(settings))


def gh_post(client: TestClient, body: dict, event_id: str | None = None,
            secret: str = SECRET, signature: str | None = None):
    raw = json.dumps(body).encode()
    sig = signature or "sha256 " + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/webhooks/greenhouse", content=raw, headers={
        "Signature": sig, "Greenhouse-Event-ID": event_id or str(uuid.uuid4()),
        "Content-Type": "application/json"})


def stage_change(app_id: int, cand_id: int) -> dict:
    return {"action": "candidate_stage_change", "payload": {"application": {
        "id": app_id, "last_activity_at": "2026-01-20T09:29:00Z",
        "candidate": {"id": cand_id, **PERSON}}}}


# -- Greenhouse ---------------------------------------------------------------------------------
def test_greenhouse_signed_event_stores_ids_only_and_a_resend_is_not_stored_twice(
        client, tmp_path):
    r = gh_post(client, stage_change(501, 77), event_id="ev-1")
    assert r.status_code == 200 and r.json() == {"status": "stored", "rows": 2, "duplicates": 0}
    got = rows(tmp_path)
    assert [(x["object_type"], x["object_id"], x["op"]) for x in got] == [
        ("application", "501", "upsert"), ("candidate", "77", "upsert")]
    # one event, known by its signed body (the Event-ID header is not signed)
    assert {x["event_id"] for x in got} == {
        greenhouse_event_id(json.dumps(stage_change(501, 77)).encode())}
    assert got[0]["vendor_timestamp"] == datetime(2026, 1, 20, 9, 29, tzinfo=UTC)
    raw = inbox_bytes(tmp_path)
    for value in ("Zelda", "Quartermaine", "zelda.q@example.org", "555 0199"):
        assert value.encode() not in raw
    # Greenhouse retries after a lost reply: 200, nothing new
    again = gh_post(client, stage_change(501, 77), event_id="ev-1")
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert len(rows(tmp_path)) == 2


@pytest.mark.parametrize("signature, problem", [
    ("sha256 " + "0" * 64, "does not match"),
    ("sha1 abc", "is not 'sha256 <hex>'"),
    ("", "missing Signature"),
])
def test_greenhouse_forged_or_missing_signature_is_401_and_stores_nothing(
        client, tmp_path, signature, problem):
    raw = json.dumps(stage_change(1, 2)).encode()
    headers = {"Greenhouse-Event-ID": "ev-x"} | ({"Signature": signature} if signature else {})
    r = client.post("/webhooks/greenhouse", content=raw, headers=headers)
    assert r.status_code == 401 and problem in r.json()["error"]
    assert rows(tmp_path) == []


def test_greenhouse_wrong_secret_is_refused(client, tmp_path):
    r = gh_post(client, stage_change(1, 2), secret="not-the-secret")
    assert r.status_code == 401
    assert rows(tmp_path) == []


def test_greenhouse_bad_requests_name_the_problem(client, tmp_path):
    raw = b"{not json"
    sig = "sha256 " + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    r = client.post("/webhooks/greenhouse", content=raw,
                    headers={"Signature": sig, "Greenhouse-Event-ID": "e"})
    assert r.status_code == 400 and "not JSON" in r.json()["error"]
    raw = json.dumps(stage_change(1, 2)).encode()
    sig = "sha256 " + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    r = client.post("/webhooks/greenhouse", content=raw, headers={"Signature": sig})
    assert r.status_code == 400 and "Greenhouse-Event-ID" in r.json()["error"]
    r = gh_post(client, {"action": "merge_candidate", "payload": {"person": {"id": 5}}})
    assert r.status_code == 400 and "new_candidate_id" in r.json()["error"]
    assert rows(tmp_path) == []


def test_greenhouse_replay_of_a_signed_body_under_a_fresh_event_id_is_not_stored_again(
        client, tmp_path):
    assert gh_post(client, stage_change(501, 77), event_id="ev-1").json()["rows"] == 2
    cursor = {"greenhouse": max(r["seq"] for r in rows(tmp_path))}   # the sensor saw it
    # the same signed bytes, a new unsigned Greenhouse-Event-ID, also after a receiver restart
    again = gh_post(client, stage_change(501, 77), event_id="ev-replayed")
    restarted = TestClient(create_app(Settings(root=tmp_path, greenhouse_secret=SECRET,
                                               clock=lambda: NOW)))
    later = gh_post(restarted, stage_change(501, 77), event_id="ev-replayed-2")
    assert again.json() == later.json() == {"status": "duplicate"}
    assert len(rows(tmp_path)) == 2
    assert pending_by_source(tmp_path, cursor) == {}     # so no second backup run


def test_greenhouse_body_whose_own_times_are_stale_is_refused(client, tmp_path):
    def at(ts: datetime) -> dict:
        body = stage_change(501, 77)
        body["payload"]["application"]["last_activity_at"] = ts.isoformat()
        return body

    stale = gh_post(client, at(NOW - timedelta(days=8)))
    assert stale.status_code == 409 and "s old" in stale.json()["error"]
    ahead = gh_post(client, at(NOW + timedelta(hours=2)))
    assert ahead.status_code == 409 and "in the future" in ahead.json()["error"]
    assert rows(tmp_path) == []
    # within the window (Greenhouse retries for ~15 h): stored
    assert gh_post(client, at(NOW - timedelta(days=6))).json()["rows"] == 2


def test_greenhouse_without_a_configured_secret_is_503(tmp_path):
    c = TestClient(create_app(Settings(root=tmp_path)))
    r = gh_post(c, stage_change(1, 2))
    assert r.status_code == 503 and "GREENHOUSE_WEBHOOK_SECRET" in r.json()["error"]
    assert rows(tmp_path) == []


def test_greenhouse_deletions_and_merges_are_recorded_as_deletes(client, tmp_path):
    gh_post(client, {"action": "delete_candidate", "payload": {"person": {
        "id": 10, **PERSON, "deleted_application_ids": [100, 101]}}}, "del-1")
    gh_post(client, {"action": "merge_candidate", "payload": {"person": {
        "id": 11, "new_candidate_id": 12, **PERSON}}}, "merge-1")
    gh_post(client, {"action": "ping", "payload": {"web_hook_id": 1}}, "ping-1")
    con = duckdb.connect()
    for stmt in catalog_statements(tmp_path):
        con.execute(stmt)
    deletions = con.execute("SELECT object_type, object_id, event_type, merged_into FROM "
                            "webhooks.deletions ORDER BY object_type, object_id").fetchall()
    assert deletions == [("application", "100", "delete_candidate", None),
                         ("application", "101", "delete_candidate", None),
                         ("candidate", "10", "delete_candidate", None),
                         ("candidate", "11", "merge_candidate", "12")]
    survivors = con.execute("SELECT object_id FROM webhooks.events WHERE op = 'upsert'")
    assert survivors.fetchall() == [("12",)]


# -- HighLevel ----------------------------------------------------------------------------------
def hl_post(client: TestClient, key: Ed25519PrivateKey, body: dict,
            tamper: bool = False):
    raw = json.dumps(body).encode()
    sig = base64.b64encode(key.sign(raw)).decode()
    if tamper:
        raw = raw.replace(b"ContactUpdate", b"ContactDelete")
    return client.post("/webhooks/highlevel", content=raw, headers={"X-GHL-Signature": sig})


def hl_body(ts: datetime, webhook_id: str | None = None, kind: str = "ContactUpdate") -> dict:
    return {"type": kind, "locationId": "loc1", "id": "hlc_9", "email": "zelda.q@example.org",
            "firstName": "Zelda", "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "webhookId": webhook_id or str(uuid.uuid4())}


def test_highlevel_ed25519_signed_fresh_event_is_stored(client, hl_key, tmp_path):
    r = hl_post(client, hl_key, hl_body(NOW - timedelta(seconds=20), "wh-1"))
    assert r.status_code == 200 and r.json()["rows"] == 1
    [row] = rows(tmp_path)
    assert (row["source"], row["event_type"], row["object_type"], row["object_id"],
            row["event_id"]) == ("highlevel", "ContactUpdate", "contact", "hlc_9", "wh-1")
    assert b"zelda" not in inbox_bytes(tmp_path).lower()
    # a replay of the same webhookId: not stored again
    assert hl_post(client, hl_key, hl_body(NOW, "wh-1")).json() == {"status": "duplicate"}
    assert len(rows(tmp_path)) == 1


def test_highlevel_stale_or_future_events_are_409_and_not_stored(client, hl_key, tmp_path):
    old = hl_post(client, hl_key, hl_body(NOW - timedelta(minutes=6)))
    assert old.status_code == 409 and "old" in old.json()["error"]
    future = hl_post(client, hl_key, hl_body(NOW + timedelta(minutes=6)))
    assert future.status_code == 409 and "future" in future.json()["error"]
    assert rows(tmp_path) == []


def test_highlevel_forged_signatures_are_401(client, hl_key, tmp_path):
    other = Ed25519PrivateKey.generate()
    assert hl_post(client, other, hl_body(NOW)).status_code == 401
    tampered = hl_post(client, hl_key, hl_body(NOW), tamper=True)
    assert tampered.status_code == 401 and "does not verify" in tampered.json()["error"]
    raw = json.dumps(hl_body(NOW)).encode()
    assert client.post("/webhooks/highlevel", content=raw).status_code == 401
    not_b64 = client.post("/webhooks/highlevel", content=raw,
                          headers={"X-GHL-Signature": "***"})
    assert not_b64.status_code == 401 and "base64" in not_b64.json()["error"]
    assert rows(tmp_path) == []


def test_highlevel_key_must_be_ed25519():
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(
    ).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValueError, match="not an Ed25519 key"):
        load_ed25519_public_key(rsa_pem)
    with pytest.raises(ValueError, match="not a PEM public key"):
        load_ed25519_public_key("garbage")


# -- Keap ---------------------------------------------------------------------------------------
def keap_body(event_key: str, ids: list[int], ts: str = "2026-01-20T09:00:00.000Z") -> dict:
    obj = "contactGroup" if event_key.startswith("contactGroup") else "contact"
    return {"event_key": event_key, "object_type": obj, "object_keys": [
        {"id": i, "apiUrl": f"https://api.infusionsoft.com/crm/rest/v2/contacts/{i}",
         "timestamp": ts} for i in ids]}


def test_keap_verification_only_during_registration_and_secret_kept_0600(client, tmp_path):
    r = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"})
    assert r.status_code == 401 and "register" in r.json()["error"]
    assert hook_secrets.known_secrets(tmp_path) == []
    hook_secrets.open_window(tmp_path)
    r = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"}, content=b"")
    assert r.status_code == 200 and r.headers["X-Hook-Secret"] == "s-1"
    hook_secrets.close_window(tmp_path)
    assert hook_secrets.known_secrets(tmp_path) == ["s-1"]
    mode = stat.S_IMODE(os.stat(hook_secrets.secret_file(tmp_path)).st_mode)
    assert mode == 0o600
    # a known secret is answered again later (re-verification), an unknown one is not
    again = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"}, json={})
    assert again.status_code == 200 and again.headers["X-Hook-Secret"] == "s-1"
    assert client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-2"}).status_code == 401


def test_keap_deliveries_need_the_verified_secret_and_resends_are_deduped(client, tmp_path):
    body = keap_body("contact.edit", [12, 13, 14])
    r = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"}, json=body)
    assert r.status_code == 401 and "no Keap hook has been verified" in r.json()["error"]
    hook_secrets.learn_secret(tmp_path, "s-1")
    bad = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-0"}, json=body)
    assert bad.status_code == 401 and rows(tmp_path) == []
    ok = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"}, json=body)
    assert ok.status_code == 200 and ok.json()["rows"] == 3
    # Keap's retry of the same batch, and a batch overlapping it
    assert client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"},
                       json=body).json() == {"status": "duplicate"}
    mixed = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"},
                        json=keap_body("contact.edit", [14, 15]))
    assert mixed.json() == {"status": "stored", "rows": 1, "duplicates": 1}
    client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"},
                json=keap_body("contact.delete", [16]))
    got = [(x["object_id"], x["op"]) for x in rows(tmp_path)]
    assert got == [("12", "upsert"), ("13", "upsert"), ("14", "upsert"), ("15", "upsert"),
                   ("16", "delete")]


def test_keap_tag_events_name_the_contacts(client, tmp_path):
    hook_secrets.learn_secret(tmp_path, "s-1")
    body = {"event_key": "contactGroup.applied", "object_type": "contactGroup", "object_keys": [
        {"id": 91, "timestamp": "2026-01-20T09:00:00Z", "contact_ids": [12, 13]}]}
    assert client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"},
                       json=body).json()["rows"] == 2
    assert [(x["object_type"], x["object_id"], x["related_id"]) for x in rows(tmp_path)] == [
        ("contact", "12", "91"), ("contact", "13", "91")]


def test_keap_bad_batches_are_400(client, tmp_path):
    hook_secrets.learn_secret(tmp_path, "s-1")
    h = {"X-Hook-Secret": "s-1"}
    too_many = client.post("/webhooks/keap", headers=h,
                           json=keap_body("contact.add", list(range(1, 1002))))
    assert too_many.status_code == 400 and "1001 object keys" in too_many.json()["error"]
    no_id = client.post("/webhooks/keap", headers=h, json={
        "event_key": "contact.add", "object_keys": [{"timestamp": "2026-01-20T09:00:00Z"}]})
    assert no_id.status_code == 400 and "object_keys[0] has no 'id'" in no_id.json()["error"]
    assert rows(tmp_path) == []


# -- inbox ----------------------------------------------------------------------------------------
def test_inbox_survives_a_restart_and_refuses_known_events(client, tmp_path, hl_key):
    gh_post(client, stage_change(501, 77), event_id="ev-1")
    # a new receiver process on the same data root
    c2 = TestClient(create_app(Settings(root=tmp_path, greenhouse_secret=SECRET,
                                        clock=lambda: NOW)))
    assert gh_post(c2, stage_change(501, 77), event_id="ev-1").json() == {
        "status": "duplicate"}
    assert gh_post(c2, stage_change(502, 77), event_id="ev-2").json()["rows"] == 2
    seqs = [r["seq"] for r in rows(tmp_path)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4


def test_closed_days_compact_to_parquet_with_the_same_rows(client, tmp_path):
    for n in range(3):
        gh_post(client, stage_change(600 + n, 70 + n), event_id=f"c-{n}")
    before = rows(tmp_path)
    today = next(inbox_dir(tmp_path).glob("date=*"))
    # a torn last line (a crash mid-write: never acknowledged) and a stray duplicate line
    with open(today / "events.jsonl", "ab") as f:
        first = (today / "events.jsonl").read_bytes().splitlines()[0]
        f.write(first + b"\n" + b'{"seq": 99, "event_id": "tor')
    today.rename(today.with_name("date=2026-01-01"))
    # a receiver starting again compacts the days a previous run left open
    TestClient(create_app(Settings(root=tmp_path)))
    assert Inbox(tmp_path).compact() == 0
    day = inbox_dir(tmp_path) / "date=2026-01-01"
    assert sorted(p.name for p in day.iterdir()) == ["events.parquet"]
    assert rows(tmp_path) == before


def signed_gh(client: TestClient, raw: bytes, event_id: str = "ev-1"):
    sig = "sha256 " + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    return client.post("/webhooks/greenhouse", content=raw,
                       headers={"Signature": sig, "Greenhouse-Event-ID": event_id})


@pytest.mark.parametrize("raw, problem", [
    (b'{"action": "x", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    (b'{"action": "x", "payload": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}", "nested"),
    (b'{"action": "x", "payload": {"job": ' + b"9" * 5000 + b"}}", "not usable JSON"),
])
def test_signed_bodies_too_deep_or_too_big_to_read_are_400(client, tmp_path, raw, problem):
    r = signed_gh(client, raw)
    assert r.status_code == 400 and problem in r.json()["error"]
    assert "\n" not in r.json()["error"]
    assert rows(tmp_path) == []


def _gh_app(app_id) -> dict:
    body = stage_change(1, 2)
    body["payload"]["application"]["id"] = app_id
    return body


@pytest.mark.parametrize("source, body, field", [
    ("greenhouse", _gh_app("../../etc"), "payload.application.id"),
    ("greenhouse", _gh_app(int("9" * 401)), "payload.application.id"),
    ("greenhouse", _gh_app({"nested": 1}), "payload.application.id"),
    ("greenhouse", {"action": "delete_candidate", "payload": {"person": {
        "id": 5, "deleted_application_ids": ["../x"]}}},
     "payload.person.deleted_application_ids[0]"),
    ("keap", keap_body("contact.edit", [12]) | {"object_keys": [{"id": "../../etc"}]},
     "object_keys[0]"),
    ("highlevel", {"id": "../../etc"}, "ContactUpdate id"),
    ("highlevel", {"id": {"id": "x"}}, "ContactUpdate id"),
    ("highlevel", {"webhookId": "a\nb"}, "webhookId"),
])
def test_ids_outside_the_vendors_format_are_400_and_store_nothing(
        client, hl_key, tmp_path, source, body, field):
    if source == "greenhouse":
        r = gh_post(client, body)
    elif source == "keap":
        hook_secrets.learn_secret(tmp_path, "s-1")
        r = client.post("/webhooks/keap", headers={"X-Hook-Secret": "s-1"}, json=body)
    else:
        r = hl_post(client, hl_key, hl_body(NOW) | body)
    assert r.status_code == 400 and field in r.json()["error"], r.json()
    assert "etc" not in r.json()["error"]       # the value is described, never echoed
    assert rows(tmp_path) == []


def test_a_greenhouse_event_id_header_that_is_not_an_id_is_400(client, tmp_path):
    r = gh_post(client, stage_change(1, 2), event_id="../../etc")
    assert r.status_code == 400 and "Greenhouse-Event-ID" in r.json()["error"]
    assert rows(tmp_path) == []


def test_body_over_the_limit_is_413(tmp_path):
    c = TestClient(create_app(Settings(root=tmp_path, greenhouse_secret=SECRET, max_body=100)))
    r = gh_post(c, stage_change(1, 2))
    assert r.status_code == 413 and "limit" in r.json()["error"]


def test_health_reports_configuration_without_secrets(client, tmp_path):
    hook_secrets.learn_secret(tmp_path, "s-1")
    body = client.get("/health").json()
    assert body == {"ok": True, "greenhouse": True, "highlevel": True,
                    "keap_verified_secrets": 1}
    assert SECRET not in json.dumps(body)
