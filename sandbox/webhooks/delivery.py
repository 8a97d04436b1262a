"""Outbound webhooks of the sandbox: the delivery worker and the `/_sandbox/webhooks` endpoints.

    GET    /_sandbox/webhooks                      hooks (no secrets), settings, queue sizes
    PUT    /_sandbox/webhooks/greenhouse           {"url": U, "secret": S} (Greenhouse's web UI)
    DELETE /_sandbox/webhooks/greenhouse
    PUT    /_sandbox/webhooks/highlevel            {"url": U} (the marketplace app's webhook URL)
    DELETE /_sandbox/webhooks/highlevel
    GET    /_sandbox/webhooks/highlevel/public-key {"public_key_pem", "algorithm": "ed25519"}
    GET    /_sandbox/webhooks/deliveries?source=&since=   the delivery log (seq > since)
    DELETE /_sandbox/webhooks/deliveries           empty the delivery log
    POST   /_sandbox/webhooks/flush                {"timeout": s}: wait until every pending
                                                   change was turned into deliveries and every
                                                   delivery was attempted to its end
    GET    /_sandbox/webhooks/settings             {"retry_delays": [...], "timeout_seconds": s}
    PUT    /_sandbox/webhooks/settings             change them (not persisted)
Keap hooks are managed through the Keap v1 API itself (keap/hooks.py).

Changes reach the worker through the outbox in the world file (webhooks/store.py), whichever
process made them; the worker is one thread of the server process with its own SQLite
connection, so deliveries never block API replies. Each delivery is retried on the compressed
RETRY_DELAYS schedule up to the vendor's number of attempts; every attempt is logged (ids and
status only, never a body).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import heapq
import hmac
import itertools
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.state import SandboxState
from sandbox.store import Store, iso
from sandbox.webhooks import store as hs
from sandbox.webhooks.events import Event, dumps, events_for

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# seconds before attempt 2, 3, ... (the real vendors wait minutes to hours); the last one repeats
RETRY_DELAYS: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)
MAX_ATTEMPTS = {"greenhouse": 8, "keap": 4, "highlevel": 6}  # GH: 1 + 7 retries; Keap: 4
KEAP_BATCH = 1000
POLL_SECONDS = 0.2
KEY_FILE = "webhook_ed25519_key.pem"
USER_AGENT = "talentvault-sandbox-webhooks/1"
LOG_CAP = 200_000
log = logging.getLogger(__name__)


@dataclass(order=True)
class Delivery:
    due: float
    n: int
    source: str = field(compare=False)
    hook: str = field(compare=False)
    url: str = field(compare=False)
    event: str = field(compare=False)
    event_id: str = field(compare=False)
    body: bytes = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    ids: list[str] = field(compare=False)
    attempt: int = field(default=1, compare=False)


def load_or_create_key(folder: Path) -> Ed25519PrivateKey:
    """The sandbox's HighLevel signing key: created once per sandbox folder (0600), then kept."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    path = folder / KEY_FILE
    if not path.exists():
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey), f"{path} does not hold an Ed25519 key"
    return key


