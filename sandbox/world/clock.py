"""Time in the sandbox world: the history window, working hours, and candidate arrival times.

All times are UTC. Recruiters work weekdays 13:00-23:00 UTC (08:00-18:00 US Eastern in winter);
candidates apply at any hour, most in the US daytime and evening, fewer at weekends.
"""

from __future__ import annotations

import bisect
import random
from datetime import UTC, date, datetime, timedelta

HISTORY_DAYS = 90           # the generated world's history spans this many days before `start`
WORK_START_HOUR = 13        # recruiters' working hours, UTC
WORK_END_HOUR = 23
WEEKEND_ACTIVITY = 0.35     # candidate arrivals at weekends, relative to weekdays
# candidate arrivals by UTC hour (relative): US daytime/evening busy, US night quiet
ARRIVAL_BY_HOUR = [0.6, 0.6, 0.5, 0.4, 0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.4,
                   0.7, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.8, 0.7]


_DAYS: dict[int, str] = {}
_HOURS_MINUTES = [f"T{m // 60:02d}:{m % 60:02d}:" for m in range(1440)]
_SECONDS = [f"{ms // 1000:02d}.{ms % 1000:03d}Z" for ms in range(60_000)]


def iso(t: datetime) -> str:
    """`store.iso` for the generator's hot path: the same text, several times faster (built
    from pre-formatted pieces)."""
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    day = t.toordinal()
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = t.strftime("%Y-%m-%d")
    return (prefix + _HOURS_MINUTES[t.hour * 60 + t.minute]
            + _SECONDS[t.second * 1000 + t.microsecond // 1000])


def midnight(d: str | date | datetime) -> datetime:
    """00:00 UTC of a day given as 'YYYY-MM-DD', a date, or any instant of that day."""
    if isinstance(d, str):
        d = date.fromisoformat(d[:10])
    if isinstance(d, datetime):
        d = d.astimezone(UTC).date()
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def is_workday(t: datetime) -> bool:
    return t.weekday() < 5


def next_work_time(t: datetime, rng: random.Random) -> datetime:
    """`t` if a recruiter could act then, else a random moment of the next working window."""
    if is_workday(t) and WORK_START_HOUR <= t.hour < WORK_END_HOUR:
        return t
    day = midnight(t)
    if t.hour >= WORK_END_HOUR or not is_workday(t):
        day += timedelta(days=1)
    while not is_workday(day):
        day += timedelta(days=1)
    span = (WORK_END_HOUR - WORK_START_HOUR) * 3600
    return day + timedelta(hours=WORK_START_HOUR, seconds=rng.random() * span * 0.5)


def plus_days(t: datetime, days: float, rng: random.Random) -> datetime:
    """A recruiter action `days` after `t`, moved into working hours."""
    return next_work_time(t + timedelta(days=days), rng)


class ArrivalCurve:
    """Maps a fraction of the history (0..1) to an arrival instant, monotonically.

    Candidate i of n arrives at `at((i + jitter) / n)`: arrival times increase with the index (so
    ids increase with creation time, as on the real services) and follow the weekly and daily
    rhythm above, with a gentle growth over the window.
    """

    def __init__(self, start: datetime, days: int = HISTORY_DAYS):
        self.origin = start - timedelta(days=days)
        self.hours = days * 24
        weights = []
        for h in range(self.hours):
            t = self.origin + timedelta(hours=h)
            day_weight = 1.0 if is_workday(t) else WEEKEND_ACTIVITY
            growth = 0.8 + 0.4 * h / self.hours
            weights.append(day_weight * growth * ARRIVAL_BY_HOUR[t.hour])
        self.cumulative = [0.0]
        for w in weights:
            self.cumulative.append(self.cumulative[-1] + w)

    def at(self, fraction: float) -> datetime:
        target = min(max(fraction, 0.0), 0.999999999) * self.cumulative[-1]
        h = bisect.bisect_right(self.cumulative, target) - 1
        h = min(h, self.hours - 1)
        low, high = self.cumulative[h], self.cumulative[h + 1]
        within = (target - low) / (high - low) if high > low else 0.0
        return self.origin + timedelta(hours=h + within)


def day_times(rng: random.Random, day: datetime, n: int, after: datetime) -> list[datetime]:
    """n strictly increasing instants inside the working hours of `day` (00:00 UTC), all later
    than `after`, spread out so that each event has room for several 1 ms write stamps (whole
    seconds apart when the day allows); squeezed towards midnight when the working day is over."""
    lo = max(day + timedelta(hours=WORK_START_HOUR), after + timedelta(milliseconds=1))
    hi = day + timedelta(hours=WORK_END_HOUR)
    if lo >= hi:
        lo, hi = after + timedelta(milliseconds=1), day + timedelta(days=1)
    span_ms = int((hi - lo).total_seconds() * 1000)
    n = min(n, max(span_ms - 1, 0))
    if n <= 0:
        return []
    step = next((s for s in (1000, 100, 20) if span_ms // s >= 2 * n), 1)
    slots = rng.sample(range(span_ms // step), n)
    slots.sort()
    return [lo + timedelta(milliseconds=s * step) for s in slots]
