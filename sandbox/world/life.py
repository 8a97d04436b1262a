"""Daily recruiting life: `tick(store, days)` plays whole simulated days on the world.

Day k (k = 1..N) is the UTC calendar day that starts k-1 days after the midnight at or before the
clock. Its events (see RATES) happen in recruiters' working hours (world/clock.py), at strictly
increasing instants after the clock; every record an event writes gets its own millisecond
stamp as its update time. Each day is one transaction (readers see whole days) and leaves the
clock at the next midnight. The day's random choices are seeded by the world's seed and the date,
so the same world played for the same days gives the same records.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sandbox.store import Store
from sandbox.world import appointments, ats_history_life, keap_history, messages, notes
from sandbox.world import life_ats as gh
from sandbox.world import life_crm as cr
from sandbox.world.clock import day_times, is_workday, iso, midnight
from sandbox.world.day import Day

# Events per day per candidate of the world's size (weekdays; weekends see WEEKEND_FACTOR of
# that). Every kind happens at least MIN_PER_DAY times a day when there is something to act on,
# so even a tiny world shows every kind of change after one tick.
RATES: dict[str, float] = {
    "new_candidates": 0.011,         # ~ the arrival rate of the generated history
    "new_applications": 0.002,       # an existing candidate applies to another job
    "stage_moves": 0.02,
    "interview_updates": 0.004,
    "offers_accepted": 0.0008,       # hires
    "offers_declined": 0.0003,
    "offers_revised": 0.0001,
    "rejections": 0.008,
    "withdrawals": 0.001,
    "candidate_edits": 0.003,
    "merges": 0.0003,
    "deletions": 0.0001,
    "jobs_opened": 0.0001,
    "jobs_closed": 0.00005,
    "plan_edits": 0.00002,
    "keap_edits": 0.003,
    "keap_deletions": 0.0002,
    "keap_new_leads": 0.0025,
    "highlevel_edits": 0.002,
    "highlevel_deletions": 0.0001,
    "highlevel_new_leads": 0.0005,
    "opportunity_moves": 0.002,
}
MIN_PER_DAY = 1
WEEKEND_FACTOR = 0.3

EVENTS: dict[str, Callable[[Day], bool]] = {
    "new_candidates": gh.new_candidate,
    "new_applications": gh.new_application,
    "stage_moves": gh.stage_move,
    "interview_updates": gh.interview_progress,
    "offers_accepted": gh.offer_accepted,
    "offers_declined": gh.offer_declined,
    "offers_revised": gh.offer_revised,
    "rejections": gh.rejection,
    "withdrawals": gh.withdrawal,
    "candidate_edits": gh.candidate_edit,
    "merges": gh.merge,
    "deletions": gh.deletion,
    "jobs_opened": gh.job_opened,
    "jobs_closed": gh.job_closed,
    "plan_edits": gh.plan_edit,
    "keap_edits": cr.keap_edit,
    "keap_deletions": cr.keap_deletion,
    "keap_new_leads": cr.keap_new_lead,
    "highlevel_edits": cr.highlevel_edit,
    "highlevel_deletions": cr.highlevel_deletion,
    "highlevel_new_leads": cr.highlevel_new_lead,
    "opportunity_moves": cr.opportunity_move,
}


def tick(store: Store, days: int = 1) -> dict[str, Any]:
    """Play `days` whole days; returns what happened per day and in total."""
    if days < 1:
        raise ValueError("days must be at least 1")
    seed, size = world_seed(store), world_size(store)
    played, total = [], Counter[str]()
    day = midnight(store.now())
    for _ in range(days):
        done = _play_day(store, day, seed, size)
        played.append({"date": day.date().isoformat(), "events": dict(sorted(done.items()))})
        total.update(done)
        day += timedelta(days=1)
    return {"days": played, "total": dict(sorted(total.items())), "now": iso(store.now())}


def world_seed(store: Store) -> int:
    text = store.get_meta("seed")
    try:
        return int(json.loads(text)) if text else 0
    except (ValueError, TypeError):
        return 0


def world_size(store: Store) -> int:
    """The size the rates scale with: the generated candidate count, else the live count."""
    world = json.loads(store.get_meta("world") or "{}")
    return max(1, int(world.get("candidates") or store.count("greenhouse", "candidates")))


def plan(rng: random.Random, size: int, weekday: bool) -> list[str]:
    """The day's events in a random order."""
    factor = 1.0 if weekday else WEEKEND_FACTOR
    kinds: list[str] = []
    for kind, rate in RATES.items():
        expected = rate * size * factor
        n = int(expected) + (rng.random() < expected - int(expected))
        kinds += [kind] * max(MIN_PER_DAY, n)
    rng.shuffle(kinds)
    return kinds


def _play_day(store: Store, day: datetime, seed: int, size: int) -> Counter[str]:
    rng = random.Random(f"{seed}/{day.date().isoformat()}")
    done: Counter[str] = Counter()
    with store.transaction():
        ctx = Day(store, rng, size)
        kinds = plan(rng, size, is_workday(day))
        times = day_times(rng, day, len(kinds), store.now())
        for i, (kind, at) in enumerate(zip(kinds, times, strict=False)):
            ctx.begin(at, times[i + 1] if i + 1 < len(times) else day + timedelta(days=1))
            if EVENTS[kind](ctx):
                done[kind] += 1
            else:
                done[f"{kind}_skipped"] += 1
        done.update(notes.play_day(store, day, seed, size))
        done.update(messages.play_day(store, day, seed, size))
        done.update(ats_history_life.play_day(store, day, seed, size))
        done.update(appointments.play_day(store, day, seed, size))
        done.update(keap_history.play_day(store, day, seed, size))
        store.set_now(day + timedelta(days=1))
    return done
