"""Identity assets: one profile per real person, the quarantine, Keap contacts by normalized
email, the duplicates review list and the field audit. Daily partitions, like the backups."""

from typing import Any

import dagster as dg

from assets.identity.build import (
    CANDIDATE_PROFILES,
    KEAP_CONTACTS,
    QUARANTINE,
    IdentityBuild,
    build_identity,
)
from assets.identity.config import DuplicatesConfig, FieldProfileConfig, IdentityConfig
from checks import identity as checks
from orchestration.automation import CLOSED_DAY, SYNC_CHAIN
from orchestration.partitions import daily_snapshots
from orchestration.storage import suppression
from orchestration.storage.derived import partition_dir, partition_glob, write_partition
from orchestration.storage.parquet import duck_path
from orchestration.storage.snapshots import SnapshotStorage

GROUP = "identity"
KINDS = {"parquet", "duckdb"}
CANDIDATES = dg.AssetKey(["greenhouse", "candidates"])
APPLICATIONS = dg.AssetKey(["greenhouse", "applications"])
KEAP = dg.AssetKey(["keap", "contacts"])
PROFILES_KEY = dg.AssetKey([GROUP, CANDIDATE_PROFILES])
QUARANTINE_KEY = dg.AssetKey([GROUP, QUARANTINE])
KEAP_KEY = dg.AssetKey([GROUP, KEAP_CONTACTS])
DUPLICATES_KEY = dg.AssetKey([GROUP, "possible_duplicates"])
FIELD_PROFILE_KEY = dg.AssetKey([GROUP, "field_profile"])
TAGS = {"talentvault/stage": "identity"}
# one build reads all three for every output (emails are normalized together), so each output
# declares them all: its automation gate then judges every input of the build
INPUTS = [CANDIDATES, APPLICATIONS, KEAP]


def _schema(manifest: dict[str, Any]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(c["name"], c["type"])
                                   for c in manifest["schema"]])


