"""What one sandbox server shares: its world, fault and rate-limit settings, request log and
vendors. The vendors, the admin endpoints and the webhook worker take it from the server
(server.py builds it), so they import this module, never the server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from sandbox.faults import Faults
from sandbox.ratelimit import Limiter, Verdict
from sandbox.store import Store


class Vendor(Protocol):
    """What a vendor module gives the server (see greenhouse/, keap/, highlevel/ vendor.py)."""

    name: str                      # "greenhouse" | "keap" | "highlevel"
    public_paths: tuple[str, ...]  # paths below the prefix that need no auth (token endpoints)

    def routes(self) -> list[BaseRoute]: ...

    def authenticate(self, request: Request) -> tuple[str | None, Response | None]:
        """(principal, None) when the request is authorized, (None, error response) when not."""

    def limiter_for(self, principal: str) -> Limiter: ...

    def limit_headers(self, verdict: Verdict) -> dict[str, str]:
        """The vendor's rate-limit headers for a request that passed or was refused."""

    def too_many_requests(self, verdict: Verdict, retry_after: float | None) -> Response: ...

    def error(self, status: int, message: str) -> Response:
        """An error reply in the vendor's own body shape."""

    def expired_token(self) -> Response: ...


@dataclass
class RequestLog:
    """What the sandbox was asked, in order: for tests and benchmarks (no bodies, no secrets)."""

    cap: int = 2_000_000
    entries: list[dict[str, Any]] = field(default_factory=list)
    seq: int = 0

    def add(self, entry: dict[str, Any]) -> None:
        self.seq += 1
        entry["seq"] = self.seq
        self.entries.append(entry)
        if len(self.entries) > self.cap:
            del self.entries[: len(self.entries) - self.cap]

    def query(self, source: str | None = None, since: int = 0,
              method: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.entries
                if e["seq"] > since and (source is None or e["source"] == source)
                and (method is None or e["method"] == method)]

    def clear(self) -> None:
        self.entries.clear()


@dataclass
class SandboxState:
    """Shared by the gate, the vendors and the admin endpoints of one server."""

    store: Store
    faults: Faults
    log: RequestLog
    rate_limits: bool = True
    token_ttl_seconds: float = 3600.0
    vendors: dict[str, Vendor] = field(default_factory=dict)
    webhooks: Any = None  # webhooks.Dispatcher, made on first use
