"""The sandbox's outbound webhooks, received by a real HTTP server in the test process.

A sandbox server process serves a small generated world; changes are made through the vendor
APIs (in the server process) and by `tick` on the world file from this process (another
process, as `talentvault sandbox tick` would). Checked: the vendors' signatures verify with the
documented algorithms, Keap's verification handshake and hook statuses, the events name exactly
the changed records, retries after a 500, a 410 deactivating a Keap hook, Keap batches of at
most 1000 ids, and that nothing is recorded or delivered while no hook is configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from sandbox import credentials, process, records
from sandbox.store import Store
from sandbox.world import generate as world
from sandbox.world import life

KEAP_V1 = "/keap/crm/rest/v1"
KEAP_V2 = "/keap/crm/rest/v2"
KEAP = {"X-Keap-API-Key": credentials.KEAP_API_KEY}
HL = {"Authorization": f"Bearer {credentials.HIGHLEVEL_TOKEN}",
      "Version": credentials.HIGHLEVEL_API_VERSION}
GH_SECRET = "greenhouse-test-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class Receiver:
    """A webhook endpoint: records every POST; `reply(received)` picks the status and headers
    (default 200, echoing a Keap verification secret)."""

    url: str
    got: list[Received] = field(default_factory=list)
    reply: Callable[[Received], tuple[int, dict[str, str]]] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.got if r.path == path]

    def clear(self) -> None:
        with self.lock:
            self.got.clear()
        self.reply = None


def _echo(r: Received) -> tuple[int, dict[str, str]]:
    secret = r.headers.get("x-hook-secret")
    return 200, ({"X-Hook-Secret": secret} if secret else {})


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    box: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            got = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
            rec = box["r"]
            with rec.lock:
                rec.got.append(got)
            status, headers = (rec.reply or _echo)(got)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box["r"]
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Hooked:
    base_url: str
    folder: Path
    store: Store

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, f"{self.base_url}/_sandbox{path}", timeout=60, **kw)
        assert r.status_code < 400, r.text
        return r.json()

    def flush(self) -> int:
        body = self.admin("POST", "/webhooks/flush", json={"timeout": 30})
        assert body["drained"] is True
        return body["seq"]

    def deliveries(self, since: int = 0, source: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"since": since, **({"source": source} if source else {})}
        return self.admin("GET", "/webhooks/deliveries", params=params)["deliveries"]

    def seq(self) -> int:
        return self.admin("GET", "/webhooks/deliveries", params={"since": 10**12})["seq"]

    def keap(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**KEAP, **kw.pop("headers", {})}
        return httpx.request(method, f"{self.base_url}{path}", headers=headers, timeout=60, **kw)

    def highlevel(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.base_url}/highlevel{path}", headers=HL,
                             timeout=60, **kw)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hooked]:
    folder = tmp_path_factory.mktemp("hooks") / "sandbox"
    world.generate(folder, candidates=80, seed=11)
    proc = process.start(folder, rate_limits=False)
    store = Store(folder)
    try:
        yield Hooked(proc.base_url, folder, store)
    finally:
        proc.stop()
        store.close()


@pytest.fixture
def sandbox(served: Hooked, receiver: Receiver) -> Iterator[Hooked]:
    """No hook configured at the start and at the end of each test."""
    yield served
    receiver.reply = None
    served.admin("DELETE", "/webhooks/greenhouse")
    served.admin("DELETE", "/webhooks/highlevel")
    for h in served.keap("GET", f"{KEAP_V1}/hooks").json():
        served.keap("DELETE", f"{KEAP_V1}/hooks/{h['key']}")
    served.flush()
    receiver.clear()


def _tombs(store: Store, source: str, entity: str) -> set[str]:
    return {t["id"] for t in store.tombstones(source, entity)}


def _triggers(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger'")]


def test_no_hook_records_and_delivers_nothing(sandbox: Hooked, receiver: Receiver) -> None:
    seq = sandbox.seq()
    before = sandbox.store.count("greenhouse", "applications")
    life.tick(sandbox.store, days=1)
    assert sandbox.store.count("greenhouse", "applications") > before  # the world did change
    r = sandbox.keap("POST", f"{KEAP_V2}/contacts",
                     json={"email_addresses": [{"email": "nohook@example.com",
                                                "field": "EMAIL1"}]})
    assert r.status_code == 201, r.text
    sandbox.flush()
    assert _triggers(sandbox.store) == []
    assert sandbox.admin("GET", "/webhooks")["pending_changes"] == 0
    assert sandbox.deliveries(since=seq) == []
    assert receiver.got == []


def _snapshot(store: Store) -> dict[str, dict[str, dict]]:
    return {e: {str(d["id"]): d for d in store.iter_docs("greenhouse", e)}
            for e in ("candidates", "applications")}


def test_greenhouse_tick_events_are_signed_and_name_the_changes(
        sandbox: Hooked, receiver: Receiver) -> None:
    sandbox.admin("PUT", "/webhooks/greenhouse",
                  json={"url": receiver.url + "/gh", "secret": GH_SECRET})
    old = _snapshot(sandbox.store)
    gone_before = {t["id"] for t in sandbox.store.tombstones("greenhouse", "candidates")}
    apps_gone_before = _tombs(sandbox.store, "greenhouse", "applications")
    life.tick(sandbox.store, days=2)  # this process writes the world, the server delivers
    apps_gone = _tombs(sandbox.store, "greenhouse", "applications") - apps_gone_before
    new = _snapshot(sandbox.store)
    sandbox.flush()

    got = receiver.on("/gh")
    assert got, "no Greenhouse webhook arrived"
    for r in got:
        expected = "sha256 " + hmac.new(GH_SECRET.encode(), r.raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(r.headers["signature"], expected)
    assert len({r.headers["greenhouse-event-id"] for r in got}) == len(got)

    by_action: dict[str, set[int]] = {}
    for r in got:
        p = r.body["payload"]
        obj = p.get("application") or p.get("candidate") or p.get("person") or \
            p.get("offer") or p.get("job")
        by_action.setdefault(r.body["action"], set()).add(obj["id"])

    apps_old, apps_new = old["applications"], new["applications"]
    # new: alive now and not before, or made and deleted within the tick
    added = {int(i) for i in (apps_new.keys() | apps_gone) - apps_old.keys()}
    assert by_action.get("new_candidate_application", set()) | by_action.get(
        "new_prospect_application", set()) == added
    assert added
    hired = {int(i) for i, d in apps_new.items()
             if d["status"] == "hired" and apps_old.get(i, {}).get("status") == "in_process"}
    assert hired <= by_action.get("hire_candidate", set()) <= hired | {
        int(i) for i in apps_gone}
    moved = {int(i) for i, d in apps_new.items() if i in apps_old
             and d["status"] == apps_old[i]["status"] == "in_process"
             and d["stage_id"] != apps_old[i]["stage_id"]}
    assert moved and moved <= by_action["candidate_stage_change"]

    tomb = {t["id"]: t for t in sandbox.store.tombstones("greenhouse", "candidates")
            if t["id"] not in gone_before}
    merged = {int(i) for i, t in tomb.items() if t["merged_into"]}
    deleted = {int(i) for i, t in tomb.items() if not t["merged_into"]}
    assert by_action.get("merge_candidate", set()) == merged
    assert by_action.get("delete_candidate", set()) == deleted
    for r in got:
        if r.body["action"] == "merge_candidate":
            person = r.body["payload"]["person"]
            assert str(person["new_candidate_id"]) == tomb[str(person["id"])]["merged_into"]
    # the delivery log is the oracle: one successful first attempt per received webhook
    log = sandbox.deliveries(source="greenhouse")
    assert sorted(e["event_id"] for e in log if e["status_code"] == 200) == sorted(
        r.headers["greenhouse-event-id"] for r in got)


def test_highlevel_api_writes_are_signed_with_ed25519(sandbox: Hooked,
                                                      receiver: Receiver) -> None:
    sandbox.admin("PUT", "/webhooks/highlevel", json={"url": receiver.url + "/hl"})
    key = sandbox.admin("GET", "/webhooks/highlevel/public-key")
    assert key["algorithm"] == "ed25519"
    public = load_pem_public_key(key["public_key_pem"].encode())
    assert isinstance(public, Ed25519PublicKey)

    r = sandbox.highlevel("POST", "/contacts/", json={
        "locationId": credentials.HIGHLEVEL_LOCATION_ID, "firstName": "Hook",
        "email": "hook.hl@example.com"})
    assert r.status_code in (200, 201), r.text
    cid = r.json()["contact"]["id"]
    r = sandbox.highlevel("POST", f"/contacts/{cid}/tags", json={"tags": ["webhook-test"]})
    assert r.status_code in (200, 201), r.text
    assert sandbox.highlevel("DELETE", f"/contacts/{cid}").status_code == 200
    sandbox.flush()

    got = receiver.on("/hl")
    assert [(g.body["type"], g.body["id"]) for g in got] == [
        ("ContactCreate", cid), ("ContactTagUpdate", cid), ("ContactDelete", cid)]
    for g in got:
        public.verify(base64.b64decode(g.headers["x-ghl-signature"]), g.raw)  # raises if bad
        assert g.body["locationId"] == credentials.HIGHLEVEL_LOCATION_ID
        assert g.body["timestamp"] <= sandbox.admin("GET", "/clock")["now"]
    assert len({g.body["webhookId"] for g in got}) == 3
    assert "webhook-test" in got[1].body["tags"]
    # a tampered body does not verify
    with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidSignature
        public.verify(base64.b64decode(got[0].headers["x-ghl-signature"]), got[0].raw + b" ")


def test_retry_after_a_500_delivers_the_same_event_again(sandbox: Hooked,
                                                         receiver: Receiver) -> None:
    sandbox.admin("PUT", "/webhooks/highlevel", json={"url": receiver.url + "/hl"})
    failed: set[str] = set()

    def fail_first(r: Received) -> tuple[int, dict[str, str]]:
        wid = r.body["webhookId"]
        if wid in failed:
            return 200, {}
        failed.add(wid)
        return 500, {}

    receiver.reply = fail_first
    seq = sandbox.seq()
    r = sandbox.highlevel("POST", "/contacts/", json={
        "locationId": credentials.HIGHLEVEL_LOCATION_ID, "firstName": "Retry",
        "email": "retry.hl@example.com"})
    assert r.status_code in (200, 201), r.text
    sandbox.flush()
    got = receiver.on("/hl")
    assert len(got) == 2 and got[0].raw == got[1].raw  # the same signed body, sent again
    log = sandbox.deliveries(since=seq, source="highlevel")
    assert [(e["attempt"], e["status_code"]) for e in log] == [(1, 500), (2, 200)]
    assert log[0]["event_id"] == log[1]["event_id"] == got[0].body["webhookId"]


def _create_hook(sandbox: Hooked, event: str, url: str) -> dict[str, Any]:
    r = sandbox.keap("POST", f"{KEAP_V1}/hooks", json={"eventKey": event, "hookUrl": url})
    assert r.status_code == 200, r.text
    return r.json()


def test_keap_hooks_handshake_statuses_and_deliveries(sandbox: Hooked,
                                                      receiver: Receiver) -> None:
    keys = sandbox.keap("GET", f"{KEAP_V1}/hooks/event_keys").json()
    assert {"contact.add", "contact.edit", "contact.delete", "contactGroup.applied",
            "contactGroup.removed"} <= set(keys)
    bad = sandbox.keap("POST", f"{KEAP_V1}/hooks", json={"eventKey": "contact.nope",
                                                         "hookUrl": receiver.url})
    assert bad.status_code == 400 and "eventKey" in bad.json()["message"]

    receiver.reply = lambda r: (200, {})  # answers, but does not echo the secret
    hook = _create_hook(sandbox, "contact.add", receiver.url + "/keap")
    assert hook["status"] == "Unverified"
    handshake = receiver.on("/keap")[-1]
    assert handshake.body["object_keys"] == [] and handshake.headers["x-hook-secret"]
    # Delayed Confirmation with the secret the handshake carried
    wrong = sandbox.keap("POST", f"{KEAP_V1}/hooks/{hook['key']}/delayedVerify",
                         headers={"X-Hook-Secret": "nope"})
    assert wrong.status_code == 400
    ok = sandbox.keap("POST", f"{KEAP_V1}/hooks/{hook['key']}/delayedVerify",
                      headers={"X-Hook-Secret": handshake.headers["x-hook-secret"]})
    assert ok.json()["status"] == "Verified"
    receiver.reply = None  # echo from now on
    edit = _create_hook(sandbox, "contact.edit", receiver.url + "/keap")
    assert edit["status"] == "Verified"
    listed = {h["key"]: h for h in sandbox.keap("GET", f"{KEAP_V1}/hooks").json()}
    assert listed[edit["key"]] == edit and listed[hook["key"]]["status"] == "Verified"
    assert sandbox.keap("GET", f"{KEAP_V1}/hooks/{edit['key']}").json() == edit
    secrets_by_event = {h.headers["x-hook-secret"] for h in receiver.on("/keap")}
    receiver.clear()

    r = sandbox.keap("POST", f"{KEAP_V2}/contacts",
                     json={"given_name": "Hook",
                           "email_addresses": [{"email": "hook.keap@example.com",
                                                "field": "EMAIL1"}]})
    assert r.status_code == 201, r.text
    new_id = r.json()["id"]
    r = sandbox.keap("PATCH", f"{KEAP_V2}/contacts/{new_id}", json={"family_name": "Edited"})
    assert r.status_code == 200, r.text
    sandbox.flush()
    got = {g.body["event_key"]: g for g in receiver.on("/keap")}
    assert set(got) == {"contact.add", "contact.edit"}
    for g in got.values():
        assert [str(k["id"]) for k in g.body["object_keys"]] == [str(new_id)]
        assert g.body["object_type"] == "contact"
        assert g.headers["x-hook-secret"] in secrets_by_event
        assert set(g.body["object_keys"][0]) == {"id", "apiUrl", "timestamp"}
    assert httpx.get(got["contact.add"].body["object_keys"][0]["apiUrl"], headers=KEAP,
                     timeout=30).json()["id"] == str(new_id)

    assert sandbox.keap("DELETE", f"{KEAP_V1}/hooks/{hook['key']}").status_code == 204
    assert sandbox.keap("GET", f"{KEAP_V1}/hooks/{hook['key']}").status_code == 404


def test_keap_410_deactivates_and_verify_reactivates(sandbox: Hooked,
                                                     receiver: Receiver) -> None:
    hook = _create_hook(sandbox, "contact.add", receiver.url + "/keap")
    assert hook["status"] == "Verified"
    receiver.reply = lambda r: (410, {}) if r.body["object_keys"] else _echo(r)
    records.save(sandbox.store, "keap", "contacts", {
        "id": "990001", "given_name": "Gone", "email_addresses": [], "phone_numbers": [],
        "addresses": [], "tag_ids": [], "custom_fields": [],
        "create_time": "2026-01-01T00:00:00.000Z", "update_time": "2026-01-01T00:00:00.000Z"})
    sandbox.flush()
    assert sandbox.keap("GET", f"{KEAP_V1}/hooks/{hook['key']}").json()["status"] == "Inactive"
    log = [e for e in sandbox.deliveries(source="keap") if e["hook"] == hook["key"]]
    assert [e["status_code"] for e in log] == [410]  # no retry after a 410
    delivered = len(receiver.on("/keap"))
    records.save(sandbox.store, "keap", "contacts", {
        "id": "990002", "given_name": "Quiet", "email_addresses": [], "phone_numbers": [],
        "addresses": [], "tag_ids": [], "custom_fields": [],
        "create_time": "2026-01-01T00:00:00.000Z", "update_time": "2026-01-01T00:00:00.000Z"})
    sandbox.flush()
    assert len(receiver.on("/keap")) == delivered  # an Inactive hook receives nothing
    receiver.reply = None
    again = sandbox.keap("POST", f"{KEAP_V1}/hooks/{hook['key']}/verify").json()
    assert again["status"] == "Verified"


def test_keap_four_failures_deactivate_and_batches_hold_at_most_1000(
        sandbox: Hooked, receiver: Receiver) -> None:
    sandbox.admin("PUT", "/webhooks/settings", json={"retry_delays": [0.05]})
    try:
        hook = _create_hook(sandbox, "contact.add", receiver.url + "/keap")
        receiver.reply = lambda r: (503, {}) if r.body["object_keys"] else _echo(r)
        docs = [{"id": str(980000 + i), "given_name": "Bulk", "email_addresses": [],
                 "phone_numbers": [], "addresses": [], "tag_ids": [], "custom_fields": [],
                 "create_time": "2026-01-01T00:00:00.000Z",
                 "update_time": "2026-01-01T00:00:00.000Z"} for i in range(1500)]
        records.save_many(sandbox.store, "keap", "contacts", docs)
        sandbox.flush()
        batches = [g for g in receiver.on("/keap") if g.body["object_keys"]]
        # 2 batches (1000 + 500); the first is tried 4 times, then the hook is Inactive (the
        # other's last attempt may find it Inactive already and is then not sent)
        sizes = [len(g.body["object_keys"]) for g in batches]
        assert sorted(set(sizes)) == [500, 1000]
        assert sizes.count(1000) == 4 and 3 <= sizes.count(500) <= 4
        assert {str(k["id"]) for g in batches for k in g.body["object_keys"]} == {
            d["id"] for d in docs}
        assert sandbox.keap("GET", f"{KEAP_V1}/hooks/{hook['key']}").json()["status"] \
            == "Inactive"
    finally:
        sandbox.admin("PUT", "/webhooks/settings", json={"retry_delays": [0.2, 0.5, 1.0]})


def _docs(store: Store, source: str, entity: str, drop: tuple[str, ...] = ()) -> dict[str, dict]:
    return {str(d["id"]): {k: v for k, v in d.items() if k not in drop}
            for d in store.iter_docs(source, entity)}


def _ids(got: list[Received], field_: str, value: str, key: str = "id") -> set[str]:
    return {str(g.body[key]) for g in got if g.body[field_] == value}


def test_tick_crm_changes_reach_keap_and_highlevel_hooks(sandbox: Hooked,
                                                         receiver: Receiver) -> None:
    sandbox.admin("PUT", "/webhooks/highlevel", json={"url": receiver.url + "/hl"})
    for event in ("contact.add", "contact.edit", "contact.delete"):
        assert _create_hook(sandbox, event, receiver.url + "/keap")["status"] == "Verified"
    receiver.clear()
    before = {(s, e): _tombs(sandbox.store, s, e) for s, e in (
        ("keap", "contacts"), ("highlevel", "contacts"), ("highlevel", "opportunities"))}
    keap_old = _docs(sandbox.store, "keap", "contacts")
    hl_old = _docs(sandbox.store, "highlevel", "contacts")
    opp_old = _docs(sandbox.store, "highlevel", "opportunities", drop=("contact",))
    life.tick(sandbox.store, days=2)
    gone = {k: _tombs(sandbox.store, *k) - v for k, v in before.items()}
    keap_new = _docs(sandbox.store, "keap", "contacts")
    hl_new = _docs(sandbox.store, "highlevel", "contacts")
    opp_new = _docs(sandbox.store, "highlevel", "opportunities", drop=("contact",))
    sandbox.flush()

    keap: dict[str, set[str]] = {}
    for g in receiver.on("/keap"):
        keap.setdefault(g.body["event_key"], set()).update(
            str(k["id"]) for k in g.body["object_keys"])
    gone_keap = gone["keap", "contacts"]
    assert keap.get("contact.add", set()) == (keap_new.keys() | gone_keap) - keap_old.keys()
    assert keap["contact.add"] and keap.get("contact.delete", set()) == gone_keap
    strip = ("tag_ids", "update_time")
    edited = {i for i in keap_old.keys() & keap_new.keys()
              if {k: v for k, v in keap_old[i].items() if k not in strip}
              != {k: v for k, v in keap_new[i].items() if k not in strip}}
    assert edited and edited <= keap.get("contact.edit", set())
    # ... and nothing that did not change (a contact may be edited, then deleted or added)
    assert keap.get("contact.edit", set()) <= {
        i for i in keap_old.keys() | keap_new.keys() if keap_old.get(i) != keap_new.get(i)}

    hl = receiver.on("/hl")
    gone_hl, gone_opp = gone["highlevel", "contacts"], gone["highlevel", "opportunities"]
    assert _ids(hl, "type", "ContactCreate") == (hl_new.keys() | gone_hl) - hl_old.keys()
    assert _ids(hl, "type", "ContactCreate") and _ids(hl, "type", "ContactDelete") == gone_hl
    changed = {i for i in hl_old.keys() & hl_new.keys() if hl_old[i] != hl_new[i]}
    updates = _ids(hl, "type", "ContactUpdate") | _ids(hl, "type", "ContactTagUpdate")
    assert changed <= updates <= changed | (hl_old.keys() ^ hl_new.keys())
    assert _ids(hl, "type", "OpportunityCreate") == (opp_new.keys() | gone_opp) - opp_old.keys()
    assert _ids(hl, "type", "OpportunityDelete") == gone_opp
    opp_changed = {i for i in opp_old.keys() & opp_new.keys() if opp_old[i] != opp_new[i]}
    opp_events = set().union(*(_ids(hl, "type", t) for t in (
        "OpportunityStageUpdate", "OpportunityStatusUpdate", "OpportunityUpdate")))
    assert opp_changed and opp_changed <= opp_events <= opp_changed | (
        opp_old.keys() ^ opp_new.keys())


def test_keap_tag_hooks_name_the_tag_and_its_contacts(sandbox: Hooked,
                                                      receiver: Receiver) -> None:
    for event in ("contactGroup.applied", "contactGroup.removed"):
        _create_hook(sandbox, event, receiver.url + "/keap")
    receiver.clear()
    tag = sandbox.keap("GET", f"{KEAP_V2}/tags").json()["tags"][0]["id"]
    contacts = [d["id"] for d in sandbox.store.iter_docs("keap", "contacts")
                if tag not in (d.get("tag_ids") or [])][:2]
    r = sandbox.keap("POST", f"{KEAP_V2}/tags/{tag}/contacts:applyTags",
                     json={"contact_ids": contacts})
    assert r.status_code == 200, r.text
    r = sandbox.keap("POST", f"{KEAP_V2}/tags/{tag}/contacts:removeTags",
                     json={"contact_ids": contacts[:1]})
    assert r.status_code == 204, r.text
    sandbox.flush()
    got = {g.body["event_key"]: g.body for g in receiver.on("/keap")}
    assert set(got) == {"contactGroup.applied", "contactGroup.removed"}
    for event, expected in (("contactGroup.applied", contacts),
                            ("contactGroup.removed", contacts[:1])):
        assert got[event]["object_type"] == "contactGroup"
        [key] = got[event]["object_keys"]
        assert str(key["id"]) == str(tag)
        assert sorted(str(c) for c in key["contact_ids"]) == sorted(expected)
