"""One way to back up any vendor entity: the factory behind every extract asset.

For a day D the asset writes partition `snapshot_date=D`:
- incremental: the records whose update time falls in [D - overlap, D + 1 day), plus `delete`
  rows for ids that were in the backed-up state and are gone: deleted by webhook, and on the
  days of the deletion sweep no longer listed by the API (assets/deletions.py);
- full: every record the API lists now, plus `delete` rows for ids that vanished.
`mode: auto` (the default) takes a full snapshot on the first run, after a gap (an incremental
chain must be contiguous), for entities that are always full, and when asked; otherwise
incremental. Pages stream from the API into Parquet; ids for deletion detection go to DuckDB.

Today is a partition too (an open day: a webhook or a person can ask for a backup now). Its window
ends at the vendor's now, not at midnight, so nothing is claimed about the rest of the day;
tonight's run of the same day replaces it with the whole day. A day whose base ended early (an
open-day run that was never completed) starts its window where the base ended, so no change
falls between two partitions.
"""


import gc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, Literal

import dagster as dg
import pyarrow as pa

from assets import deletions
from assets.identity import suppressed
from checks.snapshots import RULES, check_specs, run_checks
from orchestration.clock import reference_clock
from orchestration.freshness import backup_freshness_policy
from orchestration.partitions import BACKFILL_POLICY, daily_snapshots
from orchestration.resources import (
    GreenhouseResource,
    HighLevelResource,
    KeapResource,
    VendorClient,
    VendorResource,
)
from orchestration.storage import audit, suppression
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path
from orchestration.storage.schema import EntitySchema
from orchestration.storage.snapshots import SnapshotStorage
from orchestration.storage.state_sql import entity_state_sql
from orchestration.storage.writer import PartitionWriter
from orchestration.times import iso, parse_ts

log = logging.getLogger("talentvault.extract")

OVERLAP = timedelta(minutes=10)
ONE_MS = timedelta(milliseconds=1)

Pages = Callable[[Any, datetime | None, datetime | None], Iterator[list[dict[str, Any]]]]
IdPages = Callable[[Any], Iterator[list[Any]]]


class ExtractConfig(dg.Config):
    mode: Literal["auto", "full", "incremental"] = "auto"
    """auto: full on the first run or after a gap, else incremental; full: everything now;
    incremental: the day's changes (falls back to full when there is no base to build on)."""


@dataclass(frozen=True)
class ExtractSpec:
    schema: EntitySchema
    resource: str                       # resource key: greenhouse | keap | highlevel
    pages: Pages                        # (client, updated_from, updated_to) -> pages of records
    incremental: bool = True            # False: small reference data, always a full snapshot
    live_ids: IdPages | None = None     # a cheap id-only listing, if the API has one
    description: str = ""
    # records listed per parent (HighLevel notes / tasks of a contact): which parents to read
    # and what is gone is decided by `extract` of assets/highlevel/children.py, not by `pages`
    # (appointments: assets/highlevel/appointments.py, which reads calendars' windows too)
    children: str | None = None
    # records that go with their parent (HighLevel messages with their conversation): (the
    # column holding the parent id, the parent entity). An incremental learns their deletions
    # from the parent's backup of the same day (backed up first: assets/extract.py `priority`)
    parent: tuple[str, str] | None = None
    # (client, writer, page) -> the page to write: what a record brings along besides itself
    # (Greenhouse attachment files), noted in the writer's manifest
    enrich: Callable[[Any, PartitionWriter, list[dict[str, Any]]],
                     list[dict[str, Any]]] | None = None

    @property
    def key(self) -> dg.AssetKey:
        return dg.AssetKey([self.schema.source, self.schema.entity])


@dataclass(frozen=True)
class Plan:
    mode: str
    window_from: datetime | None
    window_to: datetime
    reason: str


