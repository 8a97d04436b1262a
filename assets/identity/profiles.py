"""Candidate profiles and quarantine, as DuckDB SQL over temp tables (see `build.py` for the
order). Every step is set-based; the only Python loop is the fixed-point iteration of the
clustering (a handful of rounds, each one SQL statement over all candidates).

Tables read: `cand`, `app` (state as of the day), `email_norm`, `phone_norm`.
Tables written: `cand_norm`, `cand_quarantine`, `member`, `profiles`, `quarantine`.
"""

from __future__ import annotations

import duckdb

from assets.identity.config import FIELD_KINDS, IdentityConfig, survivorship_rules

CANDIDATE_COLUMNS = [
    "first_name", "last_name", "preferred_name", "company", "title", "can_email", "emails",
    "phones", "tags", "created_at", "updated_at", "last_activity_at",
    # the record's JSON only where a typed column came out empty: to tell "missing" from
    # "there but unparseable" without reading every record's JSON twice
    "CASE WHEN coalesce(len(emails), 0) = 0 OR created_at IS NULL OR updated_at IS NULL "
    "THEN _raw END AS suspect_raw",
]
APPLICATION_COLUMNS = ["candidate_id", "job_id", "stage_id", "stage_name", "status", "prospect",
                       "last_activity_at", "updated_at"]
MAX_ROUNDS = 50
BLANK = r"[\s\p{Z}]+"

# reason codes of the quarantine, in order of precedence (one reason per record)
UNPARSEABLE_FIELD = "unparseable_field"
NO_EMAIL = "no_email"
INVALID_EMAIL = "invalid_email"
CONFLICTING_IDENTITY = "conflicting_identity"
ORPHAN_APPLICATION = "orphan_application"
CANDIDATE_QUARANTINED = "candidate_quarantined"
REASONS = (UNPARSEABLE_FIELD, NO_EMAIL, INVALID_EMAIL, CONFLICTING_IDENTITY, ORPHAN_APPLICATION,
           CANDIDATE_QUARANTINED)


NAME_VALUES = ("SELECT first_name AS raw FROM cand UNION ALL SELECT last_name FROM cand "
               "UNION ALL SELECT preferred_name FROM cand UNION ALL SELECT company FROM cand "
               "UNION ALL SELECT title FROM cand")


