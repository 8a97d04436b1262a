"""The `sync/keap_desired` asset: the day's desired Keap state written, with a summary."""

import dagster as dg

from assets.sync.desired.base import (
    GREENHOUSE_KEYS,
    KEY,
    NAME,
    PROFILES_KEY,
    QUARANTINE_KEY,
    SOURCE,
)
from assets.sync.desired.build import write_desired
from assets.sync.mapping import load_mapping
from orchestration.automation import SYNC_CHAIN
from orchestration.partitions import daily_snapshots
from orchestration.storage import suppression
from orchestration.storage.derived import partition_dir
from orchestration.storage.snapshots import SnapshotStorage


class KeapDesiredConfig(dg.Config):
    """Which mapping document the sync uses."""

    mapping_path: str | None = None
    """Path of the mapping YAML; empty: $TALENTVAULT_SYNC_MAPPING, else the shipped
    assets/sync/default_mapping.yaml."""


def md_table(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


@dg.asset(
    key=KEY,
    deps=[PROFILES_KEY, QUARANTINE_KEY, *GREENHOUSE_KEYS],
    partitions_def=daily_snapshots,
    automation_condition=SYNC_CHAIN,
    group_name="sync",
    kinds={"parquet", "duckdb"},
    tags={"talentvault/stage": "sync"},
    description="What every person's Keap contact should look like today, per the mapping "
    "document: which fields hold what (name, phone, job title, the custom fields such as Last "
    "Stage and Applied Job) and which pipeline tags they carry (Active Applicant, Offer "
    "Extended, Hired, the stage, the job, the rejection reason ...). Quarantined records and "
    "people who asked to be forgotten never appear. Nothing is sent to Keap here: the changeset "
    "compares this with Keap. `SELECT * FROM sync.keap_desired`.",
)
def keap_desired(context: dg.AssetExecutionContext, config: KeapDesiredConfig,
                 storage: SnapshotStorage) -> dg.MaterializeResult:
    root, day = storage.path(), context.partition_key
    mapping = load_mapping(config.mapping_path)
    with suppression.writing(root):  # an erasure waits for this build, and vice versa
        out = write_desired(root, day, mapping, context.run_id)
    manifest = out["manifest"]
    context.log.info("%s: %d profiles to sync of %d; excluded %s; %d managed tags", day,
                     manifest["rows"], out["profiles_read"], out["excluded"],
                     out["managed_tags"])
    return dg.MaterializeResult(metadata={
        "dagster/row_count": manifest["rows"],
        "dagster/column_schema": dg.TableSchema(columns=[
            dg.TableColumn(c["name"], c["type"]) for c in manifest["schema"]]),
        "path": dg.MetadataValue.path(str(partition_dir(root, NAME, day, SOURCE))),
        "profiles_read": out["profiles_read"],
        **{f"excluded/{k}": v for k, v in out["excluded"].items()},
        "managed_tags": out["managed_tags"],
        "mapping_fingerprint": manifest["mapping_fingerprint"],
        "mapping_path": manifest["mapping_path"],
        "preview": dg.MetadataValue.md(
            "**Contacts per tag**\n\n" + md_table(["tag", "contacts"], out["by_tag"])
            + "\n\n**Contacts per event**\n\n" + md_table(["event", "contacts"], out["by_event"])
            + "\n\n**Fields**\n\n" + md_table(["Keap field", "with a value", "cleared"],
                                         out["by_field"])
            + "\n\n**Left out**\n\n" + md_table(["reason", "profiles"],
                                           sorted(out["excluded"].items()))),
    })