def plan(storage: SnapshotStorage, spec: ExtractSpec, day: date, requested: str,
         now: datetime | None = None) -> Plan:
    """Full or incremental for this day, and the update-time window (it ends at `now`, the
    vendor's clock, when the day is still open)."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    end = start + timedelta(days=1)
    if now is not None and start <= now < end - ONE_MS:
        end = now + ONE_MS  # the window's end is exclusive: a change made at `now` is in it
    earlier = [m for m in storage.manifests(spec.schema.source, spec.schema.entity)
               if m["snapshot_date"] < day.isoformat()]
    if requested == "full":
        return Plan("full", None, end, "full snapshot requested")
    if not spec.incremental:
        return Plan("full", None, end, "reference entity: always a full snapshot")
    if not earlier:
        return Plan("full", None, end, "first snapshot of this entity")
    previous = earlier[-1]["snapshot_date"]
    if previous != (day - timedelta(days=1)).isoformat():
        return Plan("full", None, end, f"last snapshot is {previous}, not the day before: a "
                    "full snapshot restarts the incremental chain")
    base_end = (earlier[-1].get("window") or {}).get("updated_to")
    if base_end and parse_ts(base_end) < start:
        return Plan("incremental", parse_ts(base_end), end,
                    f"previous day's snapshot is the base; it ended at {base_end} (an open-day "
                    "run), so the window starts there")
    return Plan("incremental", start, end, "previous day's snapshot is the base")


@cache
def priority(source: str, entity: str) -> int:
    """Referenced entities are backed up first in a run (a Dagster step priority), so the
    references of today's rows can be judged against today's backup of what they point at."""
    referrers = [e for (s, e), r in RULES.items()
                 if s == source and any(ref.target == entity for ref in r.refs)]
    return 1 + max((priority(source, e) for e in referrers), default=-1)


def run_extract(spec: ExtractSpec, client: VendorClient, storage: SnapshotStorage, day: date,
                run_id: str, requested_mode: str = "auto",
                now: datetime | None = None) -> dict[str, Any]:
    """Back up one entity for one day (up to `now` if the day is still open); returns the
    partition's manifest."""
    with frozen_heap():
        return _run_extract(spec, client, storage, day, run_id, requested_mode, now)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects that exist before the extraction (imports, Dagster's definitions:
    200 MB of them in a worker) out of the garbage collector's full passes while pages of fresh
    records are allocated: each page's thousands of dicts trigger collections, and every full
    one walked that whole heap (in the extraction benchmark, 60 % of JSON decoding time). The
    objects return to the collector afterwards (`gc.unfreeze`)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _run_extract(spec: ExtractSpec, client: VendorClient, storage: SnapshotStorage, day: date,
                 run_id: str, requested_mode: str, now: datetime | None) -> dict[str, Any]:
    deletions.policy()   # a bad TALENTVAULT_DELETION_SWEEP fails before any API call
    p = plan(storage, spec, day, requested_mode, now)
    # erased people are not backed up again: their rows are dropped when the partition lands
    writer = storage.writer(spec.schema, day, mode=p.mode, run_id=run_id,
                            window=(p.window_from, p.window_to),
                            default_updated=p.window_to - ONE_MS,
                            row_filter=suppressed.extraction_filter(
                                storage.path(), spec.schema.source, spec.schema.entity),
                            guard=lambda: suppression.writing(storage.path()))
    writer.extra["plan_reason"] = p.reason
    calls_before = client.calls
    later = storage.later_partitions(spec.schema.source, spec.schema.entity, day)
    try:
        if later:
            # a re-run behind the head of the chain: keep what was captured, add what is new,
            # and leave deletions to the later partitions that saw them
            old = storage.partition_dir(spec.schema.source, spec.schema.entity, day)
            writer.extra["carried_rows"] = writer.carry_over(old) if old.exists() else 0
        fetch_from = p.window_from - OVERLAP if p.window_from else None
        fetch_to = p.window_to - ONE_MS if p.mode == "incremental" else None
        if spec.children is not None:
            # listed per parent (assets/highlevel/children.py); behind the head of the chain
            # only the carried rows stay
            if not later:
                if spec.children == "appointments":   # also by event time, per calendar
                    from assets.highlevel import appointments as per_parent
                else:
                    from assets.highlevel import children as per_parent

                gone = per_parent.extract(spec.children, client, storage, writer, day, p.mode,
                                          fetch_from, p.window_to - ONE_MS)
                writer.add_deletes(gone, deleted_at=p.window_to - ONE_MS)
        else:
            _pages(spec, client, storage, writer, day, p, later, fetch_from, fetch_to)
        writer.api_calls = client.calls - calls_before
        manifest = writer.commit()
    except BaseException:
        writer.abort()
        audit.record(storage.path(), "backup", target=spec.key.to_user_string(),
                     status="failed", run_id=run_id,
                     details={"snapshot_date": day.isoformat(), "mode": p.mode})
        raise
    audit.record(storage.path(), "backup", target=spec.key.to_user_string(), run_id=run_id,
                 counts={"rows": manifest["rows"], "api_calls": writer.api_calls},
                 details={"snapshot_date": day.isoformat(), "mode": p.mode})
    return manifest