def raw_values(con: duckdb.DuckDBPyConnection, table: str = "cand") -> None:
    """The typed emails and phones of every record of `table` (candidates, or Keap contacts),
    one row per (record, position), into `<table>_email_raw` and `<table>_phone_raw`."""
    for kind, col in (("email", "emails"), ("phone", "phones")):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table}_{kind}_raw AS
            SELECT id, raw, pos FROM (
                SELECT id, unnest({col}) AS raw, generate_subscripts({col}, 1) AS pos
                FROM {table})
            WHERE raw IS NOT NULL AND regexp_replace(raw, '{BLANK}', '', 'g') <> ''
        """)


def values_by_id(con: duckdb.DuckDBPyConnection, raw_table: str, norm_table: str,
                 column: str, target: str) -> None:
    """target(id, first, all_values): per record, its valid normalized values (sorted,
    distinct) and the one typed first. Most records hold one or two values: those lists are
    built from min/max, which is several times cheaper than a list aggregate at scale."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _values AS
        SELECT r.id, n.{column} AS v, min(r.pos) AS pos
        FROM {raw_table} r JOIN {norm_table} n USING (raw)
        WHERE n.{column} IS NOT NULL GROUP BY ALL
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH g AS (SELECT id, arg_min(v, pos) AS first, min(v) AS lo, max(v) AS hi,
                          count(*) AS n
                   FROM _values GROUP BY id),
        many AS (SELECT id, list_sort(list(v)) AS vs FROM _values
                 WHERE id IN (SELECT id FROM g WHERE n > 2) GROUP BY id)
        SELECT g.id, g.first,
               CASE WHEN g.n = 1 THEN [g.lo] WHEN g.n = 2 THEN [g.lo, g.hi] ELSE many.vs END
                   AS all_values
        FROM g LEFT JOIN many USING (id)
    """)
    con.execute("DROP TABLE _values")


def normalized_candidates(con: duckdb.DuckDBPyConnection, cfg: IdentityConfig) -> None:
    """cand_norm: each candidate with normalized names, valid emails (the first typed one as
    `email`) and E.164 phones. Needs `name_norm`, `email_norm`, `phone_norm`."""
    recency = ("coalesce(c.updated_at, c._source_updated_at)" if cfg.recency == "updated_at"
               else "coalesce(c.last_activity_at, c.updated_at, c._source_updated_at)")
    values_by_id(con, "cand_email_raw", "email_norm", "email", "cand_emails")
    values_by_id(con, "cand_phone_raw", "phone_norm", "e164", "cand_phones")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cand_norm AS
        WITH pr AS (SELECT id, count(DISTINCT raw) AS n FROM cand_phone_raw GROUP BY id)
        SELECT c.id,
               nf.display AS first_name, nl.display AS last_name,
               np.display AS preferred_name, nc.text AS company, nt.text AS title,
               nullif(concat_ws(' ', nf.key, nl.key), '') AS name_key, np.key AS preferred_key,
               e.first AS email, coalesce(e.all_values, []) AS emails,
               p.first AS phone, coalesce(p.all_values, []) AS phones,
               coalesce(pr.n, 0) - coalesce(len(p.all_values), 0) AS phones_dropped,
               list_sort(list_distinct(list_filter(list_transform(c.tags, lambda t: trim(t)),
                                                   lambda t: t <> ''))) AS tags,
               c.can_email, c.created_at, c.updated_at, c.last_activity_at,
               {recency} AS recency, c._source_updated_at, c.snapshot_date
        FROM cand c
        LEFT JOIN cand_emails e USING (id) LEFT JOIN cand_phones p USING (id)
        LEFT JOIN pr USING (id)
        LEFT JOIN name_norm nf ON nf.raw = c.first_name
        LEFT JOIN name_norm nl ON nl.raw = c.last_name
        LEFT JOIN name_norm np ON np.raw = c.preferred_name
        LEFT JOIN name_norm nc ON nc.raw = c.company
        LEFT JOIN name_norm nt ON nt.raw = c.title
    """)


def quarantined_candidates(con: duckdb.DuckDBPyConnection) -> None:
    """Records that cannot be synced on their own: unparseable, no email, invalid email."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cand_unparseable AS
        SELECT id, list_filter([
            CASE WHEN created_at IS NULL
                      AND json_extract_string(suspect_raw, '$.created_at') IS NOT NULL
                 THEN 'created_at' END,
            CASE WHEN updated_at IS NULL
                      AND json_extract_string(suspect_raw, '$.updated_at') IS NOT NULL
                 THEN 'updated_at' END,
            CASE WHEN coalesce(len(emails), 0) = 0 AND (
                     coalesce(json_type(suspect_raw, '$.email_addresses'), 'NULL')
                         NOT IN ('ARRAY', 'NULL')
                     OR coalesce(list_bool_or(list_transform(
                         json_extract(suspect_raw, '$.email_addresses[*]'),
                         lambda x: json_type(x) <> 'OBJECT' OR NOT json_exists(x, '$.value'))),
                         FALSE))
                 THEN 'email_addresses' END], lambda f: f IS NOT NULL) AS fields
        FROM cand WHERE suspect_raw IS NOT NULL
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE cand_quarantine AS
        WITH first_error AS (
            SELECT r.id, arg_min(n.error, r.pos) AS error
            FROM cand_email_raw r JOIN email_norm n USING (raw) GROUP BY r.id
        ),
        typed AS (SELECT DISTINCT id FROM cand_email_raw)
        SELECT c.id,
            CASE WHEN len(u.fields) > 0 THEN '{UNPARSEABLE_FIELD}'
                 WHEN t.id IS NULL THEN '{NO_EMAIL}'
                 ELSE '{INVALID_EMAIL}' END AS reason,
            CASE WHEN len(u.fields) > 0
                     THEN 'not in the expected shape: ' || array_to_string(u.fields, ', ')
                 WHEN t.id IS NULL THEN 'the record has no email address'
                 ELSE f.error END AS detail,
            []::BIGINT[] AS related_ids
        FROM cand_norm c
        LEFT JOIN cand_unparseable u USING (id)
        LEFT JOIN typed t USING (id)
        LEFT JOIN first_error f USING (id)
        WHERE len(u.fields) > 0 OR c.email IS NULL
    """)


