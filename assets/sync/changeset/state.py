"""What Keap holds now, as the changeset sees it: the Keap backup as of the end of day D,
corrected by the ledger for the writes the push made after that backup was extracted.

Tables written (temp, in the given connection):
  led          the ledger (Parquet and write-ahead log), one row per attempt
  dead         change ids whose latest attempt failed permanently (the dead letter)
  written      succeeded create/update/tag rows with the values they carried (read back from
               the changeset partitions the ledger names, and the applied-rows archive)
  k_contact    contact_id, update_time, emails_norm, phones_norm, email_slots,
               phone_slots, custom (id, label, content JSON)
  k_scalar     contact_id, key, value   (standard fields the desired state names)
  k_tag        contact_id, tag (name), tag_key (lower-cased name)
  tag_dict     tag_key -> tag_id (Keap backup by name, lowest id; tags the push created)
  cf_dict      label_key -> id, label, field_type (Keap backup; types from the mapping too)

"After extraction" compares the ledger's wall-clock `at` with the Keap contacts partition's
`extracted_at` (the manifest's wall-clock start of that backup): a write made after the backup
started may be missing from it, so it is laid over the backup with the values it sent. A write
the backup did capture is laid over with the same values, which changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.identity.inputs import has_partition, load_state
from orchestration.storage.derived import partition_dir, read_manifest
from orchestration.storage.parquet import duck_path, write_query

SOURCE = "sync"
CHANGESET = "keap_changeset"
ARCHIVE = "keap_changeset_applied"
DESIRED = "keap_desired"
LEDGER_COLUMNS = {
    "change_id": "VARCHAR", "changeset_date": "DATE", "profile_id": "BIGINT",
    "contact_id": "VARCHAR", "action": "VARCHAR", "fields": "VARCHAR[]", "tag": "VARCHAR",
    "tag_id": "VARCHAR", "status": "VARCHAR", "http_status": "INTEGER", "error": "VARCHAR",
    "attempt": "INTEGER", "run_id": "VARCHAR", "at": "TIMESTAMPTZ",
    "keap_update_time": "TIMESTAMPTZ",
}
EMAIL_SLOTS = ["EMAIL1", "EMAIL2", "EMAIL3"]
PHONE_SLOTS = ["PHONE1", "PHONE2", "PHONE3", "PHONE4", "PHONE5"]
# what the changeset reads of a Keap contact's JSON (`_raw`) or of a request body it sent
CONTACT_JSON = json.dumps({
    "email_addresses": [{"email": "VARCHAR", "field": "VARCHAR"}],
    "phone_numbers": [{"number": "VARCHAR", "extension": "VARCHAR", "type": "VARCHAR",
                       "field": "VARCHAR"}],
    "custom_fields": [{"id": "VARCHAR", "label": "VARCHAR", "content": "JSON"}],
    "tag_ids": ["VARCHAR"],
})
NUMERIC_TYPES = ("CURRENCY", "DECIMAL_NUMBER", "PERCENT")
WHOLE_TYPES = ("WHOLE_NUMBER", "YEAR", "MONTH", "DAY_OF_WEEK", "USER")
LIST_TYPES = ("LIST_BOX", "USER_LIST_BOX")

MACROS = [
    # a custom field value as the JSON content Keap stores for its type
    f"""CREATE OR REPLACE TEMP MACRO cf_content(v, ft) AS CASE
        WHEN v IS NULL THEN NULL
        WHEN ft IN {WHOLE_TYPES} AND TRY_CAST(v AS BIGINT) IS NOT NULL
            THEN to_json(CAST(v AS BIGINT))
        WHEN ft IN {NUMERIC_TYPES} AND TRY_CAST(v AS DOUBLE) IS NOT NULL
            THEN to_json(CAST(v AS DOUBLE))
        WHEN ft = 'YES_NO' AND lower(trim(v)) IN ('true', 'yes', 'y', '1') THEN 'true'::JSON
        WHEN ft = 'YES_NO' AND lower(trim(v)) IN ('false', 'no', 'n', '0') THEN 'false'::JSON
        WHEN ft IN {LIST_TYPES} THEN to_json(list_filter(
            list_transform(string_split(v, ','), lambda x: trim(x)), lambda x: x <> ''))
        ELSE to_json(v) END""",
    # one comparable text for a JSON content (5 = 5.0, '' = null)
    """CREATE OR REPLACE TEMP MACRO cf_cmp(j) AS CASE
        WHEN j IS NULL OR json_type(j) = 'NULL' THEN NULL
        WHEN json_type(j) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
            THEN CAST(CAST(j AS DOUBLE) AS VARCHAR)
        WHEN json_type(j) = 'VARCHAR' THEN nullif(json_extract_string(j, '$'), '')
        ELSE CAST(j AS VARCHAR) END""",
    # where a standard desired key sits in a Keap contact (company is an object in v2)
    """CREATE OR REPLACE TEMP MACRO scalar_path(k) AS
        CASE WHEN k = 'company' THEN '$.company.company_name' ELSE '$.' || k END""",
]


def register_macros(con: duckdb.DuckDBPyConnection) -> None:
    for m in MACROS:
        con.execute(m)


# -- the ledger ---------------------------------------------------------------------------------
def ledger_table(con: duckdb.DuckDBPyConnection, root: Path) -> int:
    """`led`: every ledger row (the push's `ledger_relation`: Parquet and write-ahead logs), with
    the contract's columns; empty before the first push. `dead`: the dead letter (latest
    attempt failed permanently, never succeeded). Returns the ledger's row count."""
    # `at` is a keyword in DuckDB 2: the ledger time is `written_at` here
    cols = ", ".join(f'TRY_CAST("{c}" AS {t}) AS "{"written_at" if c == "at" else c}"'
                     for c, t in LEDGER_COLUMNS.items())
    source = _ledger_source(con, root)
    con.execute(f"CREATE OR REPLACE TEMP TABLE led AS SELECT {cols} FROM ({source})")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE dead AS
        SELECT change_id, contact_id, profile_id, action, error FROM led
        QUALIFY row_number() OVER (PARTITION BY change_id
                                   ORDER BY attempt DESC NULLS LAST, written_at DESC) = 1
            AND status = 'failed_permanent'
            AND change_id NOT IN (SELECT change_id FROM led WHERE status = 'succeeded')
    """)
    return con.execute("SELECT count(*) FROM led").fetchone()[0]


def _ledger_source(con: duckdb.DuckDBPyConnection, root: Path) -> str:
    """SQL over the ledger: the push's view (compacted Parquet plus write-ahead logs not
    compacted yet)."""
    from assets.sync.ledger import ledger_relation

    ledger_relation(con, root, "ledger")
    return "SELECT * FROM ledger"


def written_changes(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """`written`: every succeeded ledger row joined with the change it applied (action, body,
    field values, tag), read back from the changeset partitions it names (and the archive of
    applied rows a re-run of that day replaced)."""
    days = [r[0] for r in con.execute(
        "SELECT DISTINCT strftime(changeset_date, '%Y-%m-%d') FROM led "
        "WHERE status = 'succeeded' AND changeset_date IS NOT NULL ORDER BY 1").fetchall()]
    files = []
    for day in days:
        for name in (CHANGESET, ARCHIVE):
            folder = partition_dir(root, name, day, SOURCE)
            files += [str(p) for p in sorted(folder.glob("*.parquet"))]
    if files:
        listing = ", ".join(f"'{duck_path(f)}'" for f in files)
        changes = f"""SELECT DISTINCT ON (change_id) change_id, body, field_values
                      FROM read_parquet([{listing}], union_by_name = true)"""
    else:
        changes = ("SELECT NULL::VARCHAR AS change_id, NULL::VARCHAR AS body, "
                   "NULL::MAP(VARCHAR, VARCHAR) AS field_values LIMIT 0")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE written AS
        WITH ok AS (
            SELECT * FROM led WHERE status = 'succeeded'
            QUALIFY row_number() OVER (PARTITION BY change_id, contact_id ORDER BY written_at) = 1)
        SELECT ok.change_id, ok.contact_id, ok.action, ok.tag, ok.tag_id, ok.written_at,
               ok.keap_update_time, c.body, c.field_values,
               c.change_id IS NOT NULL AS values_known
        FROM ok LEFT JOIN ({changes}) c USING (change_id)
        WHERE ok.contact_id IS NOT NULL
    """)


