"""The synthetic recruiting world: generated from a seed, sized by the number of candidates.

`generate` replaces the world in a folder with ~90 days of recruiting history ending at `start`
(00:00 UTC), where it sets the simulated clock. It streams: candidates are built in chunks (their
applications, stage history, interviews, offers, rejections and CRM contacts with them, see
world/build.py) and written chunk by chunk, so a million candidates never sit in memory at once;
big worlds are built by worker processes while this one writes. The same seed and sizes give
byte-identical records however they were built. See docs/sandbox.md for the world's shape.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sandbox.store import DB_NAME, Store, parse_ts
from sandbox.world.build import (
    CHUNK,
    Batch,
    Catalog,
    Params,
    build_catalog,
    build_chunk,
)
from sandbox.world.clock import HISTORY_DAYS, iso, midnight

DEFAULT_CANDIDATES = 3000
DEFAULT_APPLICATIONS_PER_CANDIDATE = 1.5
WORKERS_FROM = 20_000          # worlds this big are built by worker processes
MAX_WORKERS = 8
REINDEX_FROM = 20_000          # worlds this big are loaded without indexes, indexed at the end
# HighLevel ids of the generated world come from one sequence (unique across entities, as
# HighLevel's are); each entity's API counter then starts in its own block above it
HL_ENTITIES = ["contacts", "opportunities", "pipelines", "workflows", "custom_fields", "tags",
               "notes", "tasks", "calendars", "appointments", "conversations", "messages",
               "custom_values"]   # append only: an entity's place fixes its counter block
HL_COUNTER_BLOCK = 10 ** 12


def ensure(folder: Path, *, candidates: int = DEFAULT_CANDIDATES, seed: int = 42) -> None:
    """Make sure a world exists in `folder`; generate one if not."""
    if not (Path(folder) / DB_NAME).exists():
        generate(folder, candidates=candidates, seed=seed)


def generate(folder: Path, *, candidates: int = DEFAULT_CANDIDATES, seed: int = 42,
             start: str = "2026-01-05",
             applications_per_candidate: float = DEFAULT_APPLICATIONS_PER_CANDIDATE) -> dict:
    """Replace the world in `folder` with a generated one; returns counts and world facts.

    The replacement is one transaction: readers (a running server) see the old world until the
    new one is complete."""
    if candidates < 0:
        raise ValueError("candidates must be 0 or more")
    if applications_per_candidate < 1:
        raise ValueError("applications_per_candidate must be at least 1 (every candidate "
                         "applied somewhere)")
    params = Params(seed, iso(midnight(start)), candidates, applications_per_candidate)
    catalog = build_catalog(params)
    total = Batch()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    store = Store(folder)
    try:
        with store.transaction():
            store.wipe()
            store.set_now(midnight(start))
            indexes = _drop_indexes(store) if candidates >= REINDEX_FROM else []
            for batch in itertools.chain([catalog.batch], _chunks(params, catalog)):
                _write(store, batch)
                _tally(total, batch)
            seconds["build_and_write"] = time.perf_counter() - clock
            for sql in indexes:
                store.conn.execute(sql)
            _write_meta(store, params, total)
            seconds["index"] = time.perf_counter() - clock - seconds["build_and_write"]
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        seconds["commit_and_checkpoint"] = time.perf_counter() - clock - sum(seconds.values())
    finally:
        store.close()
    counts: dict[str, dict[str, int]] = {}
    for (source, entity), n in sorted(total.counts.items()):
        counts.setdefault(source, {})[entity] = n
    return {"now": params.start, "seed": seed, "candidates": candidates,
            "applications_per_candidate": applications_per_candidate, "counts": counts,
            "messiness": dict(sorted(total.stats.items())),
            "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def set_highlevel_counters(store: Store, last_n: int) -> None:
    """API-created HighLevel ids continue above `last_n`, in a separate block per entity."""
    for k, entity in enumerate(HL_ENTITIES):
        store.set_meta(f"next_id:highlevel:{entity}", str(last_n + 1 + k * HL_COUNTER_BLOCK))
        store.set_meta(f"next_id:highlevel:{entity}:seq", str(last_n + 1))


def _drop_indexes(store: Store) -> list[str]:
    """Drop the secondary indexes for a bulk load; returns the statements that rebuild them.
    Building an index once, sorted, is cheaper than updating it row by row, and all of it
    happens inside the load's transaction, so readers never see a world without indexes."""
    rows = store.conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                              "AND sql IS NOT NULL ORDER BY name").fetchall()
    for name, _ in rows:
        store.conn.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in rows]