def cluster(con: duckdb.DuckDBPyConnection) -> int:
    """Connected components of candidates linked by a shared normalized email (any of their
    emails), by label propagation: label = the smallest candidate id in the component.
    Returns the number of rounds."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE edges AS
        SELECT id, unnest(emails) AS email FROM cand_norm
        WHERE email IS NOT NULL AND id NOT IN (SELECT id FROM cand_quarantine)
    """)
    con.execute("CREATE OR REPLACE TEMP TABLE comp AS SELECT DISTINCT id, id AS label FROM edges")
    for rounds in range(1, MAX_ROUNDS + 1):
        con.execute("""
            CREATE OR REPLACE TEMP TABLE comp_next AS
            WITH by_email AS (
                SELECT e.email, min(c.label) AS label FROM edges e JOIN comp c USING (id)
                GROUP BY e.email
            )
            SELECT e.id, min(b.label) AS label FROM edges e JOIN by_email b USING (email)
            GROUP BY e.id
        """)
        changed = con.execute("""
            SELECT count(*) FROM comp_next n JOIN comp c USING (id) WHERE n.label <> c.label
        """).fetchall()[0][0]
        con.execute("DROP TABLE comp")
        con.execute("ALTER TABLE comp_next RENAME TO comp")
        if changed == 0:
            return rounds
    raise RuntimeError(f"email clustering did not converge in {MAX_ROUNDS} rounds")


def conflicts(con: duckdb.DuckDBPyConnection, cfg: IdentityConfig) -> None:
    """Components that hold records of evidently different people: two named records sharing
    no name word (initials do not count), or more records than `max_cluster_size`."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE conflict AS
        WITH size AS (SELECT label, count(*) AS n FROM comp GROUP BY label),
        tok AS (
            SELECT DISTINCT id, label, t AS token FROM (
                SELECT c.id, c.label, unnest(string_split(concat_ws(' ', n.name_key,
                       n.preferred_key), ' ')) AS t
                FROM comp c JOIN size s USING (label) JOIN cand_norm n USING (id)
                WHERE s.n BETWEEN 2 AND {int(cfg.max_cluster_size)})
            WHERE t <> '' AND NOT regexp_full_match(t, '[a-z]')
        ),
        named AS (SELECT DISTINCT id, label FROM tok),
        pairs AS (SELECT a.id AS a, b.id AS b, a.label FROM named a JOIN named b
                  ON a.label = b.label AND a.id < b.id),
        agree AS (SELECT DISTINCT p.a, p.b FROM pairs p
                  JOIN tok ta ON ta.id = p.a JOIN tok tb ON tb.id = p.b AND tb.token = ta.token)
        SELECT DISTINCT p.label, 'shares an email with a record whose name shares no word with '
               || 'it' AS detail
        FROM pairs p ANTI JOIN agree g ON g.a = p.a AND g.b = p.b
        UNION ALL
        SELECT label, 'an email shared by ' || n || ' records (more than '
               || {int(cfg.max_cluster_size)} || '): a shared mailbox, not a person'
        FROM size WHERE n > {int(cfg.max_cluster_size)}
    """)


