"""The event stream: every event of the taxonomy, derived from the Greenhouse records that carry
its own time, once.

An application's life is read from the records that date each step, not from its state at the
end of a day, so a person scheduled for an interview, rejected and re-applying in one day shows
three events in order:

  new_application      the application               its `created_at`
  stage_change         each stage row but the first  its `entered_at`
  interview_scheduled  each interview past to_be_scheduled (and not skipped)
                                                     its `scheduled_at` (else `updated_at`)
  offer_extended       the application's first offer its `created_at`
  offer_accepted       an offer Accepted             its `resolved_at` (else `updated_at`)
  offer_declined       an offer Rejected             its `resolved_at` (else `updated_at`)
  hired                an application hired          the accepted offer's time, else its last
                                                     activity
  withdrawn / rejected an application rejected without a declined offer, by the reason's
                       type (the mapping's `withdrawn_when`)   its `rejected_at`

An event's id is a hash of its kind and source record, so it is the same every day it can be
derived. Partition D of `sync/events` holds the events first derived on D (those of earlier
partitions are not repeated): each event is recorded once, with the day it was first seen,
its source record and time, the application, candidate and profile (ids only). Applications of
a quiet status (converted prospects) have none. `sync.events` in SQL reads them all.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from assets.sync.desired.base import SOURCE, sql_in
from assets.sync.mapping import Mapping
from assets.sync.mapping.vocabulary import CROSSABLE_EVENTS
from orchestration.storage.derived import output_dir, write_partition
from orchestration.storage.parquet import duck_path

NAME = "events"
# the taxonomy's order breaks ties of one instant (an application's creation before its stage)
ORDER = {e: i for i, e in enumerate(CROSSABLE_EVENTS)}
COLUMNS = ("event_id", "event", "occurred_at", "profile_id", "candidate_id", "application_id",
           "source_entity", "source_id", "detail")


def derive(con: duckdb.DuckDBPyConnection, m: Mapping) -> None:
    """`sync_events_all`: every event the state as of the end of D implies (tables `prof`,
    `s_*` loaded by assets/sync/desired/state.py)."""
    withdrawn = (f"(r.type_name IN {sql_in(m.withdrawn_reason_types)} "
                 f"OR r.name IN {sql_in(m.withdrawn_reasons)})")
    order = " ".join(f"WHEN '{e}' THEN {i}" for e, i in ORDER.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_events_all AS
        WITH apps AS (
            SELECT a.* FROM s_applications a
            WHERE a.status IS NULL OR a.status NOT IN {sql_in(m.quiet_statuses)}),
        owner AS (SELECT unnest(application_ids) AS app_id, profile_id FROM prof),
        first_offer AS (
            SELECT application_id, arg_min(id, (version, id)) AS id FROM s_offers GROUP BY ALL),
        accepted AS (
            SELECT application_id, max(coalesce(resolved_at, updated_at)) AS at FROM s_offers
            WHERE status = 'Accepted' GROUP BY ALL),
        declined AS (SELECT DISTINCT application_id FROM s_offers WHERE status = 'Rejected'),
        rej AS (SELECT application_id, arg_max(rejection_reason_id, id) AS reason_id,
                       arg_max(id, id) AS detail_id, max(rejected_at) AS at
                FROM s_rejection_details GROUP BY ALL),
        stage_rows AS (
            SELECT s.*, row_number() OVER (PARTITION BY s.application_id
                                           ORDER BY s.entered_at, s.id) AS n
            FROM s_application_stages s),
        e AS (
            SELECT 'new_application' AS event, a.id AS application_id, a.candidate_id,
                   a.created_at AS occurred_at, 'applications' AS source_entity,
                   a.id AS source_id, NULL::VARCHAR AS detail FROM apps a
            UNION ALL
            SELECT 'stage_change', a.id, a.candidate_id, s.entered_at, 'application_stages',
                   s.id, js.name
            FROM stage_rows s JOIN apps a ON a.id = s.application_id
            LEFT JOIN s_job_stages js ON js.id = s.job_interview_stage_id
            WHERE s.n > 1 AND s.entered_at IS NOT NULL
            UNION ALL
            SELECT 'interview_scheduled', a.id, a.candidate_id,
                   coalesce(TRY_CAST(i.scheduled_at AS TIMESTAMPTZ), i.updated_at),
                   'interviews', i.id, i.status
            FROM s_interviews i JOIN apps a ON a.id = i.application_id
            WHERE i.status NOT IN ('to_be_scheduled', 'skipped')
            UNION ALL
            SELECT 'offer_extended', a.id, a.candidate_id, o.created_at, 'offers', o.id, NULL
            FROM first_offer f JOIN s_offers o ON o.id = f.id
            JOIN apps a ON a.id = o.application_id
            UNION ALL
            SELECT CASE o.status WHEN 'Accepted' THEN 'offer_accepted'
                                 ELSE 'offer_declined' END,
                   a.id, a.candidate_id, coalesce(o.resolved_at, o.updated_at), 'offers', o.id,
                   NULL
            FROM s_offers o JOIN apps a ON a.id = o.application_id
            WHERE o.status IN ('Accepted', 'Rejected')
            UNION ALL
            SELECT 'hired', a.id, a.candidate_id,
                   coalesce(ac.at, a.last_activity_at, a.updated_at), 'applications', a.id,
                   NULL
            FROM apps a LEFT JOIN accepted ac ON ac.application_id = a.id
            WHERE a.status = 'hired'
            UNION ALL
            SELECT CASE WHEN coalesce({withdrawn}, FALSE) THEN 'withdrawn' ELSE 'rejected' END,
                   a.id, a.candidate_id, coalesce(a.rejected_at, rej.at, a.updated_at),
                   CASE WHEN rej.detail_id IS NULL THEN 'applications'
                        ELSE 'rejection_details' END,
                   coalesce(rej.detail_id, a.id), r.name
            FROM apps a LEFT JOIN rej ON rej.application_id = a.id
            LEFT JOIN s_rejection_reasons r ON r.id = rej.reason_id
            WHERE a.status = 'rejected'
              AND a.id NOT IN (SELECT application_id FROM declined)
        )
        SELECT md5(e.event || ':' || e.source_entity || ':' || e.source_id) AS event_id,
               e.event, e.occurred_at, o.profile_id, e.candidate_id, e.application_id,
               e.source_entity, e.source_id, e.detail,
               CASE e.event {order} END AS event_rank
        FROM e JOIN owner o ON o.app_id = e.application_id
        WHERE e.occurred_at IS NOT NULL
    """)


