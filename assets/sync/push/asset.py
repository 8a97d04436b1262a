"""The `sync/keap_push` asset: one push per changeset partition, in the `keap_push` pool."""

from collections.abc import Iterator

import dagster as dg

from assets.sync.ledger import parquet_path
from assets.sync.push.run import dead_letter_count, run_push
from orchestration import pools
from orchestration.automation import SYNC_CHAIN
from orchestration.instance import release_abandoned_runs
from orchestration.partitions import daily_snapshots
from orchestration.resources.keap import KeapResource
from orchestration.storage.snapshots import SnapshotStorage

PUSH_KEY = dg.AssetKey(["sync", "keap_push"])
CHANGESET_KEY = dg.AssetKey(["sync", "keap_changeset"])
# a push waiting for its `keap_push` slot frees it from a killed push run, gives up after a
# bounded time naming the run that holds it, and hears SIGTERM (also when run without the code
# location, e.g. `dg.materialize([keap_push])`)
pools.install()


class KeapPushConfig(dg.Config):
    """How the push runs."""

    dry_run: bool = False      # read and plan everything, write nothing (no Keap call, no ledger)
    concurrency: int = 4       # parallel contact writes (all under one rate-limit pacer)
    tag_batch: int = 1000      # contacts per applyTags/removeTags call (Keap's maximum: 1000)


@dg.asset(
    key=PUSH_KEY,
    deps=[CHANGESET_KEY],
    partitions_def=daily_snapshots,
    automation_condition=SYNC_CHAIN,
    group_name="sync",
    kinds={"keap", "parquet"},
    pool="keap_push",
    tags={"talentvault/stage": "sync"},
    check_specs=[dg.AssetCheckSpec(
        "no_dead_letters", asset=PUSH_KEY,
        description="No change of this day was refused by Keap for good. A failure lists "
                    "the change ids; `SELECT * FROM sync.dead_letter` shows the reasons.")],
)
def keap_push(context: dg.AssetExecutionContext, config: KeapPushConfig, keap: KeapResource,
              storage: SnapshotStorage) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Sends the day's Keap changes (sync/keap_changeset) to Keap: new contacts, changed fields
    and tag changes, never a duplicate contact and never a value a person added in Keap. Every
    write is recorded in the sync ledger (`sync.ledger`); writes that failed for a passing reason
    (rate limit, outage) are retried on the next run, and records Keap refuses (e.g. an invalid
    email) go to the dead letter (`sync.dead_letter`) with the reason. With `dry_run` nothing is
    written. Only one push runs at a time."""
    # runs killed mid-way (a push among them) end here as failed, their pool slots freed; the
    # killed push's ledger is compacted by run_push
    released = release_abandoned_runs(context.instance, by=f"push run {context.run_id}")
    if released:
        context.log.info(f"ended {len(released)} run(s) whose process was gone: "
                         + ", ".join(released))
    root = storage.path()
    client = keap.open()
    try:
        result = run_push(client, root, context.partition_key, context.run_id,
                          dry_run=config.dry_run, concurrency=config.concurrency,
                          tag_batch=config.tag_batch, logger=context.log)
    finally:
        client.close()
    dead_today = dead_letter_count(root, context.partition_key)
    dead_total = dead_letter_count(root)
    yield dg.MaterializeResult(metadata={
        **{k: v for k, v in result.counts().items()},
        "dry_run": result.dry_run,
        "dead_letters_today": dead_today,
        "dead_letters_total": dead_total,
        "created_tags": dg.MetadataValue.json(sorted(result.created_tags)),
        "created_custom_fields": dg.MetadataValue.json(sorted(result.created_custom_fields)),
        "ledger_file": dg.MetadataValue.path(result.ledger_file or str(
            parquet_path(root, context.run_id))),
        "summary": dg.MetadataValue.md(result.markdown()),
    })
    yield dg.AssetCheckResult(
        check_name="no_dead_letters", passed=dead_today == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"dead_letters": dead_today, "dead_letters_total": dead_total})
    if result.aborted:
        raise dg.Failure(description=result.aborted, metadata=result.counts())
    if result.sent and not result.succeeded and result.failed_retryable:
        raise dg.Failure(
            description=f"Keap took none of the {result.sent} writes (all failed for a passing "
                        "reason); they are retried on the next run",
            metadata=result.counts())