def membership(con: duckdb.DuckDBPyConnection, cfg: IdentityConfig) -> None:
    """member(id, profile_id) per the conflict policy; conflicting records quarantined when the
    policy says so."""
    if cfg.on_conflict == "quarantine":
        con.execute(f"""
            INSERT INTO cand_quarantine
            SELECT c.id, '{CONFLICTING_IDENTITY}', x.detail,
                   list_sort(list(o.id) FILTER (WHERE o.id <> c.id))
            FROM comp c JOIN conflict x USING (label) JOIN comp o USING (label)
            GROUP BY c.id, x.detail
        """)
        profile = "c.label"
        where = "WHERE c.label NOT IN (SELECT label FROM conflict)"
    elif cfg.on_conflict == "separate":
        profile = "CASE WHEN c.label IN (SELECT label FROM conflict) THEN c.id ELSE c.label END"
        where = ""
    else:
        profile, where = "c.label", ""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE member AS
        SELECT c.id, {profile} AS profile_id FROM comp c {where}
    """)


def moved_applications(con: duckdb.DuckDBPyConnection, versions_sql: str) -> None:
    """app_moves(id, candidate_id): applications that pointed at another candidate in an
    earlier version (a Greenhouse merge moves the duplicate's applications to the survivor)."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE app_moves AS
        WITH moved AS (
            SELECT id FROM ({versions_sql}) WHERE candidate_id IS NOT NULL
            GROUP BY id HAVING count(DISTINCT candidate_id) > 1
        )
        SELECT DISTINCT v.id, v.candidate_id FROM ({versions_sql}) v SEMI JOIN moved USING (id)
        WHERE v.candidate_id IS NOT NULL
    """)


def _aggregate(field: str, rule: str) -> str:
    order = "(c.recency, c.id)"
    kind = FIELD_KINDS[field]
    if kind == "list" and rule == "union":
        return (f"coalesce(list_sort(list_distinct(flatten(list(c.{field}) "
                f"FILTER (WHERE c.{field} IS NOT NULL)))), []) AS {field}")
    if kind == "list":
        return (f"coalesce(arg_max(c.{field}, {order}) FILTER (WHERE len(c.{field}) > 0), []) "
                f"AS {field}")
    if kind == "flag" and rule in ("all", "any"):
        return f"bool_{'and' if rule == 'all' else 'or'}(c.{field}) AS {field}"
    fn = "arg_min" if rule == "earliest" else "arg_max"
    return f"{fn}(c.{field}, {order}) FILTER (WHERE c.{field} IS NOT NULL) AS {field}"


def profiles(con: duckdb.DuckDBPyConnection, cfg: IdentityConfig,
             every_candidate: str = "cand") -> None:
    """One row per person. Survivorship runs only where a profile has several records (a
    single record's values are its own). `every_candidate`: a table of the ids of every
    candidate of the day (an incremental build computes over a part of them in `cand`)."""
    rules = survivorship_rules(cfg.survivorship)
    fields = ",\n                   ".join(_aggregate(f, r) for f, r in rules.items())
    direct = ", ".join(f"c.{f}" for f in rules)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE merged AS
        SELECT DISTINCT h.candidate_id AS merged_id, m.profile_id
        FROM app_moves h
        JOIN app a ON a.id = h.id AND a.candidate_id <> h.candidate_id
        JOIN member m ON m.id = a.candidate_id
        WHERE h.candidate_id NOT IN (SELECT id FROM {every_candidate})
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE profiles AS
        WITH sizes AS (SELECT profile_id, count(*) AS n FROM member GROUP BY profile_id),
        single AS (
            SELECT m.profile_id, {direct}, c.name_key, [c.id] AS candidate_ids,
                   1::BIGINT AS records,
                   c.phones_dropped::HUGEINT AS phones_dropped, c.created_at, c.updated_at
            FROM member m JOIN sizes s USING (profile_id) JOIN cand_norm c USING (id)
            WHERE s.n = 1
        ),
        multi AS (
            SELECT m.profile_id,
                   {fields},
                   NULL::VARCHAR AS name_key,
                   list_sort(list(c.id)) AS candidate_ids, count(*) AS records,
                   sum(c.phones_dropped) AS phones_dropped,
                   min(c.created_at) AS created_at, max(c.updated_at) AS updated_at
            FROM member m JOIN sizes s USING (profile_id) JOIN cand_norm c USING (id)
            WHERE s.n > 1 GROUP BY m.profile_id
        ),
        base AS (SELECT * FROM single UNION ALL BY NAME SELECT * FROM multi),
        apps AS (
            -- the current application: the most recent activity (then the highest id)
            SELECT m.profile_id, list_sort(list(a.id)) AS application_ids,
                   arg_max(a.id, coalesce(epoch_ms(coalesce(a.last_activity_at, a.updated_at,
                                                            a._source_updated_at)), 0)::HUGEINT
                                 * 1000000000000 + a.id) AS current_id,
                   max(a.last_activity_at) AS last_activity_at
            FROM app a JOIN member m ON m.id = a.candidate_id GROUP BY m.profile_id
        ),
        mg AS (SELECT profile_id, list_sort(list(merged_id)) AS merged_candidate_ids
               FROM merged GROUP BY profile_id)
        SELECT b.profile_id, b.email, b.emails, b.first_name, b.last_name, b.preferred_name,
               CASE WHEN b.records = 1 THEN b.name_key
                    ELSE tv_name_key(concat_ws(' ', b.first_name, b.last_name)) END AS name_key,
               b.company, b.title, b.phone, b.phones, b.tags, b.can_email,
               b.candidate_ids, coalesce(mg.merged_candidate_ids, []) AS merged_candidate_ids,
               coalesce(ap.application_ids, []) AS application_ids,
               ap.current_id AS current_application_id, cur.job_id AS current_job_id,
               cur.stage_id AS current_stage_id, cur.stage_name AS current_stage_name,
               cur.status AS current_status, ap.last_activity_at,
               b.records, b.phones_dropped::BIGINT AS phones_dropped, b.created_at, b.updated_at
        FROM base b
        LEFT JOIN apps ap USING (profile_id)
        LEFT JOIN app cur ON cur.id = ap.current_id
        LEFT JOIN mg USING (profile_id)
    """)


def quarantine(con: duckdb.DuckDBPyConnection) -> None:
    """Every candidate and application that is in no profile, with its reason."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE quarantine AS
        SELECT 'greenhouse' AS source, 'candidates' AS entity, q.id AS record_id, q.reason,
               q.detail, q.id AS candidate_id, q.related_ids,
               c.snapshot_date AS source_snapshot_date, c._source_updated_at AS source_updated_at
        FROM cand_quarantine q JOIN cand c USING (id)
        UNION ALL
        SELECT 'greenhouse', 'applications', a.id,
               CASE WHEN a.candidate_id IS NULL THEN '{UNPARSEABLE_FIELD}'
                    WHEN c.id IS NULL THEN '{ORPHAN_APPLICATION}'
                    ELSE '{CANDIDATE_QUARANTINED}' END,
               CASE WHEN a.candidate_id IS NULL THEN 'not in the expected shape: candidate_id'
                    WHEN c.id IS NULL THEN 'its candidate ' || a.candidate_id
                         || ' is not in the backup (deleted, or not backed up)'
                    ELSE 'its candidate ' || a.candidate_id || ' is quarantined: '
                         || q.reason END,
               a.candidate_id, []::BIGINT[], a.snapshot_date, a._source_updated_at
        FROM app a
        LEFT JOIN member m ON m.id = a.candidate_id
        LEFT JOIN cand c ON c.id = a.candidate_id
        LEFT JOIN cand_quarantine q ON q.id = a.candidate_id
        WHERE m.id IS NULL
    """)