def archive_applied(con: duckdb.DuckDBPyConnection, root: Path, day: str, run_id: str) -> int:
    """Before a re-run replaces partition `day`: keep its rows the ledger says were applied
    (append-only, `<root>/sync/keap_changeset_applied/snapshot_date=D/`), so the overlay can
    still read their values once the new partition no longer lists them."""
    current = partition_dir(root, CHANGESET, day, SOURCE)
    if not any(current.glob("*.parquet")):
        return 0
    archive = partition_dir(root, ARCHIVE, day, SOURCE)
    kept = (f"SELECT change_id FROM read_parquet('{duck_path(archive)}/*.parquet')"
            if any(archive.glob("*.parquet")) else "SELECT NULL::VARCHAR AS change_id LIMIT 0")
    query = f"""
        SELECT * FROM read_parquet('{duck_path(current)}/*.parquet')
        WHERE change_id IN (SELECT change_id FROM led WHERE status = 'succeeded')
          AND change_id NOT IN ({kept})"""
    n = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
    if n:
        archive.mkdir(parents=True, exist_ok=True)
        tmp = archive / f".part-{run_id}.parquet.tmp"
        write_query(con, f"{query} ORDER BY change_id", tmp)
        tmp.rename(archive / f"part-{run_id}.parquet")
    return int(n)