def history_sql(root: Path, day: str) -> str | None:
    """The events of partitions before `day` (None: there are none)."""
    base = output_dir(root, NAME, SOURCE)
    days = sorted(d.name.split("=", 1)[1] for d in base.glob("snapshot_date=*")
                  if (d / "_manifest.json").exists() and d.name.split("=", 1)[1] < day) \
        if base.is_dir() else []
    if not days:
        return None
    files = ", ".join(f"'{duck_path(base / f'snapshot_date={d}' / '*.parquet')}'" for d in days)
    return f"SELECT * FROM read_parquet([{files}], union_by_name = true)"


def new_events(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> None:
    """`sync_events_new`: the events first derived on `day`; `sync_events_seen`: every event
    recorded up to and including `day` (event id, kind and application: for the tags that
    are added on an event)."""
    earlier = history_sql(root, day)
    cols = ", ".join(COLUMNS)
    if earlier is None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE sync_events_new AS "
                    f"SELECT {cols}, event_rank FROM sync_events_all")
        con.execute("CREATE OR REPLACE TEMP TABLE sync_events_seen AS "
                    "SELECT event_id, event, application_id FROM sync_events_all")
        return
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_events_new AS
        SELECT {cols}, event_rank FROM sync_events_all
        WHERE event_id NOT IN (SELECT event_id FROM ({earlier}))
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE sync_events_seen AS
        SELECT event_id, event, application_id FROM ({earlier})
        UNION SELECT event_id, event, application_id FROM sync_events_all
    """)


def write_events(con: duckdb.DuckDBPyConnection, root: Path, day: str,
                 run_id: str) -> dict:
    """Partition `day` of sync/events, in the order the events happened."""
    cols = ", ".join(COLUMNS)
    return write_partition(con, root, NAME, day, f"SELECT {cols}, event_rank "
                           "FROM sync_events_new", "occurred_at, event_rank, event_id",
                           run_id=run_id, source=SOURCE)


def tag_events(con: duckdb.DuckDBPyConnection) -> None:
    """`sync_tag_events(profile_id, tag_events)`: for each event tag a profile must carry, the
    recorded events that imply it (tag -> event ids): an `on_event` tag, every event of its
    kind in the person's applications; a tag held while the current application is at an
    event, that application's latest event of the kind. Stage, job and reason tags follow the
    application's state and name no event."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE sync_tag_events AS
        WITH once AS (
            SELECT o.profile_id, t.tag, e.event_id
            FROM (SELECT profile_id, unnest(application_ids) AS app_id FROM prof) o
            JOIN sync_events_seen e ON e.application_id = o.app_id
            JOIN _on_event_tags t ON t.event = e.event),
        held AS (
            SELECT c.profile_id, t.tag, arg_max(a.event_id, (a.occurred_at, a.event_id))
                   AS event_id
            FROM (SELECT profile_id, app_id, unnest(events) AS event FROM sync_cur) c
            JOIN _event_tags t USING (event)
            JOIN sync_events_all a ON a.application_id = c.app_id AND a.event = c.event
            GROUP BY ALL),
        links AS (
            SELECT profile_id, tag, list_sort(list(DISTINCT event_id)) AS ids
            FROM (SELECT * FROM once UNION ALL SELECT * FROM held)
            SEMI JOIN sync_tags USING (profile_id, tag)
            GROUP BY ALL)
        SELECT profile_id, map(list(tag ORDER BY tag), list(ids ORDER BY tag)) AS tag_events
        FROM links GROUP BY ALL
    """)
