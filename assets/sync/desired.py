"""`sync/keap_desired`: the Keap state each syncable person should have on day D.

One row per profile (identity/candidate_profiles, partition D) with the fields and managed tags
the mapping document implies, computed set-based in DuckDB from the profile and the Greenhouse
state as of the end of D (applications, jobs, stage history, interviews, offers, rejections).

Who is left out (counted in the metadata, never written):
- records in identity/quarantine (they are in no profile; a profile holding one is dropped too);
- people on the suppression list (any of their emails or candidate ids; see
  orchestration/storage/suppression.py);
- profiles sharing an email with another profile (the match key must be unique: the
  `emails_are_unique` identity check blocks the sync in that case, this is the second line);
- profiles whose `can_email` is false when the mapping says `consent.can_email_false: skip`.

The rules (which event holds, which tag wins) are in docs/sync.md ("Desired state").
"""

import shutil
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow as pa

from assets.identity.config import NormalizationConfig
from assets.identity.inputs import has_partition, load_state
from assets.identity.normalize import connect
from assets.identity.phones import normalize_phones
from assets.sync.mapping import (
    ATS_FIELDS,
    FALLBACK_KEY,
    GREENHOUSE_READS,
    Mapping,
    load_mapping,
)
from orchestration.automation import SYNC_CHAIN
from orchestration.partitions import daily_snapshots
from orchestration.storage import suppression
from orchestration.storage.derived import (
    partition_dir,
    partition_glob,
    read_manifest,
    write_partition,
)
from orchestration.storage.snapshots import SnapshotStorage

NAME = "keap_desired"
SOURCE = "sync"
KEY = dg.AssetKey([SOURCE, NAME])
PROFILES_KEY = dg.AssetKey(["identity", "candidate_profiles"])
QUARANTINE_KEY = dg.AssetKey(["identity", "quarantine"])
# Greenhouse state read (entity -> columns)
STATE: dict[str, list[str]] = {e: list(c) for e, c in GREENHOUSE_READS.items()}
GREENHOUSE_KEYS = [dg.AssetKey(["greenhouse", e]) for e in STATE]
BLANK = r"^[\s\p{Z}]+|[\s\p{Z}]+$"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%gZ"


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _in(values: tuple[str, ...] | list[str]) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")" if values else "(NULL)"