# -- the Keap side -------------------------------------------------------------------------------
def keap_extracted_at(root: Path, day: str) -> str | None:
    """Wall-clock start of the Keap contacts backup of `day` (None when there is none)."""
    if not has_partition(root, "keap", "contacts", day):
        return None
    m = json.loads((root / "keap" / "contacts" / f"snapshot_date={day}" / "_manifest.json")
                   .read_text())
    return m.get("extracted_at")


def reference_tables(con: duckdb.DuckDBPyConnection, root: Path, day: str,
                     desired_extra: dict[str, Any]) -> None:
    """`tag_dict` and `cf_dict` from the Keap backups (tags and custom fields as of `day`) and
    the tags/fields the push created since (the ledger carries their ids)."""
    load_state(con, root, "keap", "tags", day, ["name"], "keap_tags", required=False)
    load_state(con, root, "keap", "custom_fields", day, ["label", "field_type"],
               "keap_custom_fields", required=False)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE tag_dict AS
        SELECT lower(trim(name)) AS tag_key,
               arg_min(id, (TRY_CAST(id AS BIGINT), id)) AS tag_id,
               arg_min(name, (TRY_CAST(id AS BIGINT), id)) AS tag_name
        FROM (SELECT id, name FROM keap_tags WHERE name IS NOT NULL
              UNION ALL
              SELECT DISTINCT tag_id, tag FROM led WHERE tag_id IS NOT NULL AND tag IS NOT NULL
                  AND status = 'succeeded')
        GROUP BY ALL
    """)
    types = desired_extra.get("custom_fields") or {}
    con.execute("CREATE OR REPLACE TEMP TABLE mapping_types (label VARCHAR, field_type VARCHAR)")
    if types:
        con.executemany("INSERT INTO mapping_types VALUES (?, ?)",
                        [(k, (v or {}).get("field_type")) for k, v in sorted(types.items())])
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cf_dict AS
        WITH k AS (SELECT lower(trim(label)) AS label_key,
                          arg_min(id, (TRY_CAST(id AS BIGINT), id)) AS id,
                          arg_min(label, (TRY_CAST(id AS BIGINT), id)) AS label,
                          arg_min(field_type, (TRY_CAST(id AS BIGINT), id)) AS field_type
                   FROM keap_custom_fields WHERE label IS NOT NULL GROUP BY ALL),
             m AS (SELECT lower(trim(label)) AS label_key, any_value(label) AS label,
                          any_value(field_type) AS field_type FROM mapping_types GROUP BY ALL)
        SELECT label_key, k.id, coalesce(k.label, m.label) AS label,
               coalesce(k.field_type, m.field_type, 'TEXT') AS field_type
        FROM k FULL JOIN m USING (label_key)
    """)


