"""The `sync/reverse` asset: Keap -> Greenhouse for the fields the mapping's `reverse` section
declares, after the day's forward push, in the `greenhouse_write` pool."""

from collections.abc import Iterator

import dagster as dg

from assets.sync.mapping import MappingError, load_mapping
from assets.sync.reverse.base import KEY
from assets.sync.reverse.run import run_reverse
from orchestration.automation import SYNC_CHAIN
from orchestration.partitions import daily_snapshots
from orchestration.resources.greenhouse import GreenhouseResource
from orchestration.storage.derived import read_manifest
from orchestration.storage.snapshots import SnapshotStorage

DEPS = [dg.AssetKey(k) for k in (
    ["sync", "keap_push"], ["sync", "keap_desired"], ["identity", "candidate_profiles"],
    ["identity", "keap_contacts"], ["keap", "contacts"], ["keap", "tags"],
    ["keap", "custom_fields"], ["greenhouse", "candidates"], ["greenhouse", "candidate_tags"],
    ["greenhouse", "custom_fields"])]


def declares_reverse(path: str | None = None) -> bool:
    """Does the mapping in use declare reverse fields? (A mapping that does not load: no; the
    forward sync fails on it with the problem.)"""
    try:
        return bool(load_mapping(path).reverse)
    except (MappingError, OSError):
        return False


class ReverseConfig(dg.Config):
    """How the reverse sync runs."""

    dry_run: bool = False      # plan and report, write nothing (no call, no ledger, no plan file)


@dg.asset(
    key=KEY,
    deps=DEPS,
    partitions_def=daily_snapshots,
    # off by default: without reverse fields in the mapping the automation never starts it
    automation_condition=SYNC_CHAIN if declares_reverse() else None,
    group_name="sync",
    kinds={"greenhouse", "parquet"},
    pool="greenhouse_write",
    tags={"talentvault/stage": "sync"},
    check_specs=[dg.AssetCheckSpec(
        "no_reverse_dead_letters", asset=KEY,
        description="No Greenhouse write of this day was refused for good. "
                    "`SELECT * FROM sync.reverse_dead_letter` shows the reasons.")],
)
def reverse(context: dg.AssetExecutionContext, config: ReverseConfig,
            greenhouse: GreenhouseResource,
            storage: SnapshotStorage) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Keap -> Greenhouse for the fields the mapping's `reverse` section declares (e.g. a person
    opting out of email in Keap becomes a Greenhouse candidate tag): each field's conflict rule
    decides, our own earlier writes in either direction are recognised from the ledgers and never
    sent back, every write is in `sync.reverse_ledger`. Nothing happens without that section."""
    root, day = storage.path(), context.partition_key
    desired = read_manifest(root, "keap_desired", day, "sync") or {}
    mapping = load_mapping(desired.get("mapping_path"))
    client = greenhouse.open() if mapping.reverse and not config.dry_run else None
    try:
        result = run_reverse(client, root, day, context.run_id, mapping.reverse,
                             dry_run=config.dry_run, logger=context.log)
    finally:
        if client is not None:
            client.close()
    if not mapping.reverse:
        context.log.info("the mapping declares no reverse fields: nothing read, nothing written")
    dead = result.failed_permanent
    yield dg.MaterializeResult(metadata={**result.counts(), "dry_run": result.dry_run,
                                         "created_tags": dg.MetadataValue.json(
                                             sorted(result.created_tags))})
    yield dg.AssetCheckResult(check_name="no_reverse_dead_letters", passed=dead == 0,
                              severity=dg.AssetCheckSeverity.WARN,
                              metadata={"dead_letters": dead})
    if result.aborted:
        raise dg.Failure(description=result.aborted, metadata=result.counts())
