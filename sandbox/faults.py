"""Fault injection: the ways real vendor APIs misbehave, at configurable rates.

A fault is rolled per request before the vendor handler runs. Rates are per API (`greenhouse`,
`keap`, `highlevel`, or `*` for all), set at start (`--faults` / `TALENTVAULT_SANDBOX_FAULTS`) or at
runtime through `PUT /_sandbox/faults`. A queue of forced faults makes tests deterministic:
`POST /_sandbox/faults/queue {"source": "keap", "faults": ["503", "drop"]}` makes the next two Keap
requests fail that way, in order.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# kind -> what the client sees
KINDS = {
    "429": "HTTP 429 with Retry-After (seconds from retry_after)",
    "429_no_retry_after": "HTTP 429 without a Retry-After header",
    "429_retry_after_zero": "HTTP 429 with Retry-After: 0",
    "500": "HTTP 500 with the vendor's error body",
    "502": "HTTP 502 (gateway) with a plain-text body",
    "503": "HTTP 503 with the vendor's error body",
    "slow": "the reply is delayed slow_seconds (beyond a client's timeout)",
    "drop": "the connection is closed part-way through the reply",
    "malformed": "HTTP 200 whose JSON body is cut short",
    "expired_token": "HTTP 401 as the vendor answers an expired access token",
}


class FaultSpecError(ValueError):
    pass


@dataclass
class SourceFaults:
    rates: dict[str, float] = field(default_factory=dict)
    queue: deque[str] = field(default_factory=deque)
    retry_after: float = 1.0
    slow_seconds: float = 5.0

    def to_dict(self) -> dict[str, Any]:
        return {"rates": dict(self.rates), "queue": list(self.queue),
                "retry_after": self.retry_after, "slow_seconds": self.slow_seconds}


class Faults:
    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)
        self.by_source: dict[str, SourceFaults] = {}

    def _get(self, source: str) -> SourceFaults:
        return self.by_source.setdefault(source, SourceFaults())

    def set(self, source: str, rates: dict[str, float] | None = None, *,
            retry_after: float | None = None, slow_seconds: float | None = None) -> None:
        for kind, rate in (rates or {}).items():
            if kind not in KINDS:
                raise FaultSpecError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
            if not 0.0 <= float(rate) <= 1.0:
                raise FaultSpecError(f"fault rate for {kind!r} must be between 0 and 1, got {rate}")
        sf = self._get(source)
        if rates is not None:
            sf.rates = {k: float(v) for k, v in rates.items() if float(v) > 0}
        if retry_after is not None:
            sf.retry_after = float(retry_after)
        if slow_seconds is not None:
            sf.slow_seconds = float(slow_seconds)

    def enqueue(self, source: str, kinds: list[str]) -> None:
        for kind in kinds:
            if kind not in KINDS:
                raise FaultSpecError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
        self._get(source).queue.extend(kinds)

    def clear(self) -> None:
        self.by_source.clear()

    def params(self, source: str) -> SourceFaults:
        own = self.by_source.get(source)
        return own if own is not None else self.by_source.get("*", SourceFaults())

    def roll(self, source: str) -> str | None:
        """The fault this request suffers, or None."""
        for key in (source, "*"):
            sf = self.by_source.get(key)
            if sf and sf.queue:
                return sf.queue.popleft()
        for key in (source, "*"):
            sf = self.by_source.get(key)
            if not sf or not sf.rates:
                continue
            x = self.rng.random()
            acc = 0.0
            for kind, rate in sf.rates.items():
                acc += rate
                if x < acc:
                    return kind
        return None

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() for k, v in self.by_source.items()}


def parse_spec(spec: str) -> dict[str, dict[str, float]]:
    """Parse `keap:500=0.1,drop=0.05;greenhouse:429=0.1;*:slow=0.01` into rates per source."""
    out: dict[str, dict[str, float]] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        if ":" not in part:
            raise FaultSpecError(f"fault spec {part!r} must look like SOURCE:KIND=RATE[,KIND=RATE]")
        source, _, rest = part.partition(":")
        rates: dict[str, float] = {}
        for item in filter(None, (i.strip() for i in rest.split(","))):
            kind, eq, rate = item.partition("=")
            if not eq:
                raise FaultSpecError(f"fault {item!r} needs a rate, e.g. {item}=0.1")
            if kind not in KINDS:
                raise FaultSpecError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
            try:
                rates[kind] = float(rate)
            except ValueError as e:
                raise FaultSpecError(f"fault rate {rate!r} for {kind!r} is not a number") from e
        out[source.strip()] = rates
    return out