def keap_contacts(con: duckdb.DuckDBPyConnection, root: Path, day: str,
                  scalar_keys: list[str], only: str | None = None) -> dict[str, Any]:
    """`k_contact`, `k_scalar`, `k_tag`: Keap's contacts as of the end of `day`, with the
    ledger's later writes laid over them. Needs `led`, `written`, `tag_dict`, `cf_dict` and
    the identity partition `identity/keap_contacts` of `day` (normalized emails and phones).
    `only` (a SELECT of contact ids) limits the backup's contacts read to those (an
    incremental build); the ledger's are always laid over."""
    ident = partition_dir(root, "keap_contacts", day)
    if not (ident / "_manifest.json").exists():
        raise dg.Failure(f"identity/keap_contacts has no partition {day}: materialize "
                         f"identity/candidate_profiles for {day} first (it writes both).")
    load_state(con, root, "keap", "contacts", day, ["_raw", "update_time"], "keap_snap",
               required=False, ids=only)
    extracted = keap_extracted_at(root, day)
    since = f"TIMESTAMPTZ '{extracted}'" if extracted else "'-infinity'::TIMESTAMPTZ"
    paths = ", ".join(f"({k!r}, scalar_path({k!r}))" for k in scalar_keys) or \
        "(NULL, NULL)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE k_snap AS
        SELECT s.id AS contact_id, s.update_time,
               json_transform(s._raw, '{CONTACT_JSON}') AS j,
               i.emails AS emails_norm, i.phones AS phones_norm
        FROM keap_snap s LEFT JOIN read_parquet('{duck_path(ident)}/*.parquet') i
            ON i.contact_id = s.id
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE k_scalar_snap AS
        SELECT s.id AS contact_id, p.key, json_extract_string(s._raw, p.path) AS value
        FROM keap_snap s, (VALUES {paths}) p(key, path) WHERE p.key IS NOT NULL
    """)
    con.execute("DROP TABLE keap_snap")
    # writes after the backup started: the latest body per contact that set each array
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE applied AS
        SELECT * FROM written WHERE written_at > {since}
            AND (values_known OR action IN ('tag_add', 'tag_remove'))
    """)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE k_over AS
        WITH b AS (
            SELECT contact_id, written_at, keap_update_time,
                   json_transform(body, '{CONTACT_JSON}') AS j,
                   json_exists(body, '$.email_addresses') AS has_e,
                   json_exists(body, '$.phone_numbers') AS has_p,
                   json_exists(body, '$.custom_fields') AS has_c
            FROM applied WHERE action IN ('create', 'update') AND body IS NOT NULL)
        SELECT contact_id,
               arg_max(j.email_addresses, written_at) FILTER (WHERE has_e) AS email_slots,
               arg_max(j.phone_numbers, written_at) FILTER (WHERE has_p) AS phone_slots,
               arg_max(j.custom_fields, written_at) FILTER (WHERE has_c) AS custom,
               max(keap_update_time) AS keap_update_time,
               bool_or(has_e) AS has_e, bool_or(has_p) AS has_p, bool_or(has_c) AS has_c
        FROM b GROUP BY contact_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE k_contact AS
        WITH base AS (
            SELECT coalesce(s.contact_id, o.contact_id) AS contact_id,
                   greatest(s.update_time, o.keap_update_time) AS update_time,
                   CASE WHEN o.has_e THEN o.email_slots ELSE s.j.email_addresses END
                       AS email_slots,
                   CASE WHEN o.has_p THEN o.phone_slots ELSE s.j.phone_numbers END
                       AS phone_slots,
                   CASE WHEN o.has_c THEN o.custom ELSE s.j.custom_fields END AS custom,
                   coalesce(s.emails_norm, []) AS emails_snap,
                   coalesce(s.phones_norm, []) AS phones_snap,
                   s.contact_id IS NULL AS created_since_backup
            FROM k_snap s FULL JOIN k_over o USING (contact_id))
        SELECT b.contact_id, b.update_time,
               coalesce(b.email_slots, []) AS email_slots,
               coalesce(b.phone_slots, []) AS phone_slots,
               coalesce(b.custom, []) AS custom,
               list_distinct(list_concat(b.emails_snap, list_transform(
                   coalesce(b.email_slots, []), lambda e: lower(trim(e.email))))) AS emails_norm,
               list_distinct(list_concat(b.phones_snap, list_transform(
                   coalesce(b.phone_slots, []), lambda p: trim(p.number)))) AS phones_norm,
               b.created_since_backup
        FROM base b
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE k_scalar AS
        WITH o AS (
            SELECT contact_id, e.key, arg_max(e.value, written_at) AS value
            FROM (SELECT contact_id, written_at, unnest(map_entries(field_values)) AS e FROM applied
                  WHERE action IN ('create', 'update') AND field_values IS NOT NULL)
            WHERE e.key NOT IN ('email', 'phone') AND NOT starts_with(e.key, 'custom:')
            GROUP BY ALL)
        SELECT contact_id, key, CASE WHEN o.contact_id IS NOT NULL THEN o.value
                                     ELSE s.value END AS value
        FROM k_scalar_snap s FULL JOIN o USING (contact_id, key)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE k_tag AS
        WITH snap AS (
            SELECT s.contact_id, d.tag_key, d.tag_name AS tag
            FROM (SELECT contact_id, unnest(j.tag_ids) AS tag_id FROM k_snap) s
            JOIN tag_dict d USING (tag_id)),
        moves AS (
            SELECT contact_id, lower(trim(tag)) AS tag_key, arg_max(tag, written_at) AS tag,
                   arg_max(action, written_at) AS last_action
            FROM applied WHERE action IN ('tag_add', 'tag_remove') AND tag IS NOT NULL
            GROUP BY ALL)
        SELECT contact_id, tag_key, coalesce(m.tag, s.tag) AS tag
        FROM snap s FULL JOIN moves m USING (contact_id, tag_key)
        WHERE coalesce(m.last_action, 'tag_add') = 'tag_add'
    """)
    counts = con.execute("SELECT count(*), count(*) FILTER (WHERE created_since_backup) "
                         "FROM k_contact").fetchone()
    overlaid = con.execute("SELECT count(*) FROM applied").fetchone()[0]
    con.execute("DROP TABLE k_snap")
    con.execute("DROP TABLE k_scalar_snap")
    return {"keap_contacts": counts[0], "contacts_created_since_backup": counts[1],
            "ledger_writes_overlaid": overlaid, "keap_extracted_at": extracted}


def desired_manifest(root: Path, day: str) -> dict[str, Any]:
    m = read_manifest(root, DESIRED, day, SOURCE)
    if m is None:
        raise dg.Failure(f"sync/keap_desired has no partition {day}: materialize "
                         f"sync/keap_desired for {day} first.")
    return m
