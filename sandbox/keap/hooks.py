"""Keap REST hooks (the v1 API still owns them), mounted at `/keap/crm/rest/v1/hooks`.

    GET    /crm/rest/v1/hooks/event_keys          the event keys the sandbox emits
    GET    /crm/rest/v1/hooks                     every subscription (RestHook)
    POST   /crm/rest/v1/hooks                     {"eventKey", "hookUrl"}: create, then verify
    GET    /crm/rest/v1/hooks/{key}
    PUT    /crm/rest/v1/hooks/{key}               {"eventKey", "hookUrl"}: change, then verify
    DELETE /crm/rest/v1/hooks/{key}               204
    POST   /crm/rest/v1/hooks/{key}/verify        Immediate Confirmation (again)
    POST   /crm/rest/v1/hooks/{key}/delayedVerify header X-Hook-Secret: Delayed Confirmation

Verification (RESTHooks.org Immediate Confirmation, as Keap documents it): the sandbox POSTs to
hookUrl `{"event_key": K, "object_type": T, "object_keys": []}` with header `X-Hook-Secret`; a
200 reply echoing the same header makes the hook `Verified`, anything else leaves it
`Unverified` (an `Inactive` hook stays `Inactive`). The secret is made once per hook and sent
again with every delivery. Only Verified hooks receive events; a 410 reply or a fourth failed
attempt makes a hook `Inactive` until verified again (webhooks/delivery.py).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.state import SandboxState
from sandbox.store import iso
from sandbox.webhooks import delivery as webhooks
from sandbox.webhooks import store as hs

PREFIX = "/crm/rest/v1/hooks"  # real: https://api.infusionsoft.com/crm/rest/v1/hooks
EVENT_KEYS = ("contact.add", "contact.delete", "contact.edit", "contactGroup.applied",
              "contactGroup.removed", "note.add", "note.delete", "note.edit", "task.add",
              "task.delete", "task.edit", "opportunity.add", "opportunity.delete",
              "opportunity.edit", "company.add", "company.delete", "company.edit")
VERIFY_TIMEOUT_SECONDS = 10.0


def _error(status: int, message: str) -> Response:
    return JSONResponse({"message": message}, status_code=status)


def _resthook(h: hs.Hook) -> dict[str, Any]:
    return {"eventKey": h.event, "hookUrl": h.url, "key": h.key, "status": h.status}


class KeapHooks:
    def __init__(self, state: SandboxState):
        self.state = state
        self.store = state.store

    def routes(self) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/event_keys", self.event_keys, methods=["GET"]),
            Route(PREFIX, self.list_hooks, methods=["GET"]),
            Route(PREFIX, self.create, methods=["POST"]),
            Route(f"{PREFIX}/{{key}}", self.get, methods=["GET"]),
            Route(f"{PREFIX}/{{key}}", self.update, methods=["PUT"]),
            Route(f"{PREFIX}/{{key}}", self.delete, methods=["DELETE"]),
            Route(f"{PREFIX}/{{key}}/verify", self.verify, methods=["POST"]),
            Route(f"{PREFIX}/{{key}}/delayedVerify", self.delayed_verify, methods=["POST"]),
        ]

    async def event_keys(self, request: Request) -> Response:
        return JSONResponse(list(EVENT_KEYS))

    async def list_hooks(self, request: Request) -> Response:
        return JSONResponse([_resthook(h) for h in hs.hooks(self.store, "keap")])

    async def get(self, request: Request) -> Response:
        hook = self._hook(request)
        return JSONResponse(_resthook(hook)) if hook else self._not_found(request)

    async def create(self, request: Request) -> Response:
        body, problem = await self._body(request)
        if problem:
            return problem
        base = str(request.url.replace(path="", query="")).rstrip("/")
        hook = hs.Hook("keap", hs.new_key(), body["eventKey"], body["hookUrl"],
                       secrets.token_hex(32), "Unverified", base, iso(self.store.now()))
        hs.put_hook(self.store, hook)
        return JSONResponse(_resthook(await self._handshake(hook)))

    async def update(self, request: Request) -> Response:
        hook = self._hook(request)
        if hook is None:
            return self._not_found(request)
        body, problem = await self._body(request)
        if problem:
            return problem
        hook = hs.Hook("keap", hook.key, body["eventKey"], body["hookUrl"], hook.secret,
                       "Unverified", hook.api_base, hook.created_at)
        hs.put_hook(self.store, hook)
        return JSONResponse(_resthook(await self._handshake(hook)))

    async def delete(self, request: Request) -> Response:
        if not hs.delete_hook(self.store, "keap", request.path_params["key"]):
            return self._not_found(request)
        return Response(status_code=204)

    async def verify(self, request: Request) -> Response:
        hook = self._hook(request)
        if hook is None:
            return self._not_found(request)
        return JSONResponse(_resthook(await self._handshake(hook)))

    async def delayed_verify(self, request: Request) -> Response:
        hook = self._hook(request)
        if hook is None:
            return self._not_found(request)
        sent = request.headers.get("x-hook-secret")
        if not sent:
            return _error(400, "X-Hook-Secret header is required: send the secret the "
                               "verification request carried")
        if not hmac.compare_digest(sent, hook.secret or ""):
            return _error(400, f"X-Hook-Secret does not match the secret of hook {hook.key}")
        hs.set_status(self.store, "keap", hook.key, "Verified")
        webhooks.dispatcher(self.state).ensure_running()
        return JSONResponse(_resthook(hs.get_hook(self.store, "keap", hook.key) or hook))

    # -- helpers --------------------------------------------------------------------------------
    def _hook(self, request: Request) -> hs.Hook | None:
        return hs.get_hook(self.store, "keap", request.path_params["key"])

    def _not_found(self, request: Request) -> Response:
        return _error(404, f"hook subscription {request.path_params['key']} not found")

    async def _body(self, request: Request) -> tuple[dict[str, Any], Response | None]:
        try:
            body = await request.json()
        except ValueError:
            return {}, _error(400, "request body must be JSON: {\"eventKey\", \"hookUrl\"}")
        if not isinstance(body, dict):
            return {}, _error(400, "request body must be a JSON object {eventKey, hookUrl}")
        if body.get("eventKey") not in EVENT_KEYS:
            return body, _error(400, f"eventKey {body.get('eventKey')!r} is not one of "
                                     f"GET {PREFIX}/event_keys: {', '.join(EVENT_KEYS)}")
        if not webhooks.valid_url(body.get("hookUrl")):
            return body, _error(400, "hookUrl must be an http(s) URL")
        return body, None

    async def _handshake(self, hook: hs.Hook) -> hs.Hook:
        """Immediate Confirmation: POST the secret, expect a 200 echoing it."""
        object_type = (hook.event or "contact").split(".")[0]
        ok = False
        try:
            async with httpx.AsyncClient(timeout=VERIFY_TIMEOUT_SECONDS) as client:
                r = await client.post(
                    hook.url, json={"event_key": hook.event, "object_type": object_type,
                                    "object_keys": []},
                    headers={"X-Hook-Secret": hook.secret or "",
                             "User-Agent": webhooks.USER_AGENT})
            ok = r.status_code == 200 and hmac.compare_digest(
                r.headers.get("x-hook-secret", ""), hook.secret or "")
        except httpx.HTTPError:
            ok = False
        status = "Verified" if ok else ("Inactive" if hook.status == "Inactive"
                                        else "Unverified")
        hs.set_status(self.store, "keap", hook.key, status)
        if ok:
            webhooks.dispatcher(self.state).ensure_running()
        return hs.get_hook(self.store, "keap", hook.key) or hook