def _write(store: Store, batch: Batch) -> None:
    store.put_many(batch.rows)
    if batch.keys:
        store.conn.executemany("INSERT OR IGNORE INTO lookup VALUES (?, ?, 'email', ?, ?)",
                               batch.keys)


def _tally(total: Batch, batch: Batch) -> None:
    total.counts.update(batch.counts)
    total.stats.update(batch.stats)
    for key, n in batch.next_ids.items():
        total.next_ids[key] = max(total.next_ids.get(key, 0), n)


def _write_meta(store: Store, params: Params, total: Batch) -> None:
    """Id counters continue above the highest id used; then the world's facts and clock."""
    for key, n in total.next_ids.items():
        if key.startswith(("greenhouse:", "keap:")):
            store.set_meta(f"next_id:{key}", str(n))
    set_highlevel_counters(store, total.next_ids.get("highlevel", 1) - 1)
    # generated in their own id blocks: continue above them
    for entity in ("notes", "tasks", "conversations", "messages", "calendars", "appointments",
                   "custom_values"):
        if f"highlevel:{entity}" in total.next_ids:
            n = total.next_ids[f"highlevel:{entity}"]
            store.set_meta(f"next_id:highlevel:{entity}", str(n))
            store.set_meta(f"next_id:highlevel:{entity}:seq", str(n))
    store.set_meta("seed", params.seed)
    store.set_meta("world", {
        "kind": "generated", "seed": params.seed, "candidates": params.candidates,
        "applications_per_candidate": params.applications_per_candidate,
        "start": params.start, "history_days": HISTORY_DAYS,
        "messiness": dict(sorted(total.stats.items())),
    })
    store.set_now(parse_ts(params.start))


# -- building chunks, here or in worker processes ------------------------------------------------
def _chunks(params: Params, catalog: Catalog) -> Iterator[Batch]:
    """Every chunk's batch, in chunk order."""
    n_chunks = -(-params.candidates // CHUNK)
    workers = _worker_count(params.candidates)
    if workers <= 1:
        for c in range(n_chunks):
            yield build_chunk(params, catalog, c)
        return
    yield from _from_workers(params, catalog, n_chunks, workers)


def _worker_count(candidates: int) -> int:
    # fork, not spawn: spawn re-runs the caller's main module, which breaks unguarded scripts;
    # workers inherit the catalog and never touch the store
    if candidates < WORKERS_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(MAX_WORKERS, (os.cpu_count() or 1)))


def _from_workers(params: Params, catalog: Catalog, n_chunks: int,
                  workers: int) -> Iterator[Batch]:
    """Worker w builds chunks w, w + workers, ...; this process reads them back in order."""
    ctx = multiprocessing.get_context("fork")
    channels = [ctx.Queue(maxsize=2) for _ in range(workers)]
    procs = [ctx.Process(target=_work, args=(channels[w], params, catalog, w, workers,
                                             n_chunks), daemon=True) for w in range(workers)]
    for p in procs:
        p.start()
    try:
        for c in range(n_chunks):
            yield _receive(channels[c % workers], procs[c % workers])
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()


def _receive(channel: Any, proc: Any) -> Batch:
    while True:
        try:
            kind, payload = channel.get(timeout=5)
        except queue.Empty:
            if not proc.is_alive():
                raise RuntimeError("a world generator process died") from None
            continue
        if kind == "error":
            raise RuntimeError(f"the world generator failed:\n{payload}")
        return payload


def _work(channel: Any, params: Params, catalog: Catalog, w: int, workers: int,
          n_chunks: int) -> None:
    try:
        for c in range(w, n_chunks, workers):
            channel.put(("batch", build_chunk(params, catalog, c)))
    except BaseException:
        channel.put(("error", traceback.format_exc()))
        raise
