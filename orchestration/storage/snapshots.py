"""Snapshot storage: daily partitions of zstd Parquet + `_manifest.json` under one root.

    <root>/<source>/<entity>/snapshot_date=YYYY-MM-DD/part-00000.parquet ... _manifest.json

`SnapshotStorage` (the code location's `storage` resource) knows where partitions live and
reads their manifests; `writer()` opens a `PartitionWriter` (writer.py) for one partition.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from orchestration.config import data_root
from orchestration.storage.parquet import check_root
from orchestration.storage.schema import EntitySchema
from orchestration.storage.writer import PartitionWriter


# -- the store ----------------------------------------------------------------------------------
class SnapshotStorage(dg.ConfigurableResource):
    """Where snapshots live. Empty `root` means $TALENTVAULT_DATA_DIR (default ./data)."""

    root: str = ""

    def path(self) -> Path:
        if not self.root:
            return data_root()
        root = Path(self.root).resolve()
        check_root(root)
        return root

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
               default_updated: datetime | None = None,
               row_filter: Callable[[duckdb.DuckDBPyConnection, str], str | None] | None = None,
               guard: Callable[[], contextlib.AbstractContextManager] | None = None,
               ) -> PartitionWriter:
        """A writer for one partition, configured here and nowhere else: `row_filter` gives the
        SQL predicate landed rows must pass, `guard()` is held while landing."""
        return PartitionWriter(self.partition_dir(schema.source, schema.entity, day), schema,
                               _day(day), mode=mode, run_id=run_id, window=window,
                               default_updated=default_updated, row_filter=row_filter,
                               guard=guard)


def _day(day: date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


def iter_pages(pages: Iterator[list[dict]], limit: int | None = None) -> Iterator[list[dict]]:
    """Pass-through that stops after `limit` records (for previews and tests)."""
    n = 0
    for page in pages:
        yield page
        n += len(page)
        if limit is not None and n >= limit:
            return
