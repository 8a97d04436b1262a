"""The webhook receiver: one Starlette app, a route per vendor, ids into the inbox.

    POST /webhooks/greenhouse   Signature: sha256 <hex> (HMAC-SHA256, GREENHOUSE_WEBHOOK_SECRET)
    POST /webhooks/keap         X-Hook-Secret (verification handshake, then on every delivery)
    POST /webhooks/highlevel    X-GHL-Signature (Ed25519; HIGHLEVEL_WEBHOOK_PUBLIC_KEY, or the
                                sandbox's key when HIGHLEVEL_BASE_URL is unset)
    GET  /health

Replies: 200 `{"status": "stored", "rows": n}`; 200 `{"status": "duplicate"}` for an event
already stored (a vendor resending after a lost reply must stop; nothing is stored twice; a
Greenhouse event is known by a digest of its signed body, not by its unsigned event-id header);
401 bad or missing signature (nothing stored); 400 unreadable body, nested deeper than
MAX_DEPTH, or an id outside the vendor's format (the field is named); 409 a HighLevel event
older (or newer) than the 5-minute window, or a Greenhouse body whose own times are older than
GREENHOUSE_MAX_AGE: a replay, or so late that a resend would be later still; 413 body over the
size limit; 503 the receiver is not configured for that vendor (vendors retry, so nothing is
lost once it is). Logs carry event ids and counts, never payload values.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from orchestration.config import data_root, sandbox_url
from orchestration.webhooks import hook_secrets
from orchestration.webhooks.events import (
    Event,
    PayloadError,
    event_id_problem,
    greenhouse_event_id,
    greenhouse_event_time,
    greenhouse_events,
    highlevel_events,
    keap_events,
)
from orchestration.webhooks.inbox import GREENHOUSE_DEDUP_DAYS, Inbox
from orchestration.webhooks.signatures import (
    SignatureError,
    check_greenhouse,
    check_highlevel,
    check_keap,
    load_ed25519_public_key,
)
from sandbox.process import clock

log = logging.getLogger("talentvault.webhooks")
T = TypeVar("T")

MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_AGE = timedelta(minutes=5)
# A Greenhouse body whose change time (events.GREENHOUSE_EVENT_TIME) is older than this is
# refused; its digest is remembered one day longer (inbox.GREENHOUSE_DEDUP_DAYS), so any replay
# is a duplicate or stale. Greenhouse retries for ~15 h, so a genuine delivery is younger.
GREENHOUSE_MAX_AGE = timedelta(days=GREENHOUSE_DEDUP_DAYS - 1)
GREENHOUSE_MAX_AHEAD = timedelta(hours=1)     # clock skew; a later stamp is not Greenhouse's
# vendor payloads nest fewer than 10 levels; deeper is not a vendor's body (and 100,000 levels
# would exhaust the parser's recursion)
MAX_DEPTH = 64


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def wall_clock() -> datetime:
    return datetime.now(UTC)


def sandbox_clock(base_url: str) -> Callable[[], datetime]:
    """The sandbox's simulated clock (its payload timestamps use it), read on every call: it
    jumps by whole days on a tick, so a cached reading could call a fresh event stale."""

    def now() -> datetime:
        return clock(base_url)

    return now


@dataclass
class Settings:
    """What the receiver needs; `from_env` reads it the way production does."""

    root: Path
    greenhouse_secret: str | None = None
    highlevel_key: Callable[[], Ed25519PublicKey] | None = None
    clock: Callable[[], datetime] = wall_clock
    max_age: timedelta = MAX_AGE
    max_body: int = MAX_BODY_BYTES
    greenhouse_clock: Callable[[], datetime] | None = None     # None: `clock`
    greenhouse_max_age: timedelta = GREENHOUSE_MAX_AGE

    @classmethod
    def from_env(cls, root: Path | None = None) -> Settings:
        sandbox = not os.environ.get("HIGHLEVEL_BASE_URL")
        pem = os.environ.get("HIGHLEVEL_WEBHOOK_PUBLIC_KEY")
        key: Callable[[], Ed25519PublicKey] | None = None
        if pem:
            loaded = load_ed25519_public_key(pem)
            key = lambda: loaded  # noqa: E731
        elif sandbox:
            key = _sandbox_public_key(sandbox_url())
        gh_sandbox = not os.environ.get("GREENHOUSE_BASE_URL")
        return cls(root=Path(root or data_root()),
                   greenhouse_secret=os.environ.get("GREENHOUSE_WEBHOOK_SECRET") or None,
                   highlevel_key=key,
                   clock=sandbox_clock(sandbox_url()) if sandbox else wall_clock,
                   greenhouse_clock=sandbox_clock(sandbox_url()) if gh_sandbox
                   else wall_clock)


def _sandbox_public_key(base_url: str) -> Callable[[], Ed25519PublicKey]:
    lock = threading.Lock()
    cache: list[Ed25519PublicKey] = []

    def key() -> Ed25519PublicKey:
        with lock:
            if not cache:
                r = httpx.get(f"{base_url}/_sandbox/webhooks/highlevel/public-key", timeout=10)
                r.raise_for_status()
                cache.append(load_ed25519_public_key(r.json()["public_key_pem"]))
            return cache[0]

    return key


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"body of {declared} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(body: bytes, source: str) -> dict[str, Any]:
    too_deep = Refused(400, f"{source}: body is nested more than {MAX_DEPTH} levels deep; "
                       "vendor bodies nest fewer than 10")
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise Refused(400, f"{source}: body is not JSON ({e.__class__.__name__} at "
                      f"position {getattr(e, 'pos', '?')})") from e
    except RecursionError:      # the parser recurses once per level
        raise too_deep from None
    except ValueError as e:     # an integer of over 4,300 digits
        raise Refused(400, f"{source}: body is not usable JSON ({str(e)[:100]})") from e
    if not isinstance(parsed, dict):
        raise Refused(400, f"{source}: body is not a JSON object")
    if _depth_over(parsed, MAX_DEPTH):
        raise too_deep
    return parsed


def _depth_over(doc: Any, limit: int) -> bool:
    """Whether objects and lists nest more than `limit` levels (without recursing)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack += [(c, depth + 1) for c in children if isinstance(c, dict | list)]
    return False


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    inbox = Inbox(settings.root)
    inbox.compact()     # days a previous run of the receiver left open

    async def store(source: str, events: list[Event], label: str) -> Response:
        result = await run_in_threadpool(inbox.append, events)
        if result.new_events == 0 and events:
            log.info("%s %s: duplicate of %d stored event(s), ignored", source, label,
                     result.duplicate_events)
            return JSONResponse({"status": "duplicate"})
        log.info("%s %s: stored %d row(s) of %d event(s), %d duplicate(s)", source, label,
                 result.stored_rows, result.new_events, result.duplicate_events)
        return JSONResponse({"status": "stored", "rows": result.stored_rows,
                             "duplicates": result.duplicate_events})

    async def fresh(source: str, label: str, stamp: datetime, clock: Callable[[], datetime],
                    max_age: timedelta, max_ahead: timedelta, what: str) -> None:
        """Refuses (409) a body whose time is older than `max_age` or later than `max_ahead`:
        a replay, or so late that a resend would be later still."""
        try:
            now = await run_in_threadpool(clock)
        except httpx.HTTPError as e:
            raise Refused(503, f"{source}: cannot read the sandbox clock: {e}") from e
        age = now - stamp
        if age > max_age or -age > max_ahead:
            when, limit = ("old", max_age) if age > timedelta() else ("in the future", max_ahead)
            raise Refused(409, f"{source}: {label} {what} is {abs(age.total_seconds()):.0f} s "
                          f"{when}; at most {limit.total_seconds():.0f} s is accepted (replay "
                          "protection)")

    async def greenhouse(request: Request) -> Response:
        body = await _body(request, settings.max_body)
        if not settings.greenhouse_secret:
            raise Refused(503, "greenhouse webhooks are not configured here: set "
                          "GREENHOUSE_WEBHOOK_SECRET to the web hook's secret key")
        _signed(check_greenhouse, settings.greenhouse_secret, body,
                request.headers.get("signature"))
        header_id = (request.headers.get("greenhouse-event-id") or "").strip()
        if not header_id:
            raise Refused(400, "greenhouse: missing Greenhouse-Event-ID header")
        if problem := event_id_problem(header_id):
            raise Refused(400, f"greenhouse: the Greenhouse-Event-ID header is {problem}")
        # the header is not signed: the event is known by its signed body
        event_id = greenhouse_event_id(body)
        parsed = _json(body, "greenhouse")
        events = _parsed(greenhouse_events, event_id, parsed)
        if not events:
            return JSONResponse({"status": "ignored", "reason": "ping"})
        label = f"{events[0].event_type} {header_id} ({event_id})"
        if inbox.seen("greenhouse", event_id):
            log.info("greenhouse %s: a copy of a stored event, ignored", label)
            return JSONResponse({"status": "duplicate"})
        stamp = _parsed(greenhouse_event_time, parsed)
        if stamp is not None:
            await fresh("greenhouse", label, stamp, settings.greenhouse_clock or settings.clock,
                        settings.greenhouse_max_age, GREENHOUSE_MAX_AHEAD, "change time")
        return await store("greenhouse", events, label)

    async def keap(request: Request) -> Response:
        body = await _body(request, settings.max_body)
        secret = (request.headers.get("x-hook-secret") or "").strip()
        parsed = _json(body, "keap") if body.strip() else {}
        if not parsed.get("object_keys"):
            return await _keap_verification(settings.root, secret)
        known = await run_in_threadpool(hook_secrets.known_secrets, settings.root)
        _signed(check_keap, known, secret)
        events = _parsed(keap_events, parsed)
        return await store("keap", events, f"{parsed.get('event_key')} x{len(events)}")

    async def highlevel(request: Request) -> Response:
        body = await _body(request, settings.max_body)
        if settings.highlevel_key is None:
            raise Refused(503, "highlevel webhooks are not configured here: set "
                          "HIGHLEVEL_WEBHOOK_PUBLIC_KEY (PEM of HighLevel's Ed25519 key)")
        try:
            key = await run_in_threadpool(settings.highlevel_key)
        except (httpx.HTTPError, KeyError, ValueError) as e:
            raise Refused(503, f"highlevel: cannot load the webhook public key: {e}") from e
        _signed(check_highlevel, key, body, request.headers.get("x-ghl-signature"))
        events = _parsed(highlevel_events, _json(body, "highlevel"))
        stamp = events[0].vendor_timestamp
        if stamp is None:
            raise Refused(400, "highlevel: body has no 'timestamp'")
        if inbox.seen("highlevel", events[0].event_id):
            return JSONResponse({"status": "duplicate"})
        await fresh("highlevel", f"event {events[0].event_id}", stamp, settings.clock,
                    settings.max_age, settings.max_age, "timestamp")
        return await store("highlevel", events, f"{events[0].event_type} {events[0].event_id}")

    async def health(request: Request) -> Response:
        return JSONResponse({
            "ok": True,
            "greenhouse": bool(settings.greenhouse_secret),
            "highlevel": settings.highlevel_key is not None,
            "keap_verified_secrets": len(hook_secrets.known_secrets(settings.root)),
        })

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        source = request.url.path.rsplit("/", 1)[-1]
        log.warning("%s: refused with %d: %s", source, exc.status, exc)
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    return Starlette(routes=[
        Route("/webhooks/greenhouse", greenhouse, methods=["POST"]),
        Route("/webhooks/keap", keap, methods=["POST"]),
        Route("/webhooks/highlevel", highlevel, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ], exception_handlers={Refused: refused})


def _signed(check: Callable[..., None], *args: Any) -> None:
    try:
        check(*args)
    except SignatureError as e:
        raise Refused(401, str(e)) from e


def _parsed(parse: Callable[..., T], *args: Any) -> T:
    try:
        return parse(*args)
    except PayloadError as e:
        raise Refused(400, str(e)) from e


async def _keap_verification(root: Path, secret: str) -> Response:
    """Keap's handshake: answer 200 echoing X-Hook-Secret, learning the secret only while a
    registration window is open (see hook_secrets)."""
    if not secret:
        raise Refused(400, "keap: a request without object_keys is a verification and needs "
                      "an X-Hook-Secret header")
    known = await run_in_threadpool(hook_secrets.known_secrets, root)
    try:
        check_keap(known, secret)
    except SignatureError:
        if not await run_in_threadpool(hook_secrets.window_open, root):
            raise Refused(401, "keap: unexpected hook verification (no registration in "
                          "progress): run `talentvault webhooks register --source keap "
                          "--url URL` against this data root") from None
        await run_in_threadpool(hook_secrets.learn_secret, root, secret)
        log.info("keap: hook verification answered, new secret kept")
    return Response(status_code=200, headers={"X-Hook-Secret": secret})
