"""The `sync/keap_changeset` asset: the day's changeset built, previewed in its metadata."""

import dagster as dg

from assets.sync.changeset import state
from assets.sync.changeset.base import ACTIONS, NAME, REJECTS, SOURCE
from assets.sync.changeset.build import build_changeset
from assets.sync.changeset.summary import changeset_partition
from orchestration.automation import SYNC_CHAIN
from orchestration.partitions import daily_snapshots
from orchestration.storage import suppression
from orchestration.storage.derived import partition_dir
from orchestration.storage.snapshots import SnapshotStorage

CHANGESET_KEY = dg.AssetKey([SOURCE, NAME])
DESIRED_KEY = dg.AssetKey([SOURCE, state.DESIRED])
DEPS = [DESIRED_KEY, dg.AssetKey(["identity", "candidate_profiles"]),
        dg.AssetKey(["identity", "keap_contacts"]), dg.AssetKey(["keap", "contacts"]),
        dg.AssetKey(["keap", "tags"]), dg.AssetKey(["keap", "custom_fields"])]


@dg.asset(
    key=CHANGESET_KEY,
    deps=DEPS,
    group_name=SOURCE,
    kinds={"parquet", "duckdb"},
    tags={"talentvault/stage": "sync"},
    partitions_def=daily_snapshots,
    automation_condition=SYNC_CHAIN,
    description="What the Keap sync will change, before anything is written: contacts to "
    "create (people Keap does not have yet, matched by email), fields to update (only the "
    "ones that differ; values people added in Keap are kept), tags to add and tags to remove "
    "(only tags the mapping controls). One row per change, with the Keap contact id and the "
    "names of the fields. Keap duplicates and fields kept because someone set them in Keap "
    "(fields the mapping marks keap_wins) are noted in `conflict`. Read it with "
    "`talentvault sync preview` or `SELECT * FROM sync.keap_changeset`. Values Keap would "
    "refuse (longer than Keap allows, e.g. a first name over 40 characters, or a bad address "
    "someone typed into Keap) are not sent: they are listed with the reason and the fix in "
    "`sync.keap_rejects` and the preview. Runs only when the identity checks passed.",
)
def keap_changeset(context: dg.AssetExecutionContext,
                   storage: SnapshotStorage) -> dg.MaterializeResult:
    from assets.sync import preview

    root, day = storage.path(), context.partition_key
    with suppression.writing(root):  # an erasure waits for this build, and vice versa
        b = build_changeset(root, day, context.run_id)
    try:
        counts = b.manifest["counts"]
        context.log.info("%s: %s (%s)", day, {a: counts[a] for a in ACTIONS}, b.timings)
        p = preview.from_connection(b.con, day, limit=10, rejects="rejects")
    finally:
        b.close()
    return dg.MaterializeResult(metadata={
        "dagster/row_count": b.manifest["rows"],
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(c["name"], c["type"]) for c in b.manifest["schema"]]),
        "path": dg.MetadataValue.path(str(changeset_partition(root, day))),
        **{a: counts[a] for a in ACTIONS},
        "contacts_touched": counts["contacts_touched"],
        "fields_touched": dg.MetadataValue.json(counts["fields_touched"]),
        "conflicts": counts["conflicts"],
        "fields_kept_keap_wins": counts["fields_kept_keap_wins"],
        "skipped": counts["skipped_dead_letter"] + counts["skipped_shared_contact"],
        "skipped_dead_letter": counts["skipped_dead_letter"],
        "skipped_shared_contact": counts["skipped_shared_contact"],
        "rejected": counts["rejected"],
        "rejected_contacts": counts["rejected_contacts"],
        "rejects_path": dg.MetadataValue.path(str(partition_dir(root, REJECTS, day, SOURCE))),
        "keap_contacts": b.counts["keap_contacts"],
        "ledger_writes_overlaid": b.counts["ledger_writes_overlaid"],
        "seconds": dg.MetadataValue.json(b.timings),
        "preview": dg.MetadataValue.md(preview.markdown(p)),
    })