def _md(header: list[str], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("-" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _profiles_metadata(b: IdentityBuild) -> dict[str, Any]:
    m, c = b.manifests[CANDIDATE_PROFILES], b.counts
    preview = b.con.execute(f"""
        SELECT profile_id, records, len(application_ids), current_status, current_stage_name
        FROM read_parquet('{duck_path(partition_glob(b.root, CANDIDATE_PROFILES, b.day))}')
        ORDER BY records DESC, len(application_ids) DESC, profile_id LIMIT 5""").fetchall()
    return {
        "dagster/row_count": m["rows"],
        "dagster/column_schema": _schema(m),
        "path": dg.MetadataValue.path(str(partition_dir(b.root, CANDIDATE_PROFILES, b.day))),
        "candidates_read": c["candidates"], "applications_read": c["applications"],
        "profiled_candidates": c["profiled_candidates"],
        "profiles_with_several_records": c["profiles_with_several_records"],
        "merged_candidate_ids": c["merged_candidate_ids"],
        "clustering_rounds": c["clustering_rounds"],
        "distinct_emails": c["distinct_emails"], "email_library_calls": c["email_library_calls"],
        "distinct_phones": c["distinct_phones"], "phone_library_calls": c["phone_library_calls"],
        "build": c["build"],
        **({"recomputed_candidates": c["region_candidates"],
            "recomputed_applications": c["region_applications"]}
           if "region_candidates" in c else {}),
        "seconds": dg.MetadataValue.json(b.timings),
        "preview": dg.MetadataValue.md(_md(
            ["profile id", "records", "applications", "current status", "current stage"],
            preview)),
    }


def _quarantine_metadata(b: IdentityBuild) -> dict[str, Any]:
    m = b.manifests[QUARANTINE]
    rows = b.con.execute(f"""
        SELECT entity, reason, count(*),
               array_to_string(list(record_id ORDER BY record_id)[:5], ', ')
        FROM read_parquet('{duck_path(partition_glob(b.root, QUARANTINE, b.day))}')
        GROUP BY ALL ORDER BY ALL""").fetchall()
    return {
        "dagster/row_count": m["rows"],
        "dagster/column_schema": _schema(m),
        "path": dg.MetadataValue.path(str(partition_dir(b.root, QUARANTINE, b.day))),
        **{f"{e}/{r}": n for e, r, n, _ in rows},
        "by_reason": dg.MetadataValue.md(_md(["entity", "reason", "records", "first ids"],
                                             rows)),
    }


def _keap_metadata(b: IdentityBuild) -> dict[str, Any]:
    m = b.manifests[KEAP_CONTACTS]
    no_email = b.con.execute(f"""
        SELECT count(*) FILTER (WHERE email IS NULL)
        FROM read_parquet('{duck_path(partition_glob(b.root, KEAP_CONTACTS, b.day))}')
    """).fetchall()[0][0]
    shared = b.counts["keap_shared_emails"]
    return {
        "preview": dg.MetadataValue.md(_md(
            ["contacts", "with a valid email", "without", "emails on several contacts"],
            [(m["rows"], m["rows"] - no_email, no_email, shared)])),
        "dagster/row_count": m["rows"],
        "dagster/column_schema": _schema(m),
        "path": dg.MetadataValue.path(str(partition_dir(b.root, KEAP_CONTACTS, b.day))),
        "contacts_without_valid_email": no_email,
        "emails_shared_by_several_contacts": b.counts["keap_shared_emails"],
        "keap_backed_up": b.keap_backed_up,
    }


@dg.multi_asset(
    name="identity_profiles",
    specs=[
        dg.AssetSpec(
            PROFILES_KEY, deps=INPUTS, group_name=GROUP, kinds=KINDS,
            tags=TAGS, automation_condition=SYNC_CHAIN,
            description="One row per real person: Greenhouse candidate records that share a "
            "normalized email (or were merged in Greenhouse) become one profile, with the "
            "latest non-empty name, phone and company, every email and application, and the "
            "current stage of the most recent application. This is what the Keap sync reads. "
            "`SELECT * FROM identity.candidate_profiles`."),
        dg.AssetSpec(
            QUARANTINE_KEY, deps=INPUTS, group_name=GROUP, kinds=KINDS,
            tags=TAGS, automation_condition=SYNC_CHAIN,
            description="Every candidate and application that cannot be synced, with a reason "
            "(no email, invalid email, conflicting identities, a field in an unexpected "
            "shape, an application whose candidate is missing or quarantined), the record id "
            "and the backup partition it came from. Fix the record in Greenhouse and it "
            "leaves the quarantine on the next run."),
        dg.AssetSpec(
            KEAP_KEY, deps=INPUTS, group_name=GROUP, kinds=KINDS, tags=TAGS,
            automation_condition=SYNC_CHAIN,
            description="Keap contacts with normalized emails and E.164 phones: what the sync "
            "matches profiles against (never creating a second contact for an email)."),
    ],
    check_specs=checks.profile_check_specs(),
    partitions_def=daily_snapshots,
    can_subset=False,
    pool="identity",
)
def identity_profiles(context: dg.AssetExecutionContext, config: IdentityConfig,
                      storage: SnapshotStorage):
    # an erasure waits for this build (and the build for an erasure): no profile is landed
    # from data read before the person was erased
    with suppression.writing(storage.path()):
        b = build_identity(storage.path(), context.partition_key, config, context.run_id)
    try:
        q = b.counts["quarantined"]
        context.log.info(
            "%s: %d profiles from %d candidates; quarantined %s; %s; %.1fs",
            context.partition_key, b.counts["profiles"], b.counts["candidates"], q,
            b.counts["build"], sum(b.timings.values()))
        yield dg.MaterializeResult(asset_key=PROFILES_KEY, metadata=_profiles_metadata(b))
        yield dg.MaterializeResult(asset_key=QUARANTINE_KEY, metadata=_quarantine_metadata(b))
        yield dg.MaterializeResult(asset_key=KEAP_KEY, metadata=_keap_metadata(b))
        run = checks.evaluate_profile_checks(b)
        context.log.info("identity checks: %s (%s)", {
            r.check_name: r.passed for r in run.results}, run.timings)
        yield from run.results
    finally:
        b.close()


@dg.asset(
    key=DUPLICATES_KEY,
    deps=[PROFILES_KEY],
    automation_condition=CLOSED_DAY,
    group_name=GROUP,
    kinds=KINDS,
    tags=TAGS,
    partitions_def=daily_snapshots,
    description="A review list of profile pairs that look like the same person under "
    "different emails (same phone and the same or a very similar name), with a score. For a "
    "recruiter to check and merge in Greenhouse if right: nothing is merged automatically.",
)
def possible_duplicates(context: dg.AssetExecutionContext, config: DuplicatesConfig,
                        storage: SnapshotStorage) -> dg.MaterializeResult:
    from assets.identity.duplicates import NAME
    from assets.identity.duplicates import possible_duplicates as find
    from assets.identity.normalize import connect

    root, day = storage.path(), context.partition_key
    profiles = partition_glob(root, CANDIDATE_PROFILES, day)
    if not (partition_dir(root, CANDIDATE_PROFILES, day) / "_manifest.json").exists():
        raise dg.Failure(f"identity/candidate_profiles has no partition {day}: materialize it "
                         "first")
    con = connect(IdentityConfig())
    try:
        counts = find(con, f"SELECT * FROM read_parquet('{duck_path(profiles)}')", config)
        manifest = write_partition(con, root, NAME, day, "SELECT * FROM possible_duplicates",
                                   "profile_id_a, profile_id_b", run_id=context.run_id,
                                   extra={"config": config.model_dump()})
        top = con.execute("""
            SELECT profile_id_a, profile_id_b, score, rule, shared_phones
            FROM possible_duplicates ORDER BY score DESC, profile_id_a LIMIT 10""").fetchall()
    finally:
        con.close()
    context.log.info("%s: %s", day, counts)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": manifest["rows"],
        "dagster/column_schema": _schema(manifest),
        "path": dg.MetadataValue.path(str(partition_dir(root, NAME, day))),
        **counts,
        "preview": dg.MetadataValue.md(_md(
            ["profile a", "profile b", "score", "rule", "shared phones"], top)),
    })


