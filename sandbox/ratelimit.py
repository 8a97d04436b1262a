"""Sliding-window rate limits, as strict as the vendors' published ones.

A sliding log (not fixed windows) so that "never more than N requests in any window of W seconds"
holds for every window, which is what the request-log test checks. Real (wall-clock) time: rate
limits are about how fast a client calls, not about the simulated recruiting clock.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: float
    name: str = ""


@dataclass
class Verdict:
    allowed: bool
    window: Window          # the tightest window (the one that refused, or least remaining)
    remaining: int
    reset_seconds: float    # seconds until one more request fits in that window
    used: int


class Limiter:
    """Several sliding windows (e.g. 10/s and 240/min) per key; a request must fit in all.

    Windows of a day or more are fixed calendar-day quotas (Keap's daily counters reset at 00:00
    UTC), counted without a log.
    """

    def __init__(self, windows: list[Window]):
        self.windows = [w for w in windows if w.seconds < 86400]
        self.daily = [w for w in windows if w.seconds >= 86400]
        self.enabled = True
        self._log: dict[str, list[float]] = {}
        self._days: dict[str, tuple[int, int]] = {}
        self._horizon = max((w.seconds for w in self.windows), default=1.0)

    def hit(self, key: str, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        first = (self.windows or self.daily)[0]
        if not self.enabled:
            return Verdict(True, first, first.limit, first.seconds, 0)
        log = self._log.setdefault(key, [])
        cut = bisect.bisect_right(log, now - self._horizon)
        if cut > 1024 or cut == len(log):
            del log[:cut]
        tightest: Verdict | None = None
        for w in self.windows:
            i = bisect.bisect_right(log, now - w.seconds)
            used = len(log) - i
            if used >= w.limit:
                return Verdict(False, w, 0, max(0.0, log[i] + w.seconds - now), used)
            reset = (log[i] + w.seconds - now) if used else w.seconds
            v = Verdict(True, w, w.limit - used - 1, max(0.0, reset), used + 1)
            if tightest is None or v.remaining < tightest.remaining:
                tightest = v
        day = int(time.time() // 86400)
        for w in self.daily:
            d, used = self._days.get(key + w.name, (day, 0))
            used = used if d == day else 0
            reset = (day + 1) * 86400 - time.time()
            if used >= w.limit:
                return Verdict(False, w, 0, reset, used)
            self._days[key + w.name] = (day, used + 1)
            v = Verdict(True, w, w.limit - used - 1, reset, used + 1)
            if tightest is None:
                tightest = v
        log.append(now)
        assert tightest is not None
        return tightest

    def reset(self) -> None:
        self._log.clear()
        self._days.clear()
