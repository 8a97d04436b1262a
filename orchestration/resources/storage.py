"""Snapshot storage: daily partitions of zstd Parquet + `_manifest.json` under one root.

    <root>/<source>/<entity>/snapshot_date=YYYY-MM-DD/part-00000.parquet ... _manifest.json

A partition is written page by page into a staging folder, then deduplicated and sorted by
DuckDB (id, update time; so re-runs produce the same files), hashed, described by its sealed
manifest, fsynced and renamed into place (`land`): a reader never sees half a partition, a power
cut never leaves a manifest pointing at empty files, and re-running replaces it. Every landing is
recorded in the seal ledger (`orchestration/seals.py`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration import seals
from orchestration.config import data_root
from orchestration.fsync import fsync
from orchestration.seals import sha256_file
from orchestration.times import iso, parse_ts

TOOL_VERSION = "talentvault 0.1.0"
META_COLUMNS = ("_raw", "_source_updated_at", "_extracted_at", "_op", "_run_id")
RUN_METADATA = ("_extracted_at", "_run_id")   # differ between re-runs by design
ROWS_PER_FILE = 500_000
TS = pa.timestamp("ms", tz="UTC")
STR = pa.string()


# -- what a partition's rows look like -----------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    get: Callable[[dict[str, Any]], Any]


def path_of(path: str) -> Callable[[dict[str, Any]], Any]:
    keys = path.split(".")

    def get(doc: dict[str, Any]) -> Any:
        value: Any = doc
        for k in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(k)
        return value
    return get


def as_ts(getter: Callable[[dict], Any]) -> Callable[[dict], datetime | None]:
    def get(doc: dict) -> datetime | None:
        value = getter(doc)
        if not value:
            return None
        try:
            return parse_ts(str(value))
        except ValueError:
            return None  # unparseable stays null here; the raw text is kept in _raw
    return get


def col(name: str, type_: pa.DataType = STR, source: str | None = None,
        get: Callable[[dict], Any] | None = None) -> Column:
    """A flattened column: by default the doc's field of the same name (dotted paths allowed);
    timestamp columns parse ISO text."""
    getter = get or path_of(source or name)
    if type_ == TS and get is None:
        getter = as_ts(getter)
    return Column(name, type_, _coerced(getter, type_))


def _coerced(getter: Callable[[dict], Any], type_: pa.DataType) -> Callable[[dict], Any]:
    """Vendor data is loosely typed (ids as numbers or strings, numbers as text): coerce to the
    column type, and leave a value that will not coerce null (it is still in `_raw`)."""
    if pa.types.is_string(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            if v is None or isinstance(v, str):
                return v
            return json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
    elif pa.types.is_integer(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            try:
                return None if v is None or isinstance(v, bool) else int(v)
            except (TypeError, ValueError):
                return None
    elif pa.types.is_floating(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            try:
                return None if v is None or isinstance(v, bool) else float(v)
            except (TypeError, ValueError):
                return None
    elif pa.types.is_boolean(type_):
        def get(doc: dict) -> Any:
            v = getter(doc)
            return v if isinstance(v, bool) else None
    else:
        return getter
    return get


def list_of(field_name: str, key: str | None = None) -> Callable[[dict], list | None]:
    """All values of an array field (or of one key of its objects)."""
    def get(doc: dict) -> list | None:
        items = doc.get(field_name)
        if items is None:
            return None
        if key is None:
            return [None if i is None else str(i) for i in items]
        return [str(i.get(key)) for i in items if isinstance(i, dict) and i.get(key) is not None]
    return get


def first_of(field_name: str, key: str) -> Callable[[dict], Any]:
    def get(doc: dict) -> Any:
        for item in doc.get(field_name) or []:
            if isinstance(item, dict) and item.get(key):
                return item[key]
        return None
    return get


@dataclass(frozen=True)
class EntitySchema:
    source: str
    entity: str
    id_type: pa.DataType                       # int64 (Greenhouse) or string (Keap, HighLevel)
    updated: Callable[[dict], datetime | None]  # the record's update time
    columns: tuple[Column, ...]
    description: str = ""

    def arrow_schema(self) -> pa.Schema:
        fields = [pa.field("id", self.id_type, nullable=False)]
        fields += [pa.field(c.name, c.type) for c in self.columns if c.name != "id"]
        fields += [pa.field("_raw", pa.string()), pa.field("_source_updated_at", TS),
                   pa.field("_extracted_at", TS), pa.field("_op", pa.string()),
                   pa.field("_run_id", pa.string())]
        return pa.schema(fields)

    def rows(self, docs: Iterable[dict[str, Any]], *, extracted_at: datetime,
             run_id: str, default_updated: datetime | None = None) -> pa.RecordBatch:
        """One Arrow batch from a page of API records (the page is small; this is the one
        place rows pass through Python, on their way from the API)."""
        schema = self.arrow_schema()
        data: dict[str, list] = {f.name: [] for f in schema}
        cols = [c for c in self.columns if c.name != "id"]
        for doc in docs:
            data["id"].append(int(doc["id"]) if self.id_type == pa.int64() else str(doc["id"]))
            for c in cols:
                data[c.name].append(c.get(doc))
            data["_raw"].append(json.dumps(doc, ensure_ascii=False, sort_keys=True,
                                           separators=(",", ":")))
            # records without an update time (tags, pipelines) are versions of the snapshot time
            data["_source_updated_at"].append(self.updated(doc) or default_updated)
            data["_extracted_at"].append(extracted_at)
            data["_op"].append("upsert")
            data["_run_id"].append(run_id)
        return pa.RecordBatch.from_pydict(data, schema=schema)

    def delete_rows(self, ids: Iterable[Any], *, deleted_at: datetime, extracted_at: datetime,
                    run_id: str) -> pa.RecordBatch:
        ids = list(ids)
        schema = self.arrow_schema()
        data: dict[str, list] = {f.name: [None] * len(ids) for f in schema}
        data["id"] = [int(i) if self.id_type == pa.int64() else str(i) for i in ids]
        data["_source_updated_at"] = [deleted_at] * len(ids)
        data["_extracted_at"] = [extracted_at] * len(ids)
        data["_op"] = ["delete"] * len(ids)
        data["_run_id"] = [run_id] * len(ids)
        return pa.RecordBatch.from_pydict(data, schema=schema)


# -- the store ----------------------------------------------------------------------------------
class SnapshotStorage(dg.ConfigurableResource):
    """Where snapshots live. Empty `root` means $TALENTVAULT_DATA_DIR (default ./data)."""

    root: str = ""

    def path(self) -> Path:
        return Path(self.root).resolve() if self.root else data_root()

    def entity_dir(self, source: str, entity: str) -> Path:
        return self.path() / source / entity

    def partition_dir(self, source: str, entity: str, day: date | str) -> Path:
        return self.entity_dir(source, entity) / f"snapshot_date={_day(day)}"

    def manifests(self, source: str, entity: str) -> list[dict[str, Any]]:
        """Every landed partition's manifest, oldest first."""
        base = self.entity_dir(source, entity)
        if not base.exists():
            return []
        out = []
        for d in sorted(base.glob("snapshot_date=*")):
            m = d / "_manifest.json"
            if m.exists():
                out.append(json.loads(m.read_text()))
        return out

    def later_partitions(self, source: str, entity: str, day: date | str) -> list[str]:
        """Snapshot dates after `day` that have landed."""
        base = self.entity_dir(source, entity)
        if not base.exists():
            return []
        return sorted(d.name.split("=", 1)[1] for d in base.glob("snapshot_date=*")
                      if d.name.split("=", 1)[1] > _day(day) and (d / "_manifest.json").exists())

    def manifest(self, source: str, entity: str, day: date | str) -> dict[str, Any] | None:
        m = self.partition_dir(source, entity, day) / "_manifest.json"
        return json.loads(m.read_text()) if m.exists() else None

    def writer(self, schema: EntitySchema, day: date | str, *, mode: str, run_id: str,
               window: tuple[datetime | None, datetime | None],
               default_updated: datetime | None = None) -> PartitionWriter:
        return PartitionWriter(self, schema, _day(day), mode=mode, run_id=run_id, window=window,
                               default_updated=default_updated)


