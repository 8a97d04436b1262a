"""The sandbox server: the three emulated vendor APIs and the admin API on one port.

    <base>/greenhouse/...   Greenhouse Harvest v3 (token at <base>/greenhouse/auth/token)
    <base>/keap/...         Keap REST (v2 under /keap/crm/rest/v2, token at /keap/token)
    <base>/highlevel/...    HighLevel (LeadConnector) API v2
    <base>/_files/...       Greenhouse attachment downloads (greenhouse/files.py)
    <base>/_sandbox/...     admin: state counts, clock, request log, faults, rate limits,
                            outbound webhooks (webhooks/delivery.py: a delivery thread with its own
                            SQLite connection, started only while a hook is configured)

Every vendor request passes one gate (`VendorGate`): request log, fault roll, the vendor's own
authentication and rate limit, then the vendor handler. Handlers are `async def` and use the
one `Store` on the event-loop thread, so SQLite is never touched from two threads at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox import admin
from sandbox.faults import Faults, parse_spec
from sandbox.greenhouse import files
from sandbox.greenhouse import vendor as greenhouse
from sandbox.highlevel import vendor as highlevel
from sandbox.keap import vendor as keap
from sandbox.ratelimit import Verdict
from sandbox.state import RequestLog, SandboxState, Vendor
from sandbox.store import Store
from sandbox.webhooks import delivery


class VendorGate:
    """Pure ASGI wrapper around one vendor's routes (see module docstring)."""

    def __init__(self, app: ASGIApp, vendor: Vendor, state: SandboxState):
        self.app = app
        self.vendor = vendor
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        vendor, state = self.vendor, self.state
        path = scope["path"]
        sub = path[len(scope.get("root_path", "")):] if scope.get("root_path") else path
        entry: dict[str, Any] = {
            "t": time.time(), "source": vendor.name, "method": scope["method"],
            "path": path, "query": scope.get("query_string", b"").decode("latin-1"),
            "status": None, "fault": None,
        }
        state.log.add(entry)
        request = Request(scope, receive)

        fault = state.faults.roll(vendor.name)
        entry["fault"] = fault
        params = state.faults.params(vendor.name)
        if fault in ("500", "503"):
            await self._reply(vendor.error(int(fault), "sandbox injected server error"),
                              entry, scope, receive, send)
            return
        if fault == "502":
            await self._reply(PlainTextResponse("<html><body>502 Bad Gateway</body></html>",
                                                status_code=502), entry, scope, receive, send)
            return
        if fault and fault.startswith("429"):
            retry_after = {"429": params.retry_after, "429_retry_after_zero": 0.0}.get(fault)
            first = vendor.limiter_for("fault").windows or vendor.limiter_for("fault").daily
            verdict = Verdict(False, first[0], 0, params.retry_after, first[0].limit)
            await self._reply(vendor.too_many_requests(verdict, retry_after),
                              entry, scope, receive, send)
            return
        if fault == "slow":
            await asyncio.sleep(params.slow_seconds)

        is_public = any(sub.endswith(p) for p in vendor.public_paths)
        headers: dict[str, str] = {}
        if not is_public:
            if fault == "expired_token":
                await self._reply(vendor.expired_token(), entry, scope, receive, send)
                return
            principal, denied = vendor.authenticate(request)
            if denied is not None:
                await self._reply(denied, entry, scope, receive, send)
                return
            assert principal is not None
            scope.setdefault("state", {})["principal"] = principal
            limiter = vendor.limiter_for(principal)
            limiter.enabled = state.rate_limits
            verdict = limiter.hit(principal)
            if state.rate_limits:
                headers = vendor.limit_headers(verdict)
            if not verdict.allowed:
                await self._reply(vendor.too_many_requests(verdict, verdict.reset_seconds),
                                  entry, scope, receive, send)
                return

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                if headers:
                    message["headers"] = list(message.get("headers", [])) + [
                        (k.lower().encode(), str(v).encode()) for k, v in headers.items()]
            await send(message)

        if fault == "malformed":
            await self._malformed(scope, receive, send, entry, headers)
        elif fault == "drop":
            await self._drop(scope, receive, send, entry)
        else:
            await self.app(scope, receive, send_wrapped)

    async def _reply(self, response: Response, entry: dict[str, Any], scope: Scope,
                     receive: Receive, send: Send) -> None:
        entry["status"] = response.status_code
        await response(scope, receive, send)

    async def _capture(self, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
        start: Message = {}
        chunks: list[bytes] = []

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, collect)
        return start, b"".join(chunks)

    async def _malformed(self, scope: Scope, receive: Receive, send: Send,
                         entry: dict[str, Any], headers: dict[str, str]) -> None:
        start, body = await self._capture(scope, receive)
        cut = body[: max(1, len(body) // 2)] if body else b'{"data": ['
        entry["status"] = start.get("status", 200)
        hdrs = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        hdrs += [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]
        hdrs.append((b"content-length", str(len(cut)).encode()))
        await send({"type": "http.response.start", "status": entry["status"], "headers": hdrs})
        await send({"type": "http.response.body", "body": cut})

    async def _drop(self, scope: Scope, receive: Receive, send: Send,
                    entry: dict[str, Any]) -> None:
        # Announce the full length, send a part, then stop: the server closes the connection
        # and the client sees a reply cut off mid-way, like a dropped connection.
        start, body = await self._capture(scope, receive)
        entry["status"] = 0
        hdrs = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        hdrs.append((b"content-length", str(len(body) + 1024).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200),
                    "headers": hdrs})
        await send({"type": "http.response.body", "body": body[: len(body) // 3],
                    "more_body": True})
        raise ConnectionAbortedError("sandbox injected dropped connection")


def json_error(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def create_app(data_dir: Path | str, *, faults: str | None = None, rate_limits: bool = True,
               token_ttl_seconds: float = 3600.0, fault_seed: int = 0) -> Starlette:
    """Build the ASGI app over the world in `data_dir` (created empty if missing)."""
    store = Store(Path(data_dir))
    state = SandboxState(store=store, faults=Faults(fault_seed), log=RequestLog(),
                         rate_limits=rate_limits, token_ttl_seconds=token_ttl_seconds)
    for source, rates in parse_spec(faults or "").items():
        state.faults.set(source, rates)

    routes: list[BaseRoute] = [
        Mount("/_sandbox", routes=admin.routes(state) + files.admin_routes(state)),
        # attachment downloads: pre-signed links, outside the vendor's token gate
        Mount("/_files", routes=files.routes(state)),
    ]
    for create in (greenhouse.create, keap.create, highlevel.create):
        vendor = create(state)
        state.vendors[vendor.name] = vendor
        inner = Starlette(routes=vendor.routes(), exception_handlers=_handlers(vendor))
        routes.append(Mount(f"/{vendor.name}", app=VendorGate(inner, vendor, state)))
    app = Starlette(routes=routes)
    app.state.sandbox = state
    delivery.start_if_configured(state)
    return app


def _handlers(vendor: Vendor) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    from starlette.exceptions import HTTPException

    async def http_exc(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return vendor.error(exc.status_code, str(exc.detail))

    async def bad_json(request: Request, exc: Exception) -> Response:
        return vendor.error(400, f"request body is not valid JSON: {exc}")

    return {HTTPException: http_exc, json.JSONDecodeError: bad_json}
