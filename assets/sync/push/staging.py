"""Reading the changeset into DuckDB: what is still to write, in order of work, minus what
succeeded, the dead letters and the changes about erased people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from assets.sync.ledger import latest_status_sql, ledger_relation
from assets.sync.push.result import CHANGESET, DESIRED, SOURCE
from orchestration.storage import suppression
from orchestration.storage.derived import partition_dir
from orchestration.storage.parquet import duck_path

# -- reading the changeset -----------------------------------------------------------------------
# The changeset stays in DuckDB (spilling to the data root); Python holds at most `batch_rows`
# changes at a time (one page of contact writes, or of tag rows), so a first sync of 10^6 changes
# costs a few MB of Python objects, not gigabytes.
BATCH_ROWS = 5000          # changes fetched into Python at once
FAILURE_SAMPLES = 100      # failures kept for the summary (every failure is in the ledger)
MEMORY_LIMIT = "1GB"       # DuckDB's share; the rest spills to <root>/sync/.spill-push-*
CHANGE_COLUMNS = {"change_id": "VARCHAR", "action": "VARCHAR", "profile_id": "BIGINT",
                  "contact_id": "VARCHAR", "match_email": "VARCHAR", "fields": "VARCHAR[]",
                  "body": "VARCHAR",
                  "update_mask": "VARCHAR[]", "tag": "VARCHAR", "tag_id": "VARCHAR",
                  "depends_on": "VARCHAR"}
ACTION_RANK = ("CASE action WHEN 'create' THEN 0 WHEN 'update' THEN 1 "
               "WHEN 'tag_remove' THEN 2 ELSE 3 END")


def changeset_glob(root: Path, day: str) -> str:
    """The Parquet files of changeset partition `day` (a clear error when it was never built)."""
    folder = partition_dir(root, CHANGESET, day, SOURCE)
    if not (folder / "_manifest.json").exists():
        raise FileNotFoundError(
            f"no Keap changeset for {day} at {folder}: materialize sync/keap_changeset for that "
            "day first")
    return f"{folder}/*.parquet"


def stage_changes(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> dict[str, int]:
    """Stage changeset partition `day` in `con` (set-based, nothing in Python):

    - table `pending`: the changes still to write, one row per change id, `ord` = order of work
      (creates, updates, tag removals, tag additions; then change id), `prior_attempts` = the
      highest attempt number the ledger holds for it;
    - table `created`: create change id -> Keap contact id, from earlier runs of this day's
      changeset (the push adds this run's creates).

    Skipped: changes already `succeeded` for this day's changeset (a re-run, or the rest of a
    killed run) and dead letters (latest attempt `failed_permanent`). A change id is a hash of
    what to do, so the same id can come back on a later day (a tag removed on day 1, put back by
    a human, to be removed again on day 9): that is a new write, not a duplicate.
    Then changes about a person on the suppression list are dropped (`drop_suppressed`).
    Returns the counts `changes`, `skipped_succeeded`, `skipped_dead_letter`,
    `skipped_suppressed`, `pending`."""
    files = changeset_glob(root, day)
    source = f"read_parquet('{duck_path(files)}', hive_partitioning = false)"
    present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    cols = ", ".join(f'CAST({"p." + c if c in present else "NULL"} AS {t}) AS {c}'
                     for c, t in CHANGE_COLUMNS.items())
    ledger_relation(con, root)
    # the order of work, the skip rules and the attempt numbers on narrow rows (change id,
    # action, position in its file); the wide columns (bodies) are read once, for pending rows
    con.execute(f"""
        CREATE OR REPLACE TABLE staged AS
        WITH raw AS (SELECT CAST(change_id AS VARCHAR) AS change_id, filename AS _file,
                            file_row_number AS _row, {ACTION_RANK} AS _rank
                     FROM read_parquet('{duck_path(files)}', hive_partitioning = false,
                                       filename = true, file_row_number = true)),
        numbered AS (SELECT *, row_number() OVER (ORDER BY _rank, change_id) AS ord FROM raw),
        dist AS (SELECT * FROM numbered
                 QUALIFY row_number() OVER (PARTITION BY change_id ORDER BY ord) = 1),
        done AS (SELECT DISTINCT change_id FROM ledger
                 WHERE status = 'succeeded' AND changeset_date = CAST($day AS DATE)),
        latest AS (SELECT change_id, status FROM ({latest_status_sql()})),
        prior AS (SELECT change_id, max(attempt) AS attempts FROM ledger GROUP BY change_id)
        SELECT d._file, d._row, d.ord,
               CASE WHEN done.change_id IS NOT NULL THEN 'succeeded'
                    WHEN latest.status = 'failed_permanent' THEN 'dead_letter' END AS skip,
               coalesce(prior.attempts, 0) AS prior_attempts
        FROM dist d
        LEFT JOIN done ON done.change_id = d.change_id
        LEFT JOIN latest ON latest.change_id = d.change_id
        LEFT JOIN prior ON prior.change_id = d.change_id""", {"day": day})
    counts = dict(con.execute(
        "SELECT coalesce(skip, 'pending'), count(*) FROM staged GROUP BY 1").fetchall())
    con.execute(f"""
        CREATE OR REPLACE TABLE pending AS
        SELECT {cols}, s.ord, s.prior_attempts
        FROM read_parquet('{duck_path(files)}', hive_partitioning = false, filename = true,
                          file_row_number = true) p
        JOIN staged s ON s._file = p.filename AND s._row = p.file_row_number
        WHERE s.skip IS NULL""")
    con.execute("DROP TABLE staged")
    counts["skipped_suppressed"] = drop_suppressed(con, root, day)
    counts["pending"] = counts.get("pending", 0) - counts["skipped_suppressed"]
    con.execute("""
        CREATE OR REPLACE TABLE created AS
        SELECT change_id, any_value(contact_id) AS contact_id, 0 AS seq FROM ledger
        WHERE action = 'create' AND status = 'succeeded' AND contact_id IS NOT NULL
          AND changeset_date = CAST(? AS DATE) GROUP BY change_id""", [day])
    return {"changes": int(con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]),
            "skipped_succeeded": int(counts.get("succeeded", 0)),
            "skipped_dead_letter": int(counts.get("dead_letter", 0)),
            "skipped_suppressed": int(counts["skipped_suppressed"]),
            "pending": int(counts.get("pending", 0))}


def drop_suppressed(con: duckdb.DuckDBPyConnection, root: Path, day: str) -> int:
    """Remove from `pending` every change about a person on the suppression list (erased with
    `talentvault forget` after the changeset was built): its match email, its Keap contact id,
    or any email / Greenhouse candidate id of its profile (sync/keap_desired and
    identity/candidate_profiles of `day`, when present). Nothing is sent and nothing is written
    to the ledger for them (it would name the person again); returns how many were dropped."""
    if not suppression.list_path(root).exists() or suppression.register(con, root) == 0:
        return 0
    hit = "IN (SELECT hash FROM suppressed_hashes)"
    people = []
    desired = partition_dir(root, DESIRED, day, SOURCE)
    if any(desired.glob("*.parquet")):
        src = f"read_parquet('{duck_path(desired)}/*.parquet')"
        cols = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {src}").fetchall()}
        every = "list_prepend(email, coalesce(emails, []))" if "emails" in cols else "[email]"
        people.append(f"""
            SELECT DISTINCT profile_id FROM (SELECT profile_id, unnest({every}) AS e FROM {src})
            WHERE e IS NOT NULL AND tv_identity_hash('email', e) {hit}""")
    profiles = partition_dir(root, "candidate_profiles", day)
    if any(profiles.glob("*.parquet")):
        people.append(f"""
            SELECT DISTINCT profile_id FROM (
                SELECT profile_id, unnest(list_concat(
                    coalesce(candidate_ids, []), coalesce(merged_candidate_ids, []))) AS c
                FROM read_parquet('{duck_path(profiles)}/*.parquet', union_by_name = true))
            WHERE c IS NOT NULL AND tv_identity_hash('greenhouse_candidate', c) {hit}""")
    by_profile = (f"OR profile_id IN ({' UNION '.join(people)})" if people else "")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE suppressed_changes AS
        SELECT change_id FROM pending
        WHERE (match_email IS NOT NULL AND tv_identity_hash('email', match_email) {hit})
           OR (coalesce(contact_id, '') <> ''
               AND tv_identity_hash('keap_contact', contact_id) {hit})
           {by_profile}""")
    # rows of a suppressed person's create that depend on it go with it
    con.execute("""
        INSERT INTO suppressed_changes SELECT change_id FROM pending
        WHERE depends_on IN (SELECT change_id FROM suppressed_changes)
          AND change_id NOT IN (SELECT change_id FROM suppressed_changes)""")
    n = con.execute("SELECT count(*) FROM pending WHERE change_id IN "
                    "(SELECT change_id FROM suppressed_changes)").fetchone()[0]
    if n:
        con.execute("DELETE FROM pending WHERE change_id IN "
                    "(SELECT change_id FROM suppressed_changes)")
    return int(n)


def dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