def _day(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


@dataclass
class PartitionWriter:
    """Streams pages into a staging folder; `commit()` finalizes and renames into place."""

    storage: SnapshotStorage
    schema: EntitySchema
    day: str
    mode: str
    run_id: str
    window: tuple[datetime | None, datetime | None]
    api_calls: int = 0
    default_updated: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # set by the extraction (assets/backups/suppression.py): `row_filter(con, "incoming")` gives
    # a SQL predicate the landed rows must pass (None: all); `guard()` is held while landing
    row_filter: Callable[[duckdb.DuckDBPyConnection, str], str | None] | None = None
    guard: Callable[[], contextlib.AbstractContextManager] | None = None

    def __post_init__(self) -> None:
        final = self.storage.partition_dir(self.schema.source, self.schema.entity, self.day)
        self.final = final
        self.staging = final.parent / f".staging-{self.day}-{uuid.uuid4().hex[:8]}"
        self.staging.mkdir(parents=True)
        self._raw_path = self.staging / "_incoming.parquet"
        self._writer = pq.ParquetWriter(self._raw_path, self.schema.arrow_schema(),
                                        compression="zstd")
        self.extracted_at = datetime.now(UTC)
        self.started = time.monotonic()
        self.fetched = 0
        self.deleted = 0

    def add(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            self._writer.write_batch(self.schema.rows(
                docs, extracted_at=self.extracted_at, run_id=self.run_id,
                default_updated=self.default_updated))
            self.fetched += len(docs)

    def add_deletes(self, ids: Iterable[Any], deleted_at: datetime) -> None:
        ids = list(ids)
        if ids:
            self._writer.write_batch(self.schema.delete_rows(
                ids, deleted_at=deleted_at, extracted_at=self.extracted_at, run_id=self.run_id))
            self.deleted += len(ids)

    def carry_over(self, partition: Path) -> int:
        """Keep the rows an earlier run of this partition captured (streamed, batch by batch):
        the API may no longer return versions overwritten since, and a re-run must not lose
        them. Returns the rows carried."""
        n = 0
        for f in sorted(partition.glob("*.parquet")):
            for batch in pq.ParquetFile(f).iter_batches(batch_size=50_000):
                self._writer.write_batch(batch.cast(self.schema.arrow_schema())
                                         if batch.schema != self.schema.arrow_schema() else batch)
                n += batch.num_rows
        return n

    def abort(self) -> None:
        self._writer.close()
        shutil.rmtree(self.staging, ignore_errors=True)

    def commit(self) -> dict[str, Any]:
        """Dedupe + sort into part files, hash, write the manifest, rename into place."""
        self._writer.close()
        try:
            with self.guard() if self.guard else contextlib.nullcontext():
                return self._land()
        except BaseException:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise

    def _land(self) -> dict[str, Any]:
        files = self._finalize()
        manifest = self._manifest(files)
        self._raw_path.unlink()
        shutil.rmtree(self.staging / "_spill", ignore_errors=True)
        return land(self.staging, self.final, manifest)

    def _finalize(self) -> list[dict[str, Any]]:
        # bounded memory: a large full snapshot spills to the staging folder past 1 GB
        con = duckdb.connect(config={"memory_limit": "1GB", "threads": 2,
                                     "temp_directory": str(self.staging / "_spill"),
                                     "preserve_insertion_order": True})
        order = "id, _source_updated_at NULLS FIRST, _op DESC"
        try:
            # overlapping windows and shifting pages can return a version twice: keep one per
            # (id, update time, op); order by id then time so re-runs write identical files
            con.execute(f"CREATE TEMP VIEW incoming AS SELECT * FROM "
                        f"read_parquet('{self._raw_path}')")
            where = self.row_filter(con, "incoming") if self.row_filter else None
            con.execute(f"""
                CREATE TABLE rows AS
                SELECT * FROM incoming {f'WHERE {where}' if where else ''}
                QUALIFY row_number() OVER (
                    PARTITION BY id, _source_updated_at, _op ORDER BY _extracted_at) = 1
                ORDER BY {order}
            """)
            total = con.execute("SELECT count(*) FROM rows").fetchone()[0]
            if where:
                # rows of erased people left out (counted, never named)
                self.extra["suppressed_rows"] = con.execute(f"""
                    SELECT count(*) FROM incoming WHERE NOT ({where})""").fetchone()[0]
            files = []
            n_files = max(1, -(-total // ROWS_PER_FILE))
            for i in range(n_files):
                name = f"part-{i:05d}.parquet"
                path = self.staging / name
                con.execute(f"""
                    COPY (SELECT * FROM rows ORDER BY {order}
                          LIMIT {ROWS_PER_FILE} OFFSET {i * ROWS_PER_FILE})
                    TO '{path}' (FORMAT parquet, COMPRESSION zstd)
                """)
                rows = pq.ParquetFile(path).metadata.num_rows
                files.append({"file": name, "rows": rows, "sha256": sha256_file(path),
                              "bytes": path.stat().st_size})
            self.counts = dict(con.execute(
                "SELECT _op, count(*) FROM rows GROUP BY _op").fetchall())
            content = ", ".join(f'"{f.name}"' for f in self.schema.arrow_schema()
                                if f.name not in RUN_METADATA)
            # order-independent digest of everything but run metadata: equal across re-runs
            self.fingerprint = str(con.execute(
                f"SELECT coalesce(sum(hash({content})::HUGEINT), 0) FROM rows").fetchone()[0])
            return files
        finally:
            con.close()

    def _manifest(self, files: list[dict[str, Any]]) -> dict[str, Any]:
        schema = self.schema.arrow_schema()
        return {
            "source": self.schema.source,
            "entity": self.schema.entity,
            "snapshot_date": self.day,
            "mode": self.mode,
            "window": {"updated_from": iso(self.window[0]) if self.window[0] else None,
                       "updated_to": iso(self.window[1]) if self.window[1] else None},
            "rows": sum(f["rows"] for f in files),
            "upserts": int(self.counts.get("upsert", 0)),
            "deletes": int(self.counts.get("delete", 0)),
            "fetched": self.fetched,
            "files": files,
            "schema": [{"name": f.name, "type": str(f.type)} for f in schema],
            "content_fingerprint": self.fingerprint,
            "api_calls": self.api_calls,
            "duration_seconds": round(time.monotonic() - self.started, 3),
            "run_id": self.run_id,
            "extracted_at": iso(self.extracted_at),
            "tool_version": TOOL_VERSION,
            **self.extra,
        }


def land(staging: Path, final: Path, manifest: dict[str, Any], *, event: str = "landed",
         reason: str | None = None) -> dict[str, Any]:
    """Seal `manifest`, write it beside the files in `staging`, make every file read-only and
    durable (fsync of each file and of the folder before the rename, of the parent after it),
    rename the folder into place and record it in the seal ledger. Returns the sealed manifest.
    Every writer of a partition (backups, identity/sync outputs, erasure) lands through here."""
    seals.check_key(final.parents[2])
    manifest = seals.sealed(manifest, seals.partition_target(final))
    (staging / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    for f in staging.iterdir():
        f.chmod(0o444)  # landed partitions are not edited in place by anything
        fsync(f)
    fsync(staging)
    _swap_into_place(staging, final)
    fsync(final.parent)
    seals.record_partition(final, manifest, event, reason)
    return manifest


def _swap_into_place(staging: Path, final: Path) -> None:
    """Rename the finished partition into place, replacing an older one."""
    if final.exists():
        old = final.parent / f".replaced-{final.name}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
        os.rename(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, final)


def iter_pages(pages: Iterator[list[dict]], limit: int | None = None) -> Iterator[list[dict]]:
    """Pass-through that stops after `limit` records (for previews and tests)."""
    n = 0
    for page in pages:
        yield page
        n += len(page)
        if limit is not None and n >= limit:
            return
