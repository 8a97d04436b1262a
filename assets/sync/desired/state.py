"""Inputs and current state: the profiles and the Greenhouse state as of the end of D loaded,
the mapping's rules registered, each profile's current application state."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa

from assets.identity.inputs import load_state
from assets.sync.desired.base import OPTIONAL_STATE, STATE, sql_in
from assets.sync.mapping import Mapping
from orchestration.storage.derived import partition_glob, read_manifest
from orchestration.storage.parquet import duck_path


def load_inputs(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> None:
    """Tables `prof` (profiles of D), `quar` (quarantine of D) and `s_<entity>` (Greenhouse
    state as of the end of D)."""
    for name in ("candidate_profiles", "quarantine"):
        if read_manifest(root, name, day) is None:
            raise dg.Failure(f"identity/{name} has no partition {day}: materialize the identity "
                             f"assets for {day} first")
    con.execute(f"CREATE OR REPLACE TEMP TABLE prof AS SELECT * FROM read_parquet("
                f"'{duck_path(partition_glob(root, 'candidate_profiles', day))}')")
    con.execute(f"CREATE OR REPLACE TEMP TABLE quar AS SELECT * FROM read_parquet("
                f"'{duck_path(partition_glob(root, 'quarantine', day))}')")
    for entity, cols in STATE.items():
        # a job's record too: job tags may name its custom fields ({job_custom:<key>})
        # an interview's `scheduled_at` dates its event (read from the record: no column)
        extra = {"jobs": ["_raw"],
                 "interviews": ["json_extract_string(_raw, '$.scheduled_at') AS scheduled_at"]
                 }.get(entity, [])
        load_state(con, root, "greenhouse", entity, day, [*cols, *extra], f"s_{entity}")
    for entity, cols in OPTIONAL_STATE.items():
        load_state(con, root, "greenhouse", entity, day, cols, f"s_{entity}", required=False)


def register_rules(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """The mapping's tables: event tags, stage and reason maps, tag groups and categories."""
    pair = pa.schema([("event", pa.string()), ("tag", pa.string())])
    rows = [(e, t) for e, tags in m.cross.items() for t in tags]
    once = [(e, t) for e, tags in m.on_event.items() for t in tags]
    tables = {
        "_event_tags": pa.table({"event": [e for e, _ in rows], "tag": [t for _, t in rows]},
                                schema=pair),
        "_on_event_tags": pa.table({"event": [e for e, _ in once],
                                    "tag": [t for _, t in once]}, schema=pair),
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


def current_state(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """`sync_cur`: per profile, its current application's state and the events that hold."""
    withdrawn = (f"(c.reason_type IN {sql_in(m.withdrawn_reason_types)} "
                 f"OR c.reason IN {sql_in(m.withdrawn_reasons)})")
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
