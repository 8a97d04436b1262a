"""The partition writer: streams a backup's pages into a staging folder, then deduplicates and
sorts them with DuckDB (id, update time: re-runs produce the same files), splits them into part
files, hashes them, describes them in a manifest and lands the partition (`landing.land`).
Memory stays bounded: pages stream into one Parquet file; DuckDB spills past 256 MB (a
100k-contact full then peaks near 500 MB RSS: docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.storage import parquet
from orchestration.storage.files import sha256_file
from orchestration.storage.landing import land
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path
from orchestration.storage.schema import EntitySchema
from orchestration.times import iso

TOOL_VERSION = "talentvault 0.1.0"
RUN_METADATA = ("_extracted_at", "_run_id")   # differ between re-runs by design
LARGE_RECORD_BYTES = 1_000_000     # a record's JSON past this is named in the manifest
ODD_SAMPLE = 20                    # ids kept per kind of odd record
# U+FFFD in `_raw`: a lone surrogate `canonical_json` replaced (or one the vendor sent replaced)
REPLACEMENT = "\ufffd"
ROWS_PER_FILE = 500_000


@dataclass
class PartitionWriter:
    """Streams pages into a staging folder; `commit()` finalizes and renames into place."""

    final: Path
    schema: EntitySchema
    day: str
    mode: str
    run_id: str
    window: tuple[datetime | None, datetime | None]
    api_calls: int = 0
    default_updated: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # `row_filter(con, "incoming")` gives a SQL predicate the landed rows must pass (None: all;
    # the extraction passes the suppression list's); `guard()` is held while landing
    row_filter: Callable[[duckdb.DuckDBPyConnection, str], str | None] | None = None
    guard: Callable[[], contextlib.AbstractContextManager] | None = None

    def __post_init__(self) -> None:
        self.staging = self.final.parent / f".staging-{self.day}-{uuid.uuid4().hex[:8]}"
        self.staging.mkdir(parents=True)
        self._raw_path = self.staging / "_incoming.parquet"
        self._writer = parquet.writer(self._raw_path, self.schema.arrow_schema())
        self.extracted_at = datetime.now(UTC)
        self.started = time.monotonic()
        self.fetched = 0
        self.deleted = 0

    def add(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            batch = self.schema.rows(docs, extracted_at=self.extracted_at, run_id=self.run_id,
                                     default_updated=self.default_updated)
            self._note_odd_records(batch)
            self._writer.write_batch(batch)
            self.fetched += len(docs)

    def _note_odd_records(self, batch: pa.RecordBatch) -> None:
        """Record what a person should know about while the partition still lands whole: records
        larger than LARGE_RECORD_BYTES (a 10 MB note) and records whose text holds U+FFFD: a
        lone surrogate (invalid in UTF-8) replaced in the columns and in `_raw`, or a
        replacement the vendor's text already carried. Ids only, in the manifest's
        `large_records` / `repaired_text`."""
        raw = batch.column("_raw")
        for key, mask in (("large_records", pc.greater(pc.binary_length(raw),
                                                       LARGE_RECORD_BYTES)),
                          ("repaired_text", pc.match_substring(raw, REPLACEMENT))):
            hits = pc.filter(batch.column("id"), pc.fill_null(mask, False))
            if len(hits):
                seen = self.extra.setdefault(key, {"records": 0, "sample_ids": []})
                seen["records"] += len(hits)
                room = ODD_SAMPLE - len(seen["sample_ids"])
                seen["sample_ids"] += hits.slice(0, max(room, 0)).to_pylist()
                if key == "large_records":
                    seen["max_bytes"] = max(seen.get("max_bytes", 0), pc.max(pc.binary_length(
                        pc.filter(raw, pc.fill_null(mask, False)))).as_py())

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
            for batch in parquet.open_file(f).iter_batches(batch_size=50_000):
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
        # bounded memory: a large full snapshot spills to the staging folder past 256 MB
        con = connect_duckdb(config={"memory_limit": "256MB", "threads": 2,
                                     "temp_directory": str(self.staging / "_spill"),
                                     "preserve_insertion_order": True})
        order = "id, _source_updated_at NULLS FIRST, _op DESC"
        try:
            # overlapping windows and shifting pages can return a version twice: keep one per
            # (id, update time, op); order by id then time so re-runs write identical files
            con.execute(f"CREATE TEMP VIEW incoming AS SELECT * FROM "
                        f"read_parquet('{duck_path(self._raw_path)}')")
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
                # the table holds the rows in order and scans keep it (preserve_insertion_order):
                # slicing needs no second sort
                parquet.write_query(con, "SELECT * FROM rows" if n_files == 1 else f"""
                    SELECT * FROM rows LIMIT {ROWS_PER_FILE} OFFSET {i * ROWS_PER_FILE}""", path)
                rows = parquet.num_rows(path)
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