# -- the build ----------------------------------------------------------------------------------
def load_inputs(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> None:
    """Tables `prof` (profiles of D), `quar` (quarantine of D) and `s_<entity>` (Greenhouse
    state as of the end of D)."""
    for name in ("candidate_profiles", "quarantine"):
        if read_manifest(root, name, day) is None:
            raise dg.Failure(f"identity/{name} has no partition {day}: materialize the identity "
                             f"assets for {day} first")
    con.execute(f"CREATE OR REPLACE TEMP TABLE prof AS SELECT * FROM read_parquet("
                f"'{partition_glob(root, 'candidate_profiles', day)}')")
    con.execute(f"CREATE OR REPLACE TEMP TABLE quar AS SELECT * FROM read_parquet("
                f"'{partition_glob(root, 'quarantine', day)}')")
    for entity, cols in STATE.items():
        load_state(con, root, "greenhouse", entity, day, cols, f"s_{entity}")


def _register_rules(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """The mapping's tables: event tags, stage and reason maps, tag groups and categories."""
    rows = [(e, t) for e, tags in m.cross.items() for t in tags]
    tables = {
        "_event_tags": pa.table({"event": [e for e, _ in rows], "tag": [t for _, t in rows]},
                                schema=pa.schema([("event", pa.string()), ("tag", pa.string())])),
        "_stage_map": pa.table({"stage": list(m.stage_map), "tag": list(m.stage_map.values())},
                               schema=pa.schema([("stage", pa.string()), ("tag", pa.string())])),
        "_reason_map": pa.table({"reason": list(m.reason_map), "tag": list(m.reason_map.values())},
                                schema=pa.schema([("reason", pa.string()),
                                                  ("tag", pa.string())])),
    }
    groups = [(member, g, rank) for g, members in m.exclusive.items()
              for rank, member in enumerate(members)]
    tables["_groups"] = pa.table(
        {"member": [x[0] for x in groups], "grp": [x[1] for x in groups],
         "rnk": [x[2] for x in groups]},
        schema=pa.schema([("member", pa.string()), ("grp", pa.string()), ("rnk", pa.int64())]))
    tables["_categories"] = pa.table(
        {"member": list(m.categories), "category": list(m.categories.values())},
        schema=pa.schema([("member", pa.string()), ("category", pa.string())]))
    for name, table in tables.items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")


def _templated(template: str | None, subs: dict[str, str]) -> str:
    """SQL for a tag template with `{placeholder}` replaced by SQL expressions."""
    if template is None:
        return "NULL::VARCHAR"
    expr = _q(template)
    for key, sql in subs.items():
        if "{" + key + "}" in template:
            expr = f"replace({expr}, {_q('{' + key + '}')}, coalesce(CAST({sql} AS VARCHAR), ''))"
    return expr


def _stage_tag_sql(m: Mapping, col: str) -> str:
    unmapped = _templated(m.stage_unmapped, {"stage": col})
    return (f"CASE WHEN {col} IS NULL THEN NULL "
            f"WHEN {col} IN (SELECT sm.stage FROM _stage_map sm) "
            f"THEN (SELECT sm.tag FROM _stage_map sm WHERE sm.stage = {col}) ELSE {unmapped} END")


def _reason_tag_sql(m: Mapping, name: str, kind: str) -> str:
    templated = _templated(m.reason_template, {"reason": name, "reason_type": kind})
    return (f"CASE WHEN {name} IS NULL THEN NULL "
            f"WHEN {name} IN (SELECT rm.reason FROM _reason_map rm) "
            f"THEN (SELECT rm.tag FROM _reason_map rm WHERE rm.reason = {name}) "
            f"ELSE {templated} END")


def _job_tag_sql(m: Mapping, j: str) -> str:
    return (f"CASE WHEN {j}.name IS NULL THEN NULL ELSE " + _templated(
        m.job_template, {"job_name": f"{j}.name", "job_id": f"{j}.id",
                         "department_id": f"{j}.department_id"}) + " END")


def current_state(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """`sync_cur`: per profile, its current application's state and the events that hold."""
    withdrawn = (f"(c.reason_type IN {_in(m.withdrawn_reason_types)} "
                 f"OR c.reason IN {_in(m.withdrawn_reasons)})")
    declined = "coalesce(c.offer_status = 'Rejected', FALSE)"
    events = [
        ("new_application", "c.status = 'in_process' AND c.stages_entered <= 1"),
        ("stage_change", "c.status = 'in_process' AND c.stages_entered > 1"),
        ("interview_scheduled", "c.status = 'in_process' AND c.interview_scheduled"),
        ("offer_extended", "c.status = 'in_process' AND c.offer_status = 'Created'"),
        ("offer_accepted", "c.status = 'hired' AND c.offer_status = 'Accepted'"),
        ("hired", "c.status = 'hired'"),
        ("offer_declined", f"c.status = 'rejected' AND {declined}"),
        ("withdrawn", f"c.status = 'rejected' AND NOT {declined} AND {withdrawn}"),
        ("rejected", f"c.status = 'rejected' AND NOT {declined} AND NOT coalesce({withdrawn}, "
                     "FALSE)"),
    ]
    crossing = [(e, cond) for e, cond in events if e in m.cross]
    items = ", ".join(f"CASE WHEN coalesce({cond}, FALSE) THEN '{e}' END" for e, cond in crossing)
    event_list = f"list_filter([{items}], lambda e: e IS NOT NULL)" if crossing else \
        "[]::VARCHAR[]"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_cur AS
        WITH offer AS (
            SELECT application_id, arg_max(status, (version, id)) AS status FROM s_offers
            WHERE status IS DISTINCT FROM 'Deprecated' GROUP BY ALL),
        intv AS (SELECT application_id, bool_or(status = 'scheduled') AS scheduled
                 FROM s_interviews GROUP BY ALL),
        stg AS (SELECT application_id, count(*) AS n FROM s_application_stages GROUP BY ALL),
        rej AS (SELECT application_id, arg_max(rejection_reason_id, id) AS reason_id
                FROM s_rejection_details GROUP BY ALL),
        c AS (
            SELECT p.profile_id, a.id AS app_id, a.status, a.stage_name, a.job_id, a.source_id,
                   j.name AS job_name, j.department_id, o.status AS offer_status,
                   coalesce(i.scheduled, FALSE) AS interview_scheduled,
                   coalesce(s.n, 0) AS stages_entered, r.name AS reason, r.type_name AS reason_type
            FROM prof p
            JOIN s_applications a ON a.id = p.current_application_id
            LEFT JOIN s_jobs j ON j.id = a.job_id
            LEFT JOIN offer o ON o.application_id = a.id
            LEFT JOIN intv i ON i.application_id = a.id
            LEFT JOIN stg s ON s.application_id = a.id
            LEFT JOIN rej ON rej.application_id = a.id
            LEFT JOIN s_rejection_reasons r ON r.id = rej.reason_id AND a.status = 'rejected'
        )
        SELECT c.*, {event_list} AS events FROM c
    """)


def tags(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """`sync_tags(profile_id, tag)`: the managed tags each profile must carry (exclusive groups
    resolved: within a group the first listed wins), and `sync_managed(tag, category)`."""
    job_scope = ("SELECT p.profile_id, unnest(p.application_ids) AS app_id FROM prof p"
                 if m.job_scope == "all" else
                 "SELECT profile_id, app_id FROM sync_cur")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_tag_src AS
        SELECT c.profile_id, t.tag, NULL::VARCHAR AS family
        FROM (SELECT profile_id, unnest(events) AS event FROM sync_cur) c
        JOIN _event_tags t USING (event)
        UNION ALL
        SELECT c.profile_id, {_stage_tag_sql(m, 'c.stage_name')}, 'stage' FROM sync_cur c
        WHERE c.status = 'in_process'
        UNION ALL
        SELECT x.profile_id, {_job_tag_sql(m, 'j')}, 'job'
        FROM ({job_scope}) x JOIN s_applications a ON a.id = x.app_id
        JOIN s_jobs j ON j.id = a.job_id
        UNION ALL
        SELECT c.profile_id, {_reason_tag_sql(m, 'c.reason', 'c.reason_type')}, 'reason'
        FROM sync_cur c WHERE c.status = 'rejected'
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE sync_tags AS
        WITH s AS (SELECT DISTINCT profile_id, tag, family FROM sync_tag_src
                   WHERE tag IS NOT NULL AND tag <> ''),
        r AS (
            SELECT s.profile_id, s.tag,
                   CASE WHEN gx.grp IS NOT NULL THEN gx.grp ELSE gf.grp END AS grp,
                   CASE WHEN gx.grp IS NOT NULL THEN gx.rnk ELSE gf.rnk END AS rnk
            FROM s LEFT JOIN _groups gx ON gx.member = s.tag
            LEFT JOIN _groups gf ON gf.member = '@' || s.family
        )
        SELECT DISTINCT profile_id, tag FROM r
        QUALIFY grp IS NULL
             OR row_number() OVER (PARTITION BY profile_id, grp ORDER BY rnk, tag) = 1
    """)
    stage_names = "SELECT name AS v FROM s_job_stages UNION SELECT stage_name FROM s_applications"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_managed AS
        WITH t AS (
            SELECT tag, NULL::VARCHAR AS family FROM _event_tags
            UNION ALL SELECT tag, 'stage' FROM _stage_map
            UNION ALL SELECT {_stage_tag_sql(m, 'n.v')}, 'stage' FROM ({stage_names}) n
            UNION ALL SELECT {_job_tag_sql(m, 'j')}, 'job' FROM s_jobs j
            UNION ALL SELECT tag, 'reason' FROM _reason_map
            UNION ALL SELECT {_reason_tag_sql(m, 'r.name', 'r.type_name')}, 'reason'
                      FROM s_rejection_reasons r
        ),
        c AS (
            SELECT t.tag, coalesce(cx.category, cf.category) AS category,
                   t.family IS NOT NULL AS templated
            FROM t LEFT JOIN _categories cx ON cx.member = t.tag
            LEFT JOIN _categories cf ON cf.member = '@' || t.family
            WHERE t.tag IS NOT NULL AND t.tag <> ''
        )
        SELECT tag, arg_min(category, (templated, category)) AS category FROM c GROUP BY tag
    """)


def _render(source: str) -> str:
    """SQL turning an ATS field of `sync_src` into text (timestamps ISO-8601 UTC, ms)."""
    kind = ATS_FIELDS[source].type
    col = f"s.{source}"
    if kind == "timestamp":
        return f"strftime({col}, '{TS_FORMAT}')"
    if kind == "flag":
        return f"CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END"
    return f"CAST({col} AS VARCHAR)"


def _apply(con: duckdb.DuckDBPyConnection, m: Mapping, cfg: NormalizationConfig
           ) -> dict[str, str]:
    """SQL of each field's final value over `sync_src s` (phones normalized set-based into
    `_sync_phone_<i>` lookup tables first)."""
    out: dict[str, str] = {}
    for i, f in enumerate(m.fields):
        v = _render(f.source)
        for j, t in enumerate(f.transforms):
            if t.name == "trim":
                v = f"regexp_replace({v}, '{BLANK}', '', 'g')"
            elif t.name == "lower":
                v = f"lower({v})"
            elif t.name == "upper":
                v = f"upper({v})"
            elif t.name == "title":
                v = (f"array_to_string(list_transform(string_split(lower({v}), ' '), "
                     f"lambda w: upper(w[1:1]) || w[2:]), ' ')")
            elif t.name == "date":
                v = (f"CAST(CAST(coalesce(try_cast({v} AS TIMESTAMPTZ), "
                     f"CAST(try_cast({v} AS DATE) AS TIMESTAMPTZ)) AS DATE) AS VARCHAR)")
            elif t.name == "e164":
                table = f"_sync_phone_{i}_{j}"
                normalize_phones(con, f"SELECT {v} AS raw FROM sync_src s", table, cfg)
                v = f"(SELECT e164 FROM {table} WHERE raw = {v})"
            elif t.name == "value_map":
                entries = [(k, x) for k, x in t.values if k != FALLBACK_KEY]
                fallback = dict(t.values).get(FALLBACK_KEY)
                whens = " ".join(f"WHEN {v} = {_q(k)} THEN {_q(x)}" for k, x in entries)
                other = _q(fallback) if fallback is not None else v
                v = f"(CASE WHEN {v} IS NULL THEN NULL {whens} ELSE {other} END)"
        v = f"nullif({v}, '')"
        if f.null == "default":
            v = f"coalesce({v}, {_q(f.default or '')})"
        out[f.target] = v
    return out


def fields(con: duckdb.DuckDBPyConnection, m: Mapping, cfg: NormalizationConfig) -> None:
    """`sync_fields(profile_id, fields MAP)` after transforms and null policies."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE sync_src AS
        WITH apps AS (
            SELECT x.profile_id, max(a.created_at) AS last_applied_at
            FROM (SELECT profile_id, unnest(application_ids) AS app_id FROM prof) x
            JOIN s_applications a ON a.id = x.app_id GROUP BY ALL
        )
        SELECT p.*, c.job_name AS current_job_name, c.department_id AS current_department_id,
               c.source_id AS current_source_id,
               CASE WHEN c.status = 'rejected' THEN c.reason END AS current_rejection_reason,
               apps.last_applied_at, len(p.application_ids) AS application_count
        FROM prof p LEFT JOIN sync_cur c USING (profile_id) LEFT JOIN apps USING (profile_id)
    """)
    exprs = _apply(con, m, cfg)
    clear = [f.target for f in m.fields if f.null == "clear"]
    entries = ", ".join(f"{{'k': {_q(k)}, 'v': CAST({v} AS VARCHAR)}}" for k, v in exprs.items())
    keep = f"x.v IS NOT NULL OR x.k IN {_in(clear)}" if clear else "x.v IS NOT NULL"
    body = (f"map_from_entries(list_filter([{entries}], lambda x: {keep}))" if exprs
            else "MAP {}::MAP(VARCHAR, VARCHAR)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_fields AS
        SELECT s.profile_id, {body} AS fields FROM sync_src s
    """)