def _pages(spec: ExtractSpec, client: VendorClient, storage: SnapshotStorage,
           writer: PartitionWriter, day: date, p: Plan, later: list[str],
           fetch_from: datetime | None, fetch_to: datetime | None) -> None:
    """The entity's pages through the writer, then (at the head of the chain) its deletions."""
    listed_ids: list[pa.Array] = []
    for page in spec.pages(client, fetch_from, fetch_to):
        if p.mode == "full" and later:
            # a full behind the head: only versions of its own day and before belong here
            page = [r for r in page if not _after(spec, r, p.window_to)]
        if spec.enrich is not None:
            page = spec.enrich(client, writer, page)
        writer.add(page)
        if p.mode == "full":
            listed_ids.append(_ids(spec, [r["id"] for r in page]))
    if not later:
        gone = _deletions(spec, client, storage, writer, day, p, listed_ids)
        writer.add_deletes(gone, deleted_at=p.window_to - ONE_MS)


def _deletions(spec: ExtractSpec, client: VendorClient, storage: SnapshotStorage,
               writer: PartitionWriter, day: date, p: Plan,
               listed_ids: list[pa.Array]) -> list[Any]:
    """The ids deleted at the vendor since the backed-up state (assets/deletions.py): a full
    backup diffs its own listing; an incremental sweeps every id when the policy says so, and
    always takes the webhook inbox's deletions. The manifest records which signal was used."""
    source, entity = spec.schema.source, spec.schema.entity
    if p.mode == "full":
        writer.extra["deletions"] = {"policy": "full", "swept": True,
                                     "live_ids": sum(len(a) for a in listed_ids)}
        return vanished_ids(storage, spec, day, listed_ids)
    sweep = deletions.plan_sweep(storage, source, entity, day)
    swept: list[Any] = []
    counts: dict[str, int] = {}
    if sweep.run:
        calls = client.calls
        id_pages = spec.live_ids(client) if spec.live_ids else (
            [r["id"] for r in page] for page in spec.pages(client, None, None))
        listed_ids = [_ids(spec, ids) for ids in id_pages]
        swept = vanished_ids(storage, spec, day, listed_ids)
        counts = {"live_ids": sum(len(a) for a in listed_ids), "sweep_calls": client.calls - calls,
                  "from_sweep": len(swept)}
    con = connect_duckdb()
    try:
        hooked = deletions.webhook_deletions(
            con, storage.path(), storage, source, entity, day,
            "BIGINT" if spec.schema.id_type == pa.int64() else "VARCHAR")
        orphans = [] if spec.parent is None else deletions.parent_gone(
            con, storage, source, entity, day, *spec.parent)
    finally:
        con.close()
    gone = sorted(set(swept) | set(hooked) | set(orphans))
    extra = {} if spec.parent is None else {"with_parent": len(orphans)}
    writer.extra["deletions"] = sweep.manifest(**counts, from_webhooks=len(hooked), **extra)
    return gone


def _after(spec: ExtractSpec, record: dict[str, Any], end: datetime) -> bool:
    updated = spec.schema.updated(record)
    return updated is not None and updated >= end


def _ids(spec: ExtractSpec, ids: list[Any]) -> pa.Array:
    if spec.schema.id_type == pa.int64():
        return pa.array([int(i) for i in ids], pa.int64())
    return pa.array([str(i) for i in ids], pa.string())


def vanished_ids(storage: SnapshotStorage, spec: ExtractSpec, day: date,
                 listed: list[pa.Array]) -> list[Any]:
    """Ids alive in the backed-up state before `day` that the API no longer lists."""
    alive = deletions.alive_before_sql(storage, spec.schema.source, spec.schema.entity, day)
    if alive is None:
        return []
    live = pa.table({"id": pa.chunked_array(listed, type=spec.schema.id_type)})  # noqa: F841
    con = connect_duckdb()
    try:
        rows = con.execute(f"""
            SELECT s.id FROM ({alive}) s ANTI JOIN live USING (id) ORDER BY s.id
        """).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows]


