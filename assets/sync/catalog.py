"""Catalog views over the Keap sync (added to the SQL catalog by `assets/catalog/views.py`):

  sync.ledger                   every write attempt of every push run: the compacted runs and
                                the write-ahead logs not compacted yet (a run in progress, or one
                                killed before the next push compacts its log)
  sync.dead_letter              changes whose latest attempt Keap refused for good, with the
                                reason (not retried until their input changes)
  sync.keap_desired(_by_day)    what each synced profile should hold in Keap (latest / every day)
  sync.keap_changeset(_by_day)  the changes planned for Keap (latest / every day)
  sync.keap_rejects(_by_day)    changes the changeset would not send (a value longer than Keap
                                allows, an address Keap refuses): profile, field, reason
  sync.events                   every event of the taxonomy once, in the order it happened: its
                                kind, time, source record, application, candidate and profile,
                                and the day it was first seen (assets/sync/desired/events.py)
  sync.ledger_events            the ledger's tag writes with the events that implied each tag
                                (one row per write and event)
  sync.reverse_ledger           every Greenhouse write attempt of the reverse sync (Keap -> ATS),
                                as sync.ledger: compacted runs plus logs not compacted yet
  sync.reverse_dead_letter      reverse writes Greenhouse refused for good, with the reason
  sync.reverse_changes(_by_day) the reverse sync's planned writes (latest / every day)

`sync.ledger` is what `assets.sync.ledger.ledger_relation` shows in Python: Parquet files plus the
complete lines of the write-ahead logs (`_wal/*.jsonl`, read with `read_json`, same columns and
types) whose run has no Parquet file yet. A line cut short by a kill is not an outcome (DuckDB
reads it as an empty row, dropped). The log folder keeps an empty placeholder file, so the glob
always matches a file while logs come and go.
"""

from __future__ import annotations

from pathlib import Path

from assets.identity.catalog import daily_output_views
from orchestration.storage.parquet import duck_path

SOURCE = "sync"
PARTITIONED = ("keap_desired", "keap_changeset", "keap_rejects", "reverse_changes")
WAL_PLACEHOLDER = ".empty.jsonl"
STATUSES = ("succeeded", "failed_retryable", "failed_permanent")
LEDGER_TYPES = {
    "change_id": "VARCHAR", "changeset_date": "DATE", "profile_id": "BIGINT",
    "contact_id": "VARCHAR", "action": "VARCHAR", "fields": "VARCHAR[]", "tag": "VARCHAR",
    "tag_id": "VARCHAR", "status": "VARCHAR", "http_status": "INTEGER", "error": "VARCHAR",
    "attempt": "INTEGER", "run_id": "VARCHAR", "at": "TIMESTAMPTZ",
    "keap_update_time": "TIMESTAMPTZ",
}
LEDGER_COLUMNS = tuple(LEDGER_TYPES)
# the reverse sync's ledger (as assets/sync/reverse/base.py SCHEMA)
REVERSE_TYPES = {
    "change_id": "VARCHAR", "changes_date": "DATE", "field": "VARCHAR", "profile_id": "BIGINT",
    "contact_id": "VARCHAR", "candidate_id": "BIGINT", "action": "VARCHAR", "target": "VARCHAR",
    "value_sha256": "VARCHAR", "status": "VARCHAR", "http_status": "INTEGER",
    "error": "VARCHAR", "attempt": "INTEGER", "run_id": "VARCHAR", "at": "TIMESTAMPTZ",
    "gh_updated_at": "TIMESTAMPTZ",
}


def _wal_sql(wal_glob: str, types: dict[str, str] = LEDGER_TYPES) -> str:
    """The complete WAL lines, typed like the compacted Parquet (every column read as text,
    then cast, so a line Python would read never fails the view)."""
    read_cols = ", ".join(
        f"'{c}': '{'VARCHAR[]' if t == 'VARCHAR[]' else 'VARCHAR'}'"
        for c, t in types.items())
    cols = ", ".join(f'"{c}"' if t in ("VARCHAR", "VARCHAR[]")
                     else f'TRY_CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    return (f"SELECT {cols} FROM read_json('{wal_glob}', format = 'newline_delimited', "
            f"ignore_errors = true, columns = {{{read_cols}}}) "
            f"WHERE change_id IS NOT NULL AND status IN ({statuses})")