def _extract_keys() -> list[dg.AssetKey]:
    from assets.greenhouse.extract import SPECS as GREENHOUSE
    from assets.highlevel.extract import SPECS as HIGHLEVEL
    from assets.keap.extract import SPECS as KEAP_SPECS

    return [s.key for s in (*GREENHOUSE, *KEAP_SPECS, *HIGHLEVEL)]


@dg.asset(
    key=FIELD_PROFILE_KEY,
    deps=_extract_keys(),
    automation_condition=CLOSED_DAY,
    group_name=GROUP,
    kinds=KINDS,
    tags=TAGS,
    partitions_def=daily_snapshots,
    check_specs=checks.field_check_specs(FIELD_PROFILE_KEY),
    description="The field audit of every Greenhouse, Keap and HighLevel entity: per field, "
    "how often it is empty, how many distinct values, the most common values (personal "
    "fields shown as shapes like `Aa a.a9@a.a`), what the values look like (email, phone, "
    "date, code, free text) and what changed since the previous day. "
    "`SELECT * FROM identity.field_profile`.",
)
def field_profile(context: dg.AssetExecutionContext, config: FieldProfileConfig,
                  storage: SnapshotStorage):
    from assets.catalog.views import backed_up_entities
    from assets.identity import field_profile as fp
    from assets.identity.normalize import connect

    root, day = storage.path(), context.partition_key
    entities = [(s, e) for s, e, folder in backed_up_entities(root)
                if any(p.name.split("=", 1)[1] <= day for p in folder.glob("snapshot_date=*"))]
    con = connect(IdentityConfig())
    try:
        fp.profile_entities(con, root, day, entities)
        baseline = fp.field_profile(con, root, day, config)
        manifest = write_partition(con, root, fp.NAME, day, "SELECT * FROM field_profile",
                                   "source, entity, field", run_id=context.run_id,
                                   extra={"baseline": baseline, "config": config.model_dump()})
        table = fp.markdown(con)
        summary = fp.summary(con)
        missing = fp.missing_sync_fields(con, entities)
    finally:
        con.close()
    yield dg.MaterializeResult(metadata={
        "dagster/row_count": manifest["rows"],
        "dagster/column_schema": _schema(manifest),
        "path": dg.MetadataValue.path(str(partition_dir(root, fp.NAME, day))),
        "entities": len(entities),
        "baseline": baseline or "none (first audit)",
        "fields_drifted": len(summary["drifted"]),
        "fields_with_unmapped_values": len(summary["unmapped"]),
        "audit": dg.MetadataValue.md(table),
    })
    yield from checks.evaluate_field_checks(FIELD_PROFILE_KEY, day, baseline, summary,
                                            missing)


identity_assets = [identity_profiles, possible_duplicates, field_profile]
