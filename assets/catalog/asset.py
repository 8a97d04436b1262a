"""The catalog asset: `catalog.duckdb`, the SQL views over every snapshot of every day.

Unpartitioned: one file describes every day, so it is one asset, not one per day. It reads every
partition of the backups and is refreshed by the automation sensor after any of them lands
(`CATALOG_REFRESH`, orchestration/automation.py), not by the backup jobs."""

import dagster as dg

from assets.catalog.views import describe, write_catalog_file
from assets.greenhouse.extract import SPECS as GREENHOUSE
from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from orchestration.automation import CATALOG_REFRESH
from orchestration.storage import checkpoints
from orchestration.storage.snapshots import SnapshotStorage

EXTRACT_KEYS = [spec.key for spec in (*GREENHOUSE, *KEAP, *HIGHLEVEL)]
CATALOG_KEY = dg.AssetKey(["backups", "catalog"])


@dg.asset(
    key=CATALOG_KEY,
    group_name="backups",
    kinds={"duckdb"},
    deps=EXTRACT_KEYS,
    automation_condition=CATALOG_REFRESH,
    description="The SQL catalog over every snapshot: `<source>.<entity>` (current state), "
    "`<source>.<entity>_history` and `<source>.<entity>_as_of(ts)`. Query it with "
    "`talentvault sql` (confined to the backup files, every query audited); the saved "
    "`data/catalog.duckdb` is for trusted tools (not a locked door).",
)
def catalog(context: dg.AssetExecutionContext, storage: SnapshotStorage) -> dg.MaterializeResult:
    root = storage.path()
    # history checkpoints that are due (every 28 partitions of an entity): the state views
    # then rank a checkpoint plus the partitions after it (orchestration/storage/checkpoints.py)
    made = checkpoints.refresh(root)
    if made["built"] or made["removed"]:
        context.log.info("history checkpoints: %d built, %d out of date removed",
                         made["built"], made["removed"])
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