def exclusions(con: duckdb.DuckDBPyConnection, m: Mapping, root: Path) -> None:
    """`sync_excluded(profile_id, reason)`: one reason per left-out profile."""
    suppression.register(con, root)
    skip_consent = "p.can_email IS NOT DISTINCT FROM FALSE" if m.can_email_false == "skip" \
        else "FALSE"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_excluded AS
        WITH cids AS (SELECT profile_id, unnest(candidate_ids) AS cid FROM prof),
        mails AS (SELECT profile_id, unnest(emails) AS e FROM prof),
        quarantined AS (SELECT DISTINCT profile_id FROM cids
                        WHERE cid IN (SELECT candidate_id FROM quar
                                      WHERE candidate_id IS NOT NULL)),
        suppressed AS (
            SELECT profile_id FROM mails
            WHERE tv_identity_hash('email', e) IN (SELECT hash FROM suppressed_hashes)
            UNION SELECT profile_id FROM prof
            WHERE tv_identity_hash('email', email) IN (SELECT hash FROM suppressed_hashes)
            UNION SELECT profile_id FROM cids
            WHERE tv_identity_hash('greenhouse_candidate', cid)
                  IN (SELECT hash FROM suppressed_hashes)),
        shared AS (SELECT DISTINCT profile_id FROM mails WHERE e IN (
                       SELECT e FROM mails GROUP BY e HAVING count(DISTINCT profile_id) > 1))
        SELECT * FROM (
        SELECT p.profile_id,
               CASE WHEN p.profile_id IN (SELECT profile_id FROM quarantined) THEN 'quarantined'
                    WHEN p.profile_id IN (SELECT profile_id FROM suppressed) THEN 'suppressed'
                    WHEN p.email IS NULL THEN 'no_email'
                    WHEN p.profile_id IN (SELECT profile_id FROM shared) THEN 'shared_email'
                    WHEN {skip_consent} THEN 'can_email_false'
               END AS reason
        FROM prof p) WHERE reason IS NOT NULL
    """)


DESIRED_SQL = """
    SELECT p.profile_id, p.email, p.emails, f.fields,
           coalesce(t.tags, []::VARCHAR[]) AS tags,
           coalesce(c.events, []::VARCHAR[]) AS events
    FROM prof p
    JOIN sync_fields f USING (profile_id)
    LEFT JOIN (SELECT profile_id, list_sort(list(DISTINCT tag)) AS tags FROM sync_tags
               GROUP BY ALL) t USING (profile_id)
    LEFT JOIN sync_cur c USING (profile_id)
    WHERE p.profile_id NOT IN (SELECT profile_id FROM sync_excluded)
