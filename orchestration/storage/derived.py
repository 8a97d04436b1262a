"""Identity outputs on disk: `<root>/identity/<name>/snapshot_date=D/part-00000.parquet` plus
`_manifest.json` (rows, sha256, schema, content fingerprint, the input partitions it was built
from), written by DuckDB `COPY` into a staging folder and landed like the backups (sealed,
fsynced, renamed into place: `orchestration.storage.landing.land`): a reader never sees half a
partition, and re-running a day replaces it."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from orchestration.storage.files import sha256_file
from orchestration.storage.landing import land
from orchestration.storage.parquet import duck_path, write_query
from orchestration.storage.writer import TOOL_VERSION
from orchestration.times import iso

SOURCE = "identity"


def output_dir(root: Path, name: str, source: str = SOURCE) -> Path:
    return root / source / name


def partition_dir(root: Path, name: str, day: str, source: str = SOURCE) -> Path:
    return output_dir(root, name, source) / f"snapshot_date={day}"


def partition_glob(root: Path, name: str, day: str, source: str = SOURCE) -> str:
    return str(partition_dir(root, name, day, source) / "*.parquet")


def previous_day(root: Path, name: str, day: str, source: str = SOURCE) -> str | None:
    """The latest landed partition of `name` before `day`."""
    base = output_dir(root, name, source)
    if not base.is_dir():
        return None
    days = sorted(d.name.split("=", 1)[1] for d in base.glob("snapshot_date=*")
                  if (d / "_manifest.json").exists() and d.name.split("=", 1)[1] < day)
    return days[-1] if days else None


def write_partition(con: duckdb.DuckDBPyConnection, root: Path, name: str, day: str,
                    query: str, order_by: str, *, run_id: str,
                    extra: dict[str, Any] | None = None, source: str = SOURCE) -> dict[str, Any]:
    """Write `query` (sorted by `order_by`, so re-runs write the same rows in the same order)
    as the partition `day` of derived output `<source>/<name>` (identity, sync, ...); returns
    its manifest."""
    started = time.monotonic()
    final = partition_dir(root, name, day, source)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".staging-{day}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        path = staging / "part-00000.parquet"
        write_query(con, f"SELECT * FROM ({query}) ORDER BY {order_by}", path)
        rel = con.sql(f"SELECT * FROM read_parquet('{duck_path(path)}') LIMIT 0")
        schema = [{"name": n, "type": str(t)} for n, t in zip(rel.columns, rel.types,
                                                              strict=True)]
        rows, fingerprint = _count_and_hash(con, query)
        manifest = {
            "source": source, "entity": name, "snapshot_date": day, "rows": rows,
            "files": [{"file": path.name, "rows": rows, "sha256": sha256_file(path),
                       "bytes": path.stat().st_size}],
            "schema": schema, "content_fingerprint": fingerprint, "run_id": run_id,
            "created_at": iso(datetime.now(UTC)), "tool_version": TOOL_VERSION,
            "duration_seconds": round(time.monotonic() - started, 3), **(extra or {}),
        }
        return land(staging, final, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _count_and_hash(con: duckdb.DuckDBPyConnection, query: str) -> tuple[int, str]:
    """Row count and an order-independent digest of every column (equal across re-runs)."""
    cols = con.sql(f"SELECT * FROM ({query}) LIMIT 0").columns
    row = ", ".join(f'"{c}"' for c in cols)
    n, digest = con.execute(f"""
        SELECT count(*), coalesce(sum(hash({row})::HUGEINT), 0) FROM ({query})""").fetchall()[0]
    return int(n), str(digest)


def read_manifest(root: Path, name: str, day: str,
                  source: str = SOURCE) -> dict[str, Any] | None:
    m = partition_dir(root, name, day, source) / "_manifest.json"
    return json.loads(m.read_text()) if m.exists() else None
