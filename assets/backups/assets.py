"""Backup-stage assets: the DuckDB catalog over every snapshot."""

import dagster as dg

from assets.backups.catalog import describe, write_catalog_file
from assets.greenhouse.extract import SPECS as GREENHOUSE
from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from orchestration.partitions import BACKFILL_POLICY, daily_snapshots
from orchestration.storage.snapshots import SnapshotStorage

EXTRACT_KEYS = [spec.key for spec in (*GREENHOUSE, *KEAP, *HIGHLEVEL)]


@dg.asset(
    key=["backups", "catalog"],
    group_name="backups",
    kinds={"duckdb"},
    deps=EXTRACT_KEYS,
    partitions_def=daily_snapshots,
    backfill_policy=BACKFILL_POLICY,
    description="The SQL catalog over every snapshot: `<source>.<entity>` (current state), "
    "`<source>.<entity>_history` and `<source>.<entity>_as_of(ts)`. Query it with "
    "`talentvault sql` (confined to the backup files, every query audited); the saved "
    "`data/catalog.duckdb` is for trusted tools (not a locked door).",
)
def catalog(context: dg.AssetExecutionContext, storage: SnapshotStorage) -> dg.MaterializeResult:
    root = storage.path()
    path = write_catalog_file(root)
    views = describe(root)
    table = ["| view | current rows | versions |", "|---|---:|---:|"]
    table += [f"| `{v['view']}` | {v['rows']} | {v['versions']} |" for v in views]
    context.log.info("catalog refreshed with %d entities at %s", len(views), path)
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(path)),
        "entities": len(views),
        "dagster/row_count": sum(int(v["rows"]) for v in views),
        "views": dg.MetadataValue.md("\n".join(table)),
    })
