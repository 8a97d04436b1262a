"""The daily Dagster check: `talentvault verify` (fast form) as an asset check on the catalog, run
by `verify_job` on `verify_schedule` (orchestration/jobs.py, schedules.py)."""

import dagster as dg

from assets.catalog.asset import CATALOG_KEY
from assets.recovery.verify.run import verify
from orchestration.automation import ON_ITS_SCHEDULE_ONLY
from orchestration.storage.snapshots import SnapshotStorage


@dg.asset_check(
    asset=CATALOG_KEY,
    name="backup_files_match_manifests",
    description="Every backup and derived file re-hashes to the sha256 its manifest records, "
    "holds the rows it records, nothing unlisted sits beside it, every manifest field and the "
    "suppression list match their seals, every incremental partition has its base, and every "
    "catalog view reads. Fails naming each damaged file and changed field.",
    blocking=False,
    # not run with the catalog's automated refreshes: it re-hashes every file (verify_schedule)
    automation_condition=ON_ITS_SCHEDULE_ONLY,
)
def backup_files_match_manifests(context: dg.AssetCheckExecutionContext,
                                 storage: SnapshotStorage) -> dg.AssetCheckResult:
    report = verify(storage.path(), read_data=False, run_id=context.run.run_id)
    for p in report.problems:
        context.log.error("damaged %s: %s", p.path, p.reason)
    paths = report.damaged_paths
    return dg.AssetCheckResult(
        passed=report.ok,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if report.ok else f"{len(paths)} damaged file(s) or partition(s)",
        metadata={
            "damaged_count": len(paths),
            "damaged_paths": dg.MetadataValue.md(
                "\n".join(f"- `{p}`" for p in paths[:20]) or "none"),
            "partitions_checked": report.partitions,
            "files_checked": report.files,
            "bytes_checked": report.bytes,
            "catalog_views_read": report.views,
            "partitions_sealed": report.sealed,
            "partitions_unsealed": report.unsealed,
            "warnings": len(report.warnings),
        },
    )
