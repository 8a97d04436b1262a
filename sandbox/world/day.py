"""What every daily-life event needs: the day's context (event time, write stamps, the store),
random sampling of records with SQL, and id allocation that continues the world's counters."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sandbox import records
from sandbox.store import Row, Store
from sandbox.world import ats, crm
from sandbox.world.clock import day_times, is_workday

# json_extract conditions used by several events
IN_PROCESS = ("json_extract(doc, '$.status') = 'in_process' "
              "AND json_extract(doc, '$.stage_id') IS NOT NULL")
OPEN_JOB = "json_extract(doc, '$.status') = 'open'"
# index ranges of the people made by `tick` (emails end with digits derived from the index, so
# they never collide with the generated world's people or with each other)
PERSON_INDEX_BASE = {"candidate": 0, "keap": 500_000_000, "highlevel": 600_000_000}


class Day:
    """One simulated day being played: the current event's time and its write stamps."""

    def __init__(self, store: Store, rng: random.Random, size: int):
        self.store, self.rng, self.size = store, rng, size
        self.at: datetime = store.now()
        self._k = 0
        self._room = 1
        self.touched: set[tuple[str, str]] = set()
        self._users: list[int] | None = None

    def begin(self, at: datetime, until: datetime | None) -> None:
        """Start an event at `at`; `until` is the next event's time (the room for stamps)."""
        self.at, self._k = at, 0
        self._room = max(1, int((until - at).total_seconds() * 1000)) if until else 1000

    def stamp(self) -> datetime:
        """A fresh write time inside the current event: 1 ms after the previous write."""
        t = self.at + timedelta(milliseconds=min(self._k, self._room - 1))
        self._k += 1
        return t

    def save(self, source: str, entity: str, doc: dict[str, Any]) -> None:
        records.save(self.store, source, entity, doc)
        self.touched.add((source, str(doc["id"])))

    def delete(self, source: str, entity: str, id_: str | int,
               merged_into: str | int | None = None) -> bool:
        return self.store.delete(source, entity, id_, at=self.at, merged_into=merged_into)

    # -- ids ----------------------------------------------------------------------------------
    def gh_id(self, entity: str) -> int:
        return self.store.next_id("greenhouse", entity, start=ats.ID_BASE[entity])

    def keap_id(self, entity: str) -> int:
        return self.store.next_id("keap", entity, start=crm.KEAP_ID_BASE[entity])

    def hl_id(self, entity: str) -> str:
        return records.next_highlevel_id(self.store, entity)

    # -- sampling -----------------------------------------------------------------------------
    def pick(self, source: str, entity: str, where: str = "1", params: Sequence[Any] = (),
             avoid_touched: bool = True) -> Row | None:
        """A random record matching `where`: start at a random `seq` and take the first match
        (wrapping around), so a pick costs a few index steps, never a scan into Python."""
        # two subqueries: SQLite answers a lone min() or max() from the index in a step, but
        # walks the whole entity for both in one SELECT (50 ms a pick on a 50k world)
        lo, hi = self.store.conn.execute(
            "SELECT (SELECT min(seq) FROM records WHERE source = ?1 AND entity = ?2), "
            "(SELECT max(seq) FROM records WHERE source = ?1 AND entity = ?2)",
            (source, entity)).fetchone()
        if lo is None:
            return None
        for _ in range(4):
            start = self.rng.randint(lo, hi)
            for cond, args in ((f"seq >= ? AND ({where})", (start, *params)),
                               (f"seq < ? AND ({where})", (start, *params))):
                for row in self.store.select(source, entity, cond, args, order="seq",
                                             limit=8):
                    if not (avoid_touched and (source, row.id) in self.touched):
                        return row
        return None

    def children(self, entity: str, parent: str | int, where: str = "1") -> list[Row]:
        """Greenhouse records owned by `parent` (applications of a candidate, stage rows of an
        application ...), oldest first."""
        return self.store.select("greenhouse", entity, f"parent = ? AND ({where})",
                                 (str(parent),), order="seq, id")

    def job_stages(self, job_id: int, active_only: bool = True) -> list[dict[str, Any]]:
        where = "json_extract(doc, '$.active') = 1" if active_only else "1"
        rows = self.children("job_interview_stages", job_id, where)
        return sorted((r.doc for r in rows), key=lambda d: (d["sort_order"], d["id"]))

    def users(self) -> list[int]:
        """The active users (recruiters), read once a day: daily life never changes them."""
        if self._users is None:
            rows = self.store.select("greenhouse", "users",
                                     "json_extract(doc, '$.deactivated') = 0", limit=100)
            self._users = [int(r.id) for r in rows] or [1]
        return list(self._users)


def play_stream(store: Store, day: datetime, rng: random.Random, size: int,
                rates: dict[str, float], events: dict[str, Callable[[Day], bool]],
                weekend_factor: float) -> Counter[str]:
    """A day of events drawn from a stream of its own (HighLevel notes, the Greenhouse record's
    history): `rate * size` of each kind (weekends: `weekend_factor` of that), at least one,
    in a random order at working-hour instants (the caller holds the day's transaction and
    moves the clock after)."""
    factor = 1.0 if is_workday(day) else weekend_factor
    kinds: list[str] = []
    for kind, rate in rates.items():
        expected = rate * size * factor
        kinds += [kind] * max(1, int(expected) + (rng.random() < expected - int(expected)))
    rng.shuffle(kinds)
    ctx = Day(store, rng, size)
    times = day_times(rng, day, len(kinds), store.now())
    done: Counter[str] = Counter()
    for i, (kind, at) in enumerate(zip(kinds, times, strict=False)):
        ctx.begin(at, times[i + 1] if i + 1 < len(times) else day + timedelta(days=1))
        done[kind if events[kind](ctx) else f"{kind}_skipped"] += 1
    return done


def deleted(source: str, entity: str) -> Callable[[Day], bool]:
    """The daily-life event deleting a random record of an entity."""
    def event(day: Day) -> bool:
        picked = day.pick(source, entity)
        return picked is not None and day.delete(source, entity, picked.id)
    return event