"""


def phone_config(root: Path, day: str) -> NormalizationConfig:
    """The phone region the identity run of `day` used (its manifest keeps the config)."""
    manifest = read_manifest(root, "candidate_profiles", day) or {}
    region = (manifest.get("config") or {}).get("default_phone_region") or "US"
    validation = (manifest.get("config") or {}).get("phone_validation") or "possible"
    return NormalizationConfig(default_phone_region=region, phone_validation=validation)


def build_desired(con: duckdb.DuckDBPyConnection, root: Path, day: str, m: Mapping) -> None:
    """Every temp table up to `DESIRED_SQL` (the caller writes or reads it)."""
    load_inputs(con, root, day)
    _register_rules(con, m)
    current_state(con, m)
    tags(con, m)
    fields(con, m, phone_config(root, day))
    exclusions(con, m, root)


def manifest_extra(con: duckdb.DuckDBPyConnection, m: Mapping) -> dict[str, Any]:
    managed = con.execute("SELECT tag, category FROM sync_managed ORDER BY tag").fetchall()
    return {
        "mapping_fingerprint": m.fingerprint,
        "mapping_path": str(m.path),
        "managed_tags": [t for t, _ in managed],
        "tag_categories": {t: c for t, c in managed},
        "custom_fields": m.custom_fields(),
        "conflict": m.conflict(),
    }


def write_desired(root: Path, day: str, m: Mapping, run_id: str) -> dict[str, Any]:
    """Build and write partition `day` of sync/keap_desired; returns the manifest and counts
    (no personal values: ids and counts only)."""
    spill = root / SOURCE / f".spill-{uuid.uuid4().hex[:8]}"
    spill.mkdir(parents=True, exist_ok=True)
    con = connect(NormalizationConfig(), spill)
    try:
        build_desired(con, root, day, m)
        manifest = write_partition(con, root, NAME, day, DESIRED_SQL, "profile_id",
                                   run_id=run_id, extra=manifest_extra(con, m), source=SOURCE)
        summary = _summary(con)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return {"manifest": manifest, **summary}


def _summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    excluded = dict(con.execute(
        "SELECT reason, count(*) FROM sync_excluded GROUP BY ALL ORDER BY ALL").fetchall())
    by_tag = con.execute(f"""
        SELECT tag, count(*) FROM (SELECT unnest(tags) AS tag FROM ({DESIRED_SQL}))
        GROUP BY ALL ORDER BY 2 DESC, 1""").fetchall()
    by_event = con.execute(f"""
        SELECT event, count(*) FROM (SELECT unnest(events) AS event FROM ({DESIRED_SQL}))
        GROUP BY ALL ORDER BY 2 DESC, 1""").fetchall()
    by_field = con.execute(f"""
        SELECT k, count(*) FILTER (WHERE v IS NOT NULL), count(*) FILTER (WHERE v IS NULL)
        FROM (SELECT unnest(map_keys(fields)) AS k, unnest(map_values(fields)) AS v
              FROM ({DESIRED_SQL})) GROUP BY ALL ORDER BY 1""").fetchall()
    profiles = con.execute("SELECT count(*) FROM prof").fetchall()[0][0]
    managed = con.execute("SELECT count(*) FROM sync_managed").fetchall()[0][0]
    return {"profiles_read": profiles, "excluded": excluded, "by_tag": by_tag,
            "by_event": by_event, "by_field": by_field, "managed_tags": managed}


# -- the Dagster asset ----------------------------------------------------------------------------
class KeapDesiredConfig(dg.Config):
    """Which mapping document the sync uses."""

    mapping_path: str | None = None
    """Path of the mapping YAML; empty: $TALENTVAULT_SYNC_MAPPING, else the shipped
    assets/sync/default_mapping.yaml."""


def _md(header: list[str], rows: list[tuple]) -> str:
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
            "**Contacts per tag**\n\n" + _md(["tag", "contacts"], out["by_tag"])
            + "\n\n**Contacts per event**\n\n" + _md(["event", "contacts"], out["by_event"])
            + "\n\n**Fields**\n\n" + _md(["Keap field", "with a value", "cleared"],
                                         out["by_field"])
            + "\n\n**Left out**\n\n" + _md(["reason", "profiles"],
                                           sorted(out["excluded"].items()))),
    })


sync_desired_assets = [keap_desired]


def has_inputs(root: Path, day: str) -> bool:
    """Whether every input of `day` has landed (for callers that want to skip, not fail)."""
    return (read_manifest(root, "candidate_profiles", day) is not None
            and all(has_partition(root, "greenhouse", e, day) for e in STATE))
