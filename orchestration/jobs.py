"""Jobs: the daily backup of every source (the weekly full is the same job with `mode: full`),
and the maintenance jobs launched from the UI or a schedule: verify, retention, restore preview
and apply. Their schedules are in orchestration/schedules.py."""

import dagster as dg

from assets.recovery.restore import (
    DEFAULT_MODES,
    RestoreRefused,
    Selection,
    load_plan,
    preview,
)
from assets.recovery.restore.apply import apply
from assets.recovery.retention import retention
from assets.recovery.verify.check import backup_files_match_manifests
from orchestration.partitions import daily_snapshots
from orchestration.resources import CrmClient, HighLevelResource, KeapResource
from orchestration.storage.snapshots import SnapshotStorage

# the backups only: the catalog (unpartitioned, over every day) is refreshed by the automation
# after them, and its verify check runs on its own schedule (verify_job)
BACKUP_SELECTION = dg.AssetSelection.groups("greenhouse", "keap", "highlevel")

backup_job = dg.define_asset_job(
    "backup_job",
    selection=BACKUP_SELECTION,
    partitions_def=daily_snapshots,
    description="Back up Greenhouse, Keap and HighLevel for one day (the automation refreshes "
    "the catalog after it).",
)

verify_job = dg.define_asset_job(
    "verify_job",
    selection=dg.AssetSelection.checks(backup_files_match_manifests),
    description="Re-hash every backup file against its manifest and check the incremental "
    "chains and the catalog (`talentvault verify`, fast form).",
)

retention_job = dg.define_asset_job(
    "retention_job",
    selection=dg.AssetSelection.assets(retention),
    description="Prune snapshots the retention policy no longer keeps (dry run unless "
    "`apply: true`).",
)


# -- restore (assets/recovery/restore/): preview, then apply the saved plan ------------------
class RestorePreviewConfig(dg.Config):
    """What to compare. One of ids / tag / where, or none for every record."""

    source: str = "keap"                       # keap | highlevel
    as_of: str                                 # e.g. 2025-11-20T18:00:00Z
    ids: list[str] = []
    tag: str = ""
    where: str = ""                            # SQL over the backup view's columns
    fields: list[str] = []                     # restrict to these fields (notes, tasks too)
    modes: list[str] = list(DEFAULT_MODES)     # + "delete-new" to remove records made after T


class RestoreApplyConfig(dg.Config):
    plan_id: str


def _open(source: str, keap: KeapResource, highlevel: HighLevelResource) -> CrmClient:
    if source == "keap":
        return keap.open()
    if source == "highlevel":
        return highlevel.open()
    raise dg.Failure(description=f"source must be keap or highlevel, got {source!r}")


@dg.op(tags={"kind": "restore"})
def restore_preview_op(context: dg.OpExecutionContext, config: RestorePreviewConfig,
                       keap: KeapResource, highlevel: HighLevelResource,
                       storage: SnapshotStorage) -> str:
    """Compares the backup at a point in time with Keap or HighLevel as they are now and saves
    a restore plan: which contacts would be recreated, which fields overwritten (personal values
    masked), which records deleted, which tags, opportunities, notes and tasks changed. Nothing
    is written to Keap or HighLevel. The plan id goes to the apply job."""
    client = _open(config.source, keap, highlevel)
    try:
        plan = preview(storage.path(), config.source, config.as_of,
                       Selection(ids=config.ids or None, tag=config.tag or None,
                                 where=config.where or None),
                       fields=config.fields or None, modes=config.modes, client=client,
                       run_id=context.run_id)
    finally:
        client.close()
    context.add_output_metadata({
        "plan_id": plan.plan_id, "preview": dg.MetadataValue.md(plan.markdown),
        **{k: dg.MetadataValue.int(v) for k, v in sorted(plan.counts.items())}})
    return plan.plan_id


@dg.op(tags={"kind": "restore"})
def restore_apply_op(context: dg.OpExecutionContext, config: RestoreApplyConfig,
                     keap: KeapResource, highlevel: HighLevelResource,
                     storage: SnapshotStorage) -> None:
    """Applies a saved restore plan to Keap or HighLevel, exactly as previewed; refuses (and
    writes nothing) if the records it touches changed since the preview. Safe to re-run: what
    succeeded before is skipped."""
    root = storage.path()
    plan = load_plan(root, config.plan_id)
    client = _open(plan.source, keap, highlevel)
    try:
        counts = apply(root, config.plan_id, client=client, run_id=context.run_id)
    except RestoreRefused as e:
        raise dg.Failure(description=str(e)) from e
    finally:
        client.close()
    metadata = {"plan_id": config.plan_id, "preview": dg.MetadataValue.md(plan.markdown),
                **{k: dg.MetadataValue.int(int(v)) for k, v in sorted(counts.items())}}
    failed = counts.get("failed_retryable", 0) + counts.get("failed_permanent", 0)
    if failed:
        raise dg.Failure(description=f"{failed} writes failed (see the restore ledger); run "
                         "the apply job again with the same plan id to retry them",
                         metadata=metadata)
    context.add_output_metadata(metadata)


@dg.job(description="Preview a point-in-time restore of Keap or HighLevel (writes nothing).")
def restore_preview_job() -> None:
    restore_preview_op()


@dg.job(description="Apply a previewed restore plan to Keap or HighLevel.")
def restore_apply_job() -> None:
    restore_apply_op()
