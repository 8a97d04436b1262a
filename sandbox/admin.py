"""`/_sandbox/` admin endpoints: what tests, benchmarks and curious users ask the sandbox.

GET    /_sandbox/health                    {"ok": true, "now", "world", "code", "pid"}
GET    /_sandbox/state                     clock + record counts per source and entity
GET    /_sandbox/clock                     {"now": ...}
POST   /_sandbox/clock                     {"now": ISO} or {"advance_seconds": N}
POST   /_sandbox/tick                      {"days": N}: play N days of recruiting life
GET    /_sandbox/requests?source=&since=&method=   the request log
DELETE /_sandbox/requests                  empty the request log
GET    /_sandbox/faults                    fault rates and queues per source
PUT    /_sandbox/faults                    {"source": S, "rates": {...}, "retry_after": s,
                                            "slow_seconds": s}; {"clear": true} removes all
POST   /_sandbox/faults/queue              {"source": S, "faults": [KIND, ...]}
GET    /_sandbox/ratelimits                {"enabled": bool}
PUT    /_sandbox/ratelimits                {"enabled": bool}
POST   /_sandbox/tokens/expire             expire every access token now
POST   /_sandbox/reset                     clear faults, request log and rate-limit windows
GET    /_sandbox/records/{source}/{entity} every live record (JSON lines): the test oracle
GET    /_sandbox/tombstones/{source}/{entity}  deleted / merged ids with times
POST   /_sandbox/keap/contacts/{id}/email_status  {"status": S, "field": "EMAIL1"}: what the
                                           person does in Keap that no API call can (clicks
                                           unsubscribe: LIST_UNSUBSCRIBE, ...); moves update_time
/_sandbox/webhooks...                      outbound webhooks: Greenhouse / HighLevel config,
                                           HighLevel public key, delivery log, flush
                                           (see webhooks/delivery.py; Keap hooks: keap/hooks.py)
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from sandbox import records as world_records
from sandbox.faults import FaultSpecError
from sandbox.state import SandboxState
from sandbox.store import iso, parse_ts
from sandbox.version import code_version
from sandbox.webhooks import delivery as webhooks


def routes(state: SandboxState) -> list[BaseRoute]:
    store = state.store

    async def health(request: Request) -> Response:
        # which world and which code answer here: the product restarts a stale sandbox
        return JSONResponse({"ok": True, "now": iso(store.now()), "world": str(store.path),
                             "code": code_version(), "pid": os.getpid()})

    async def world_state(request: Request) -> Response:
        return JSONResponse({
            "now": iso(store.now()),
            "seed": store.get_meta("seed"),
            "counts": store.counts(),
            "requests": state.log.seq,
            "rate_limits": state.rate_limits,
        })

    async def clock(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            if "now" in body:
                store.set_now(parse_ts(body["now"]))
            elif "advance_seconds" in body:
                store.set_now(store.now() + timedelta(seconds=float(body["advance_seconds"])))
            else:
                return _bad('send {"now": ISO-8601} or {"advance_seconds": N}')
        return JSONResponse({"now": iso(store.now())})

    async def tick(request: Request) -> Response:
        from sandbox.world.life import tick as play

        body = await request.json()
        days = int(body.get("days", 1))
        if days < 1:
            return _bad("days must be at least 1")
        summary = play(store, days=days)
        return JSONResponse({"now": iso(store.now()), "summary": summary})

    async def requests_(request: Request) -> Response:
        if request.method == "DELETE":
            state.log.clear()
            return JSONResponse({"cleared": True, "seq": state.log.seq})
        q = request.query_params
        entries = state.log.query(q.get("source"), int(q.get("since", 0)), q.get("method"))
        return JSONResponse({"seq": state.log.seq, "requests": entries})

    async def faults(request: Request) -> Response:
        if request.method == "PUT":
            body = await request.json()
            try:
                if body.get("clear"):
                    state.faults.clear()
                else:
                    state.faults.set(body.get("source", "*"), body.get("rates"),
                                     retry_after=body.get("retry_after"),
                                     slow_seconds=body.get("slow_seconds"))
            except FaultSpecError as e:
                return _bad(str(e))
        return JSONResponse(state.faults.to_dict())

    async def fault_queue(request: Request) -> Response:
        body = await request.json()
        try:
            state.faults.enqueue(body.get("source", "*"), list(body.get("faults", [])))
        except FaultSpecError as e:
            return _bad(str(e))
        return JSONResponse(state.faults.to_dict())

    async def ratelimits(request: Request) -> Response:
        if request.method == "PUT":
            body = await request.json()
            state.rate_limits = bool(body.get("enabled", True))
            for vendor in state.vendors.values():
                reset = getattr(vendor, "reset_limits", None)
                if reset:
                    reset()
        return JSONResponse({"enabled": state.rate_limits})

    async def expire_tokens(request: Request) -> Response:
        """Expire every access token now (refresh tokens stay valid): clients must re-auth."""
        with store.transaction():
            n = store.conn.execute(
                "UPDATE tokens SET expires_at = 0 WHERE kind = 'access'").rowcount
        return JSONResponse({"expired": n})

    async def reset(request: Request) -> Response:
        """Forget faults, the request log and rate-limit windows (the world stays)."""
        state.faults.clear()
        state.log.clear()
        for vendor in state.vendors.values():
            reset_limits = getattr(vendor, "reset_limits", None)
            if reset_limits:
                reset_limits()
        return JSONResponse({"reset": True})

    async def records(request: Request) -> Response:
        source, entity = request.path_params["source"], request.path_params["entity"]

        async def lines():
            # async, so the store is read on the event-loop thread like everywhere else
            cur = store.conn.execute(
                "SELECT doc FROM records WHERE source = ? AND entity = ? ORDER BY seq, id",
                (source, entity),
            )
            while batch := cur.fetchmany(1000):
                yield "".join(r[0] + "\n" for r in batch)

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def tombstones(request: Request) -> Response:
        return JSONResponse(store.tombstones(request.path_params["source"],
                                             request.path_params["entity"]))

    async def email_status(request: Request) -> Response:
        body = await request.json()
        status, slot = body.get("status"), body.get("field", "EMAIL1")
        with store.transaction():
            doc = store.get("keap", "contacts", request.path_params["id"])
            if doc is None:
                return JSONResponse({"error": "no such Keap contact"}, status_code=404)
            hit = [e for e in doc.get("email_addresses") or [] if e.get("field") == slot]
            if not hit or not isinstance(status, str):
                return _bad(f"the contact has no {slot} address, or no status was given")
            hit[0]["email_opt_status"] = status
            hit[0]["is_opt_in"] = status in ("SINGLE_OPT_IN", "DOUBLE_OPT_IN", "CONFIRMED")
            doc["update_time"] = iso(store.stamp())
            world_records.save(store, "keap", "contacts", doc)
        return JSONResponse(doc)

    return [
        Route("/health", health),
        Route("/state", world_state),
        Route("/clock", clock, methods=["GET", "POST"]),
        Route("/tick", tick, methods=["POST"]),
        Route("/requests", requests_, methods=["GET", "DELETE"]),
        Route("/faults", faults, methods=["GET", "PUT"]),
        Route("/faults/queue", fault_queue, methods=["POST"]),
        Route("/ratelimits", ratelimits, methods=["GET", "PUT"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/tokens/expire", expire_tokens, methods=["POST"]),
        Route("/records/{source}/{entity}", records),
        Route("/tombstones/{source}/{entity}", tombstones),
        Route("/keap/contacts/{id}/email_status", email_status, methods=["POST"]),
        *webhooks.admin_routes(state),
    ]


def _bad(message: str) -> Response:
    body: dict[str, Any] = {"error": message}
    return JSONResponse(body, status_code=400)