def public_key_pem(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def greenhouse_signature(secret: str, body: bytes) -> str:
    return "sha256 " + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Dispatcher:
    """Turns outbox changes into signed deliveries and sends them from one background thread."""

    def __init__(self, db_path: Path, *, retry_delays: tuple[float, ...] = RETRY_DELAYS,
                 timeout_seconds: float = 5.0):
        self.db_path = db_path
        self.folder = db_path.parent
        self.retry_delays = tuple(retry_delays)
        self.timeout_seconds = timeout_seconds
        self._cv = threading.Condition()
        self._heap: list[Delivery] = []
        self._busy = 0            # claiming / sending right now
        self._thread: threading.Thread | None = None
        self._n = itertools.count()
        self._key: Ed25519PrivateKey | None = None
        self.log: list[dict[str, Any]] = []
        self.log_seq = 0

    # -- keys -----------------------------------------------------------------------------------
    @property
    def signing_key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = load_or_create_key(self.folder)
        return self._key

    # -- worker lifecycle -----------------------------------------------------------------------
    def ensure_running(self) -> None:
        """Start the worker if it is not running (it stops by itself when no hook is left)."""
        with self._cv:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="sandbox-webhooks",
                                                daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def queued(self) -> int:
        with self._cv:
            return len(self._heap) + self._busy

    def idle(self, store: Store) -> bool:
        """No pending change in the outbox and nothing queued or being sent (outbox first: a
        change leaves it only once the worker holds it as busy)."""
        if hs.pending(store):
            return False
        with self._cv:
            return not self._heap and self._busy == 0

    def _run(self) -> None:
        store = Store(self.db_path)
        client = httpx.Client(timeout=self.timeout_seconds, headers={"User-Agent": USER_AGENT})
        try:
            while True:
                try:
                    worked = self._claim(store)
                    while (d := self._next_due()) is not None:
                        try:
                            self._attempt(store, client, d)
                        finally:
                            with self._cv:
                                self._busy -= 1
                        worked = True
                except Exception:  # e.g. the world file locked for longer than busy_timeout
                    log.exception("webhook worker: round failed, retrying")
                    time.sleep(POLL_SECONDS)
                    continue
                if worked:
                    continue
                with self._cv:
                    if not self._heap and not hs.hooks(store) and not hs.pending(store):
                        self._thread = None
                        return
                    wait = POLL_SECONDS
                    if self._heap:
                        wait = min(wait, max(0.0, self._heap[0].due - time.monotonic()))
                    self._cv.wait(wait)
        finally:
            client.close()
            store.close()

    def _next_due(self) -> Delivery | None:
        with self._cv:
            if self._heap and self._heap[0].due <= time.monotonic():
                self._busy += 1
                return heapq.heappop(self._heap)
        return None

    # -- changes -> deliveries ------------------------------------------------------------------
    def _claim(self, store: Store) -> bool:
        if not hs.pending(store):
            return False
        with self._cv:
            self._busy += 1
        try:
            changes = hs.claim(store)
            if not changes:
                return False
            deliveries = self._deliveries(store, events_for(store, changes))
            with self._cv:
                for d in deliveries:
                    heapq.heappush(self._heap, d)
            return True
        finally:
            with self._cv:
                self._busy -= 1

    def _deliveries(self, store: Store, events: list[Event]) -> list[Delivery]:
        out: list[Delivery] = []
        now = time.monotonic()
        sandbox_now = iso(store.now())
        for hook in hs.hooks(store):
            if hook.source == "greenhouse" and hook.status == "Active":
                for e in events:
                    if e.source == "greenhouse":
                        body = dumps({"action": e.event, "payload": e.payload})
                        event_id = str(uuid.uuid4())
                        out.append(self._make(now, hook, e.event, event_id, body, e.ids, {
                            "Greenhouse-Event-ID": event_id,
                            "Signature": greenhouse_signature(hook.secret or "", body)}))
            elif hook.source == "highlevel" and hook.status == "Active":
                for e in events:
                    if e.source == "highlevel":
                        event_id = str(uuid.uuid4())
                        body = dumps({"type": e.event, **e.payload, "timestamp": sandbox_now,
                                      "webhookId": event_id})
                        sig = base64.b64encode(self.signing_key.sign(body)).decode()
                        out.append(self._make(now, hook, e.event, event_id, body, e.ids,
                                              {"X-GHL-Signature": sig}))
            elif hook.source == "keap" and hook.status == "Verified":
                out += self._keap(now, hook, [e for e in events if e.source == "keap"
                                              and e.event == hook.event])
        return out

    def _keap(self, now: float, hook: hs.Hook, events: list[Event]) -> list[Delivery]:
        if not events:
            return []
        base = (hook.api_base or "").rstrip("/")
        keys: list[dict[str, Any]] = []
        if events[0].object_type == "contactGroup":
            by_tag: dict[Any, dict[str, Any]] = {}
            for e in events:
                for k in e.keys:
                    merged = by_tag.setdefault(k["id"], {
                        "id": k["id"], "apiUrl": f"{base}/keap/crm/rest/v2/tags/{k['id']}",
                        "timestamp": k["timestamp"], "contact_ids": []})
                    merged["timestamp"] = max(merged["timestamp"], k["timestamp"])
                    merged["contact_ids"] += [c for c in k["contact_ids"]
                                              if c not in merged["contact_ids"]]
            keys = list(by_tag.values())
        else:
            # the record's v2 address; a note has none without its contact: empty, as in
            # Keap's own hook examples
            path = {"contact": "contacts", "task": "tasks", "opportunity": "opportunities",
                    "company": "companies"}.get(events[0].object_type)
            for e in events:
                for k in e.keys:
                    keys.append({"id": k["id"],
                                 "apiUrl": f"{base}/keap/crm/rest/v2/{path}/{k['id']}"
                                 if path else "",
                                 "timestamp": k["timestamp"]})
        out = []
        for i in range(0, len(keys), KEAP_BATCH):
            chunk = keys[i:i + KEAP_BATCH]
            body = dumps({"event_key": hook.event, "object_type": events[0].object_type,
                          "object_keys": chunk})
            ids = [str(k["id"]) for k in chunk]
            out.append(self._make(now, hook, hook.event or "", str(uuid.uuid4()), body, ids,
                                  {"X-Hook-Secret": hook.secret or ""}))
        return out

    def _make(self, now: float, hook: hs.Hook, event: str, event_id: str, body: bytes,
              ids: list[str], headers: dict[str, str]) -> Delivery:
        return Delivery(now, next(self._n), hook.source, hook.key, hook.url, event, event_id,
                        body, {"Content-Type": "application/json", **headers}, ids)

    # -- sending --------------------------------------------------------------------------------
    def _attempt(self, store: Store, client: httpx.Client, d: Delivery) -> None:
        hook = hs.get_hook(store, d.source, d.hook)
        if hook is None or hook.url != d.url or hook.status not in ("Active", "Verified"):
            why = "hook removed" if hook is None or hook.url != d.url else f"hook {hook.status}"
            self._log(d, None, f"not sent: {why}")
            return
        status: int | None = None
        error: str | None = None
        try:
            r = client.post(d.url, content=d.body, headers=d.headers,
                            timeout=self.timeout_seconds)
            status = r.status_code
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"
        ok = status is not None and (200 <= status < 400 if d.source == "keap"
                                     else 200 <= status < 300)
        if not ok and error is None:
            error = f"HTTP {status}"
        self._log(d, status, error)
        if ok:
            return
        if d.source == "keap" and status == 410:
            hs.set_status(store, "keap", d.hook, "Inactive")
            return
        if d.attempt >= MAX_ATTEMPTS[d.source]:
            if d.source == "keap":
                hs.set_status(store, "keap", d.hook, "Inactive")
            return
        delay = self.retry_delays[min(d.attempt - 1, len(self.retry_delays) - 1)]
        d.attempt += 1
        d.due = time.monotonic() + delay
        with self._cv:
            heapq.heappush(self._heap, d)

    def _log(self, d: Delivery, status: int | None, error: str | None) -> None:
        with self._cv:
            self.log_seq += 1
            self.log.append({
                "seq": self.log_seq, "source": d.source, "hook": d.hook, "url": d.url,
                "event": d.event, "event_id": d.event_id, "attempt": d.attempt,
                "status_code": status, "error": error, "ids": d.ids,
                "at": datetime.now(UTC).isoformat(timespec="milliseconds")})
            if len(self.log) > LOG_CAP:
                del self.log[: len(self.log) - LOG_CAP]

    def deliveries(self, source: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        with self._cv:
            return [e for e in self.log if e["seq"] > since
                    and (source is None or e["source"] == source)]


def dispatcher(state: SandboxState) -> Dispatcher:
    """The server's dispatcher, made on first use."""
    if getattr(state, "webhooks", None) is None:
        state.webhooks = Dispatcher(state.store.path)
    return state.webhooks


def start_if_configured(state: SandboxState) -> None:
    """At server start: resume delivering for hooks kept in the world file."""
    if hs.hooks(state.store):
        dispatcher(state).ensure_running()


def valid_url(url: Any) -> bool:
    if not isinstance(url, str):
        return False
    p = urlparse(url)
    return p.scheme in ("http", "https") and bool(p.netloc)


# -- admin endpoints ----------------------------------------------------------------------------
def admin_routes(state: SandboxState) -> list[BaseRoute]:
    store = state.store

    def bad(message: str) -> Response:
        return JSONResponse({"error": message}, status_code=400)

    async def overview(request: Request) -> Response:
        d = dispatcher(state)
        return JSONResponse({
            "hooks": [{"source": h.source, "key": h.key, "event": h.event, "url": h.url,
                       "status": h.status, "created_at": h.created_at} for h in hs.hooks(store)],
            "settings": {"retry_delays": list(d.retry_delays),
                         "timeout_seconds": d.timeout_seconds},
            "pending_changes": hs.pending(store), "queued_deliveries": d.queued()})

    async def greenhouse(request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse({"deleted": hs.delete_hook(store, "greenhouse", "default")})
        body = await request.json()
        if not valid_url(body.get("url")):
            return bad('send {"url": "http(s)://...", "secret": "..."}: url is missing or '
                       "not an http(s) URL")
        if not isinstance(body.get("secret"), str) or not body["secret"]:
            return bad('send {"url": ..., "secret": "..."}: Greenhouse signs every webhook '
                       "with the secret key set in its web UI")
        hs.put_hook(store, hs.Hook("greenhouse", "default", None, body["url"], body["secret"],
                                   "Active", None, iso(store.now())))
        dispatcher(state).ensure_running()
        return JSONResponse({"source": "greenhouse", "url": body["url"], "status": "Active"})

    async def highlevel(request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse({"deleted": hs.delete_hook(store, "highlevel", "default")})
        body = await request.json()
        if not valid_url(body.get("url")):
            return bad('send {"url": "http(s)://..."}: url is missing or not an http(s) URL')
        d = dispatcher(state)
        d.signing_key  # noqa: B018 - create the key before the first delivery needs it
        hs.put_hook(store, hs.Hook("highlevel", "default", None, body["url"], None, "Active",
                                   None, iso(store.now())))
        d.ensure_running()
        return JSONResponse({"source": "highlevel", "url": body["url"], "status": "Active"})

    async def public_key(request: Request) -> Response:
        return JSONResponse({"public_key_pem": public_key_pem(dispatcher(state).signing_key),
                             "algorithm": "ed25519"})

    async def deliveries(request: Request) -> Response:
        d = dispatcher(state)
        if request.method == "DELETE":
            with d._cv:
                d.log.clear()
            return JSONResponse({"cleared": True, "seq": d.log_seq})
        q = request.query_params
        try:
            since = int(q.get("since", 0))
        except ValueError:
            return bad("since must be a delivery seq (an integer)")
        return JSONResponse({"seq": d.log_seq, "deliveries": d.deliveries(q.get("source"),
                                                                           since)})

    async def flush(request: Request) -> Response:
        raw = await request.body()
        try:
            body = (await request.json()) if raw.strip() else {}
            timeout = float(body.get("timeout", 30))
        except (ValueError, TypeError, AttributeError):
            return bad('send {"timeout": seconds} or nothing')
        d = dispatcher(state)
        if hs.hooks(store) or hs.pending(store):
            d.ensure_running()
        deadline = time.monotonic() + timeout
        while not d.idle(store):
            if time.monotonic() >= deadline:
                return JSONResponse({"drained": False, "pending_changes": hs.pending(store),
                                     "queued_deliveries": d.queued(), "seq": d.log_seq},
                                    status_code=504)
            await asyncio.sleep(0.02)
        return JSONResponse({"drained": True, "seq": d.log_seq})

    async def settings(request: Request) -> Response:
        d = dispatcher(state)
        if request.method == "PUT":
            body = await request.json()
            if "retry_delays" in body:
                delays = body["retry_delays"]
                if (not isinstance(delays, list) or not delays
                        or not all(isinstance(x, int | float) and x >= 0 for x in delays)):
                    return bad("retry_delays must be a non-empty list of seconds >= 0")
                d.retry_delays = tuple(float(x) for x in delays)
            if "timeout_seconds" in body:
                d.timeout_seconds = float(body["timeout_seconds"])
        return JSONResponse({"retry_delays": list(d.retry_delays),
                             "timeout_seconds": d.timeout_seconds})

    return [
        Route("/webhooks", overview),
        Route("/webhooks/greenhouse", greenhouse, methods=["PUT", "DELETE"]),
        Route("/webhooks/highlevel", highlevel, methods=["PUT", "DELETE"]),
        Route("/webhooks/highlevel/public-key", public_key),
        Route("/webhooks/deliveries", deliveries, methods=["GET", "DELETE"]),
        Route("/webhooks/flush", flush, methods=["POST"]),
        Route("/webhooks/settings", settings, methods=["GET", "PUT"]),
    ]