def extract_asset(spec: ExtractSpec) -> dg.AssetsDefinition:
    """The Dagster asset backing up one entity into daily partitions."""
    source, entity = spec.schema.source, spec.schema.entity

    asset = dg.asset(
        key=spec.key,
        group_name=source,
        kinds={"parquet", source},
        partitions_def=daily_snapshots,
        backfill_policy=BACKFILL_POLICY,
        # the recovery point objective: a backup at least every 26 h (TALENTVAULT_RPO_HOURS)
        freshness_policy=backup_freshness_policy(),
        description=spec.description or spec.schema.description,
        tags={"talentvault/stage": "extract"},
        pool=f"{source}_api",
        # data-quality checks on the partition just written (checks/snapshots.py); referenced
        # entities go first in a run so references can be judged against today's backup
        check_specs=check_specs(spec.schema, spec.incremental),
        op_tags={"dagster/priority": str(priority(source, entity))},
    )

    def run(context: dg.AssetExecutionContext, config: ExtractConfig, storage: SnapshotStorage,
            resource: VendorResource) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        day = date.fromisoformat(context.partition_key)
        client = resource.open()
        try:
            manifest = run_extract(spec, client, storage, day, context.run_id, config.mode,
                                   now=reference_clock(resource, client)[0])
        finally:
            client.close()
        context.log.info(
            "%s/%s %s: %d upserts, %d deletes, %d API calls, %.1fs (%s)", source, entity,
            manifest["mode"], manifest["upserts"], manifest["deletes"], manifest["api_calls"],
            manifest["duration_seconds"], manifest["plan_reason"])
        yield dg.MaterializeResult(metadata=materialization_metadata(spec, storage, manifest))
        yield from run_checks(context, spec.schema, spec.incremental, storage, day, resource,
                              client)

    # the vendor's resource is a typed parameter named after it (Dagster binds resources by
    # parameter name), so each vendor gets its own three-line signature
    Out = Iterator[dg.MaterializeResult | dg.AssetCheckResult]
    if spec.resource == "greenhouse":
        def _extract(context: dg.AssetExecutionContext, config: ExtractConfig,
                     storage: SnapshotStorage, greenhouse: GreenhouseResource) -> Out:
            yield from run(context, config, storage, greenhouse)
    elif spec.resource == "keap":
        def _extract(context: dg.AssetExecutionContext, config: ExtractConfig,
                     storage: SnapshotStorage, keap: KeapResource) -> Out:
            yield from run(context, config, storage, keap)
    elif spec.resource == "highlevel":
        def _extract(context: dg.AssetExecutionContext, config: ExtractConfig,
                     storage: SnapshotStorage, highlevel: HighLevelResource) -> Out:
            yield from run(context, config, storage, highlevel)
    else:
        raise ValueError(f"{spec.key.to_user_string()}: unknown resource {spec.resource!r} "
                         "(greenhouse, keap or highlevel)")
    return asset(_extract)


def materialization_metadata(spec: ExtractSpec, storage: SnapshotStorage,
                             manifest: dict[str, Any]) -> dict[str, Any]:
    part = storage.partition_dir(spec.schema.source, spec.schema.entity,
                                 manifest["snapshot_date"])
    return {
        "dagster/row_count": manifest["rows"],
        # the backup's size, not the day's delta: what the UI plots across partitions
        "backup/records_total": records_total(storage, spec, manifest["snapshot_date"]),
        "upserts": manifest["upserts"],
        "deletes": manifest["deletes"],
        "mode": manifest["mode"],
        "plan_reason": manifest["plan_reason"],
        "api_calls": manifest["api_calls"],
        "duration_seconds": manifest["duration_seconds"],
        "window_from": manifest["window"]["updated_from"] or "-",
        "window_to": manifest["window"]["updated_to"] or "-",
        "files": len(manifest["files"]),
        "path": dg.MetadataValue.path(str(part)),
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(c["name"], c["type"]) for c in manifest["schema"]]),
        "preview": dg.MetadataValue.md(preview_markdown(part)),
        # landed whole, but worth a look: records past 1 MB, text that was not valid UTF-8,
        # attachment files downloaded or not (the failed ones named)
        **{key: dg.MetadataValue.json(manifest[key])
           for key in ("large_records", "repaired_text", "attachment_files")
           if manifest.get(key)},
    }


def records_total(storage: SnapshotStorage, spec: ExtractSpec, day: str) -> int:
    """Records alive in the backup as of the end of `day` (its state after this partition)."""
    entity_dir = storage.entity_dir(spec.schema.source, spec.schema.entity)
    after = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    con = connect_duckdb()
    try:
        state = entity_state_sql(entity_dir, before_day=after)
        return con.execute(f"SELECT count(*) FROM ({state})").fetchone()[0]
    finally:
        con.close()


def preview_markdown(part) -> str:
    """A few ids and timestamps of the partition (never personal data)."""
    con = connect_duckdb()
    try:
        rows = con.execute(f"""
            SELECT id, _op, _source_updated_at FROM read_parquet('{duck_path(part)}/*.parquet')
            ORDER BY _source_updated_at DESC NULLS LAST, id LIMIT 5
        """).fetchall()
    finally:
        con.close()
    lines = ["| id | op | source updated at |", "|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {iso(r[2]) if r[2] else '-'} |" for r in rows]
    return "\n".join(lines)