def catalog_statements(root: Path) -> list[str]:
    root = Path(root)
    stmts = [f"CREATE SCHEMA IF NOT EXISTS {SOURCE}",
             *daily_output_views(root, SOURCE, PARTITIONED)]
    events = root / SOURCE / "events" / "snapshot_date=*" / "*.parquet"
    has_events = any(events.parent.parent.glob("snapshot_date=*/*.parquet"))
    if has_events:
        stmts.append(
            f"CREATE OR REPLACE VIEW {SOURCE}.events AS SELECT event_id, event, occurred_at, "
            "profile_id, candidate_id, application_id, source_entity, source_id, detail, "
            f"snapshot_date AS first_seen FROM read_parquet('{duck_path(events)}', "
            "hive_partitioning = true, hive_types = {'snapshot_date': DATE}, "
            "union_by_name = true) ORDER BY occurred_at, event_rank, event_id")
    ledger_stmts = _ledger_views(root, "ledger", LEDGER_TYPES, "ledger", "dead_letter")
    stmts += _ledger_views(root, "reverse_ledger", REVERSE_TYPES, "reverse_ledger",
                           "reverse_dead_letter")
    if not ledger_stmts:
        return stmts
    stmts += ledger_stmts
    if has_events and any((root / SOURCE / "keap_desired").glob("snapshot_date=*/*.parquet")):
        # a tag write -> the events the desired state of its changeset's day linked to the tag
        stmts.append(
            f"CREATE OR REPLACE VIEW {SOURCE}.ledger_events AS "
            f"SELECT l.*, e.event_id, e.event, e.occurred_at, e.application_id, "
            f"e.source_entity, e.source_id FROM {SOURCE}.ledger l "
            f"JOIN {SOURCE}.keap_desired_by_day d ON d.profile_id = l.profile_id "
            "AND d.snapshot_date = l.changeset_date "
            "CROSS JOIN unnest(coalesce(map_extract(d.tag_events, l.tag)[1], [])) AS u(id) "
            f"JOIN {SOURCE}.events e ON e.event_id = u.id "
            "WHERE l.tag IS NOT NULL")
    return stmts


def _ledger_views(root: Path, folder: str, types: dict[str, str], view: str,
                  dead: str) -> list[str]:
    """`sync.<view>` (compacted runs plus the write-ahead logs not compacted yet) and
    `sync.<dead>` (latest attempt failed for good, never succeeded) over one ledger folder;
    none before its first run."""
    ledger = root / SOURCE / folder / "run_id=*" / "part-00000.parquet"
    wal = root / SOURCE / folder / "_wal"
    has_parquet = any(ledger.parent.parent.glob("run_id=*/part-00000.parquet"))
    # the placeholder makes the glob safe whatever the logs do later; without it (a data root
    # no run has written to since), the logs present now
    has_wal = (wal / WAL_PLACEHOLDER).exists() or any(
        p for p in wal.glob("*.jsonl") if not p.name.startswith("."))
    if not (has_parquet or has_wal):
        return []
    cols = ", ".join(f'"{c}"' for c in types)
    parts = []
    if has_parquet:
        parts.append(f"SELECT {cols} FROM read_parquet('{duck_path(ledger)}', "
                     "hive_partitioning = false, union_by_name = true)")
    if has_wal:
        wal_rows = _wal_sql(str(wal / "*.jsonl"), types)
        if has_parquet:  # a log whose Parquet exists is a leftover of a crashed compaction
            wal_rows = (f"SELECT * FROM ({wal_rows}) WHERE run_id NOT IN (SELECT DISTINCT "
                        f"run_id FROM read_parquet('{duck_path(ledger)}', "
                        "hive_partitioning = false))")
        parts.append(f"SELECT {cols} FROM ({wal_rows})")
    return [
        f"CREATE OR REPLACE VIEW {SOURCE}.{view} AS " + " UNION ALL ".join(parts),
        f"CREATE OR REPLACE VIEW {SOURCE}.{dead} AS SELECT * FROM ("
        f"SELECT * FROM {SOURCE}.{view} QUALIFY row_number() OVER (PARTITION BY change_id "
        "ORDER BY attempt DESC, \"at\" DESC) = 1) WHERE status = 'failed_permanent' AND "
        f"change_id NOT IN (SELECT change_id FROM {SOURCE}.{view} "
        "WHERE status = 'succeeded')",
    ]
