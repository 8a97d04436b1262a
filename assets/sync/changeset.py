"""The Keap changeset of day D: what must change in Keap so every synced profile holds its
desired state (`sync/keap_desired`), and nothing else. Set-based DuckDB SQL over Parquet.

Steps (one in-memory DuckDB, spilling to the data root):
  1. Keap now (`changeset_state.py`): the Keap backup as of the end of D, corrected by the
     ledger's later successful writes, with normalized emails from identity/keap_contacts.
  2. Matching: a profile's emails (primary first) against the contacts' normalized emails.
     Several contacts hold them: the one holding the primary email, then the oldest (lowest
     numeric id, the rule Keap's duplicate_option=Email follows) is chosen; `conflict` names
     the others. A contact two profiles point at goes to the profile holding its primary email
     (then the lowest profile id); the other profile is skipped and reported, never created.
  3. Field differences: only fields whose value differs; `keap_wins` fields a human changed in
     Keap after our last write keep Keap's value (see `docs/sync.md`).
  4. Rows: `create` (full body), `update` (PATCH body with complete merged arrays and an
     update_mask), `tag_add`, `tag_remove` (managed tags only). Deterministic change ids;
     dead-lettered change ids are left out until their input changes.
"""


import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from assets.sync import changeset_state as state
from orchestration.automation import SYNC_CHAIN
from orchestration.partitions import daily_snapshots
from orchestration.storage import suppression
from orchestration.storage.derived import partition_dir, partition_glob, write_partition
from orchestration.storage.snapshots import SnapshotStorage

NAME = state.CHANGESET
SOURCE = state.SOURCE
REJECTS = "keap_rejects"
ACTIONS = ("create", "update", "tag_add", "tag_remove")
ORDER = ("profile_id, CASE action WHEN 'create' THEN 0 WHEN 'update' THEN 1 "
         "WHEN 'tag_remove' THEN 2 ELSE 3 END, tag, change_id")
COLUMNS = ("change_id, action, profile_id, contact_id, match_email, fields, body, update_mask, "
           "tag, tag_id, depends_on, conflict, field_values")
MEMORY_LIMIT = "2GB"

# Keap's length limits (characters) for the contact values the sync sends, from the Keap v2 spec
# (specs/keap/keap-rest-v2.openapi.yml, schema CreateUpdateContactRequest: the
# `maxLength` of the name fields, job_title, website ...; EMAIL1 75 / EMAIL2-3 100 in the
# description of email_addresses[].email, PHONE1-3 40 / PHONE4-5 20 in phone_numbers[].number).
# Keap refuses a longer value with a 400 for the whole write, so the changeset does not send it:
# the change goes to the reject list (sync/keap_rejects) instead. Custom field contents are not
# checked here (their limit is each field's own `maximum_characters` option).
KEAP_MAX_LENGTH = {
    "given_name": 40, "family_name": 40, "middle_name": 100, "job_title": 255,
    "preferred_name": 100, "spouse_name": 100, "website": 100, "assistant_name": 20,
    "assistant_phone": 15, "billing_information": 100,
    "EMAIL1": 75, "EMAIL2": 100, "EMAIL3": 100,
    "PHONE1": 40, "PHONE2": 40, "PHONE3": 40, "PHONE4": 20, "PHONE5": 20,
}
REJECT_COLUMNS = ("profile_id, contact_id, action, field, keap_field, length, max_length, scope, "
                  "reason")

# JSON of one email / phone array item as Keap's request takes it (nulls left out)
ITEM_MACROS = [
    """CREATE OR REPLACE TEMP MACRO email_item(e) AS
        '{"email":' || to_json(e.email) || ',"field":' || to_json(e.field) || '}'""",
    """CREATE OR REPLACE TEMP MACRO phone_item(p) AS
        '{' || CASE WHEN p.extension IS NOT NULL
                    THEN '"extension":' || to_json(p.extension) || ',' ELSE '' END
            || '"field":' || to_json(p.field) || ',"number":' || to_json(p.number)
            || CASE WHEN p.type IS NOT NULL THEN ',"type":' || to_json(p.type) ELSE '' END
            || '}'""",
    """CREATE OR REPLACE TEMP MACRO cf_item(id, label, content) AS
        '{"content":' || coalesce(CAST(content AS VARCHAR), 'null') ||
        CASE WHEN id IS NOT NULL THEN ',"id":' || to_json(id)
             ELSE ',"label":' || to_json(label) END || '}'""",
    """CREATE OR REPLACE TEMP MACRO json_list(items) AS
        '[' || array_to_string(items, ',') || ']'""",
    """CREATE OR REPLACE TEMP MACRO first_free(used, slots) AS
        list_filter(slots, lambda s: NOT list_contains(used, s))[1]""",
    """CREATE OR REPLACE TEMP MACRO id_order(id) AS (TRY_CAST(id AS BIGINT), id)""",
]


@dataclass
class ChangesetBuild:
    root: Path
    day: str
    con: duckdb.DuckDBPyConnection
    spill: Path
    manifest: dict[str, Any] = field(default_factory=dict)
    rejects_manifest: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


def connect(spill: Path, memory_limit: str = MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    spill.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(config={"threads": 2, "memory_limit": memory_limit,
                                 "temp_directory": str(spill),
                                 "preserve_insertion_order": False})
    con.execute("SET TimeZone = 'UTC'")
    state.register_macros(con)
    for m in ITEM_MACROS:
        con.execute(m)
    return con


def build_changeset(root: Path, day: str, run_id: str, *,
                    memory_limit: str = MEMORY_LIMIT) -> ChangesetBuild:
    """Compute and write partition `day` of sync/keap_changeset; the open build (its `con`
    keeps the `changeset` table for metadata and previews)."""
    spill = root / SOURCE / f".spill-{uuid.uuid4().hex[:8]}"
    b = ChangesetBuild(root, day, connect(spill, memory_limit), spill)
    try:
        _build(b, run_id)
    except BaseException:
        b.close()
        raise
    return b


def _phase(b: ChangesetBuild, name: str, started: float) -> float:
    now = time.perf_counter()
    b.timings[name] = round(now - started, 2)
    return now


def _build(b: ChangesetBuild, run_id: str) -> None:
    con, root, day = b.con, b.root, b.day
    t = time.perf_counter()
    desired_m = state.desired_manifest(root, day)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE desired AS
                    SELECT profile_id, email, coalesce(emails, []) AS emails, fields,
                           coalesce(tags, []) AS tags
                    FROM read_parquet('{partition_glob(root, state.DESIRED, day, SOURCE)}')""")
    b.counts["ledger_rows"] = state.ledger_table(con, root)
    state.written_changes(con, root)
    state.reference_tables(con, root, day, desired_m)
    scalar_keys = [r[0] for r in con.execute("""
        SELECT DISTINCT k FROM (SELECT unnest(map_keys(fields)) AS k FROM desired)
        WHERE k NOT IN ('email', 'phone') AND NOT starts_with(k, 'custom:') ORDER BY k
    """).fetchall()]
    b.counts.update(state.keap_contacts(con, root, day, scalar_keys))
    t = _phase(b, "keap_state", t)
    b.counts.update(match(con))
    t = _phase(b, "match", t)
    policies(con, desired_m)
    field_diffs(con)
    limits(con)
    update_rejects(con)
    t = _phase(b, "diff", t)
    changes(con, desired_m)
    t = _phase(b, "rows", t)
    b.counts["archived_applied_rows"] = state.archive_applied(con, root, day, run_id)
    b.rejects_manifest = write_partition(
        con, root, REJECTS, day, f"SELECT {REJECT_COLUMNS} FROM rejects",
        "profile_id, action, keap_field, field", run_id=run_id, source=SOURCE,
        extra={"limits": KEAP_MAX_LENGTH})
    b.manifest = write_partition(
        con, root, NAME, day, f"SELECT {COLUMNS} FROM changeset", ORDER, run_id=run_id,
        source=SOURCE, extra={
            "inputs": {"keap_desired": {"snapshot_date": day,
                                        "content_fingerprint":
                                            desired_m.get("content_fingerprint")},
                       "keap_extracted_at": b.counts.get("keap_extracted_at")},
            "mapping_fingerprint": desired_m.get("mapping_fingerprint"),
            "counts": summary_counts(con),
        })
    _phase(b, "write", t)


# -- matching -------------------------------------------------------------------------------------
def match(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """`matched(profile_id, contact_id, match_conflict)`, `shared(profile_id, contact_id,
    winner)`: which Keap contact each profile updates."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE hits AS
        WITH pe AS (SELECT profile_id, email AS primary_email,
                           unnest(list_distinct(list_prepend(email, emails))) AS email
                    FROM desired),
             ke AS (SELECT contact_id, unnest(emails_norm) AS email FROM k_contact)
        SELECT pe.profile_id, ke.contact_id, bool_or(pe.email = pe.primary_email) AS primary_hit
        FROM pe JOIN ke USING (email) GROUP BY ALL
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE pick AS
        SELECT profile_id,
               arg_min(contact_id, (NOT primary_hit, id_order(contact_id))) AS contact_id,
               bool_or(primary_hit) AS primary_hit, bool_and(primary_hit) AS all_primary,
               count(*) AS n,
               list(contact_id ORDER BY id_order(contact_id)) AS ids
        FROM hits GROUP BY profile_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE matched AS
        SELECT profile_id, contact_id,
               CASE WHEN n > 1 AND all_primary THEN
                        'contacts ' || array_to_string(ids, ', ') || ' share this email; '
                        || contact_id || ' chosen (oldest)'
                    WHEN n > 1 THEN
                        'contacts ' || array_to_string(ids, ', ') || ' hold this profile''s '
                        || 'emails; ' || contact_id
                        || ' chosen (holds the primary email, then oldest)'
               END AS match_conflict
        FROM pick
        QUALIFY row_number() OVER (PARTITION BY contact_id
                                   ORDER BY NOT primary_hit, profile_id) = 1
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE shared AS
        SELECT p.profile_id, p.contact_id, m.profile_id AS winner
        FROM pick p JOIN matched m USING (contact_id) WHERE p.profile_id <> m.profile_id
    """)
    n = con.execute("""SELECT (SELECT count(*) FROM matched),
                              (SELECT count(*) FROM matched WHERE match_conflict IS NOT NULL),
                              (SELECT count(*) FROM shared)""").fetchone()
    return {"profiles_matched": n[0], "keap_duplicate_matches": n[1],
            "skipped_shared_contact": n[2]}


def policies(con: duckdb.DuckDBPyConnection, desired_m: dict[str, Any]) -> None:
    """`policy(key, policy)` from the mapping's conflict section; `managed(tag_key)`."""
    conflict = desired_m.get("conflict") or {}
    con.execute("CREATE OR REPLACE TEMP TABLE policy (key VARCHAR, policy VARCHAR)")
    if conflict:
        con.executemany("INSERT INTO policy VALUES (?, ?)", sorted(conflict.items()))
    bad = con.execute("SELECT key, policy FROM policy WHERE policy NOT IN "
                      "('ats_wins', 'keap_wins')").fetchall()
    if bad:
        raise ValueError(f"sync/keap_desired manifest: conflict policy {bad[0][1]!r} for field "
                         f"{bad[0][0]!r} is neither ats_wins nor keap_wins: fix the mapping")
    con.execute("CREATE OR REPLACE TEMP TABLE managed (tag_key VARCHAR)")
    tags = desired_m.get("managed_tags") or []
    if tags:
        con.executemany("INSERT INTO managed VALUES (?)",
                        [(t.strip().lower(),) for t in sorted(set(tags))])


# -- field differences -------------------------------------------------------------------
def field_diffs(con: duckdb.DuckDBPyConnection) -> None:
    """`want` (every desired field of every profile) and `diff` (the matched profiles' fields
    that change, each with its new value, or kept with a note)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE want AS
        SELECT profile_id, e.key, e.value,
               CASE WHEN e.key IN ('email', 'phone') THEN e.key
                    WHEN starts_with(e.key, 'custom:') THEN 'custom' ELSE 'scalar' END AS kind,
               CASE WHEN starts_with(e.key, 'custom:') THEN lower(trim(e.key[8:])) END
                   AS label_key
        FROM (SELECT profile_id, unnest(map_entries(fields)) AS e FROM desired)
    """)
    # Keap's custom field values by label (an id resolves through the custom field backup)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE k_cf AS
        WITH items AS (SELECT contact_id, unnest(custom) AS c FROM k_contact
                       WHERE contact_id IN (SELECT contact_id FROM matched))
        SELECT contact_id, coalesce(d.label_key, lower(trim(c.label))) AS label_key,
               c.id, c.label, c.content
        FROM items LEFT JOIN cf_dict d ON d.id = c.id
    """)
    # the value we last wrote per (contact, field): tells a human's edit from ours
    con.execute("""
        CREATE OR REPLACE TEMP TABLE last_val AS
        SELECT contact_id, e.key, arg_max(e.value, written_at) AS value
        FROM (SELECT contact_id, written_at, unnest(map_entries(field_values)) AS e FROM written
              WHERE action IN ('create', 'update') AND field_values IS NOT NULL)
        GROUP BY ALL
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE diff AS
        WITH w AS (
            SELECT m.contact_id, w.*, cf.id AS cf_id, coalesce(cf.label, w.key[8:]) AS cf_label,
                   coalesce(cf.field_type, 'TEXT') AS field_type,
                   coalesce(p.policy, 'ats_wins') AS policy
            FROM want w JOIN matched m USING (profile_id)
            LEFT JOIN cf_dict cf USING (label_key)
            LEFT JOIN policy p USING (key)),
        cur AS (
            SELECT w.*, k.email_slots, k.phone_slots,
                   CASE w.kind
                       WHEN 'scalar' THEN nullif(trim(s.value), '')
                       WHEN 'custom' THEN cf_cmp(kc.content)
                   END AS cur,
                   CASE w.kind
                       WHEN 'scalar' THEN nullif(trim(w.value), '')
                       WHEN 'custom' THEN cf_cmp(cf_content(w.value, w.field_type))
                   END AS ours,
                   CASE w.kind
                       WHEN 'scalar' THEN nullif(trim(lv.value), '')
                       WHEN 'custom' THEN cf_cmp(cf_content(lv.value, w.field_type))
                   END AS last_ours,
                   CASE w.kind
                       WHEN 'email' THEN list_contains(k.emails_norm, lower(trim(w.value)))
                       WHEN 'phone' THEN list_contains(k.phones_norm, trim(w.value))
                   END AS held
            FROM w JOIN k_contact k USING (contact_id)
            LEFT JOIN k_scalar s ON w.kind = 'scalar' AND s.contact_id = w.contact_id
                AND s.key = w.key
            LEFT JOIN (SELECT * FROM k_cf QUALIFY row_number() OVER (
                           PARTITION BY contact_id, label_key ORDER BY id_order(id)) = 1) kc
                ON w.kind = 'custom' AND kc.contact_id = w.contact_id
                AND kc.label_key = w.label_key
            LEFT JOIN last_val lv ON lv.contact_id = w.contact_id AND lv.key = w.key),
        judged AS (
            SELECT *,
                   CASE WHEN kind IN ('email', 'phone') THEN value IS NOT NULL AND NOT held
                        ELSE ours IS DISTINCT FROM cur END AS differs,
                   -- keap_wins: Keap holds a value that is not the one we last wrote to the
                   -- field, so a human set it after (or before) our writes (docs/sync.md)
                   policy = 'keap_wins' AND kind IN ('scalar', 'custom') AND cur IS NOT NULL
                       AND (last_ours IS NULL OR last_ours IS DISTINCT FROM cur) AS keap_kept,
                   CASE kind
                       WHEN 'email' THEN first_free(
                           list_transform(email_slots, lambda e: e.field),
                           ['EMAIL1', 'EMAIL2', 'EMAIL3'])
                       WHEN 'phone' THEN first_free(
                           list_transform(phone_slots, lambda p: p.field),
                           ['PHONE1', 'PHONE2', 'PHONE3', 'PHONE4', 'PHONE5'])
                   END AS free_slot
            FROM cur)
        SELECT profile_id, contact_id, key, kind, label_key, value, cf_id, cf_label, field_type,
               email_slots, phone_slots, free_slot,
               CASE WHEN keap_kept THEN key || ' kept: Keap''s value was set outside the sync '
                                          || '(keap_wins)'
                    WHEN kind IN ('email', 'phone') AND free_slot IS NULL
                        THEN key || ' not added: no free ' || upper(key) || ' slot'
               END AS note,
               NOT keap_kept AND (kind NOT IN ('email', 'phone') OR free_slot IS NOT NULL)
                   AS apply
        FROM judged WHERE differs
    """)


# -- Keap's limits: the reject list ------------------------------------------------------------
def limits(con: duckdb.DuckDBPyConnection) -> None:
    """`keap_limits(keap_field, max_len)` from KEAP_MAX_LENGTH and the empty `rejects` table:
    one row per change the changeset does not send (profile, contact, the desired key `field`,
    the Keap field or slot, the value's length and Keap's limit, `scope` = field (the rest of the
    contact still syncs) or contact (nothing is sent for the profile), a readable reason)."""
    con.execute("CREATE OR REPLACE TEMP TABLE keap_limits (keap_field VARCHAR, max_len INTEGER)")
    con.executemany("INSERT INTO keap_limits VALUES (?, ?)", sorted(KEAP_MAX_LENGTH.items()))
    con.execute("""CREATE OR REPLACE TEMP TABLE rejects (
                       profile_id BIGINT, contact_id VARCHAR, action VARCHAR, field VARCHAR,
                       keap_field VARCHAR, length INTEGER, max_length INTEGER, scope VARCHAR,
                       reason VARCHAR)""")


def update_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """Updates Keap would refuse, caught before they are sent (each one is in `rejects`, and
    left out of the PATCH: `diff.apply` false, with a note; the contact's other fields still
    go):

    - a value longer than Keap allows for its field, or for the EMAIL/PHONE slot it would take;
    - our email when the contact's email list holds an address Keap itself refuses (a bad
      address a person typed into Keap, or one longer than its slot): Keap replaces the list
      whole, so adding ours means sending theirs back, and the whole PATCH would fail. Their
      address is never dropped either (arrays never lose a value): the email waits until the
      address is fixed in Keap. The same for a phone list holding a number too long for its
      slot."""
    con.execute("""
        INSERT INTO rejects
        SELECT d.profile_id, d.contact_id, 'update', d.key, l.keap_field, length(v.value),
               l.max_len, 'field',
               'profile ' || d.profile_id || ': ' || d.key || ' is ' || length(v.value)
               || ' characters, Keap allows ' || l.max_len
               || CASE WHEN d.kind = 'scalar' THEN '' ELSE ' in ' || l.keap_field END
               || '; not sent to contact ' || d.contact_id
               || ' (its other fields still sync): shorten it in Greenhouse'
        FROM diff d
        JOIN keap_limits l ON l.keap_field = CASE d.kind WHEN 'scalar' THEN d.key
                                                         ELSE d.free_slot END
        CROSS JOIN LATERAL (SELECT CASE WHEN d.kind = 'scalar' THEN d.value
                                        ELSE trim(d.value) END AS value) v
        WHERE d.apply AND d.kind IN ('scalar', 'email', 'phone') AND v.value IS NOT NULL
          AND length(v.value) > l.max_len
    """)
    # the addresses Keap holds on contacts we would send an email list to
    con.execute("""
        CREATE OR REPLACE TEMP TABLE held_emails AS
        SELECT h.profile_id, h.contact_id, h.s.field AS slot, h.s.email AS raw
        FROM (SELECT profile_id, contact_id, unnest(email_slots) AS s FROM diff d
              WHERE apply AND kind = 'email' AND NOT EXISTS (
                  SELECT 1 FROM rejects r WHERE r.contact_id = d.contact_id
                  AND r.field = 'email')) h
    """)
    if con.execute("SELECT count(*) FROM held_emails").fetchall()[0][0]:
        from assets.identity import emails
        from assets.identity.config import NormalizationConfig

        emails.register(con)
        emails.normalize_emails(con, "SELECT DISTINCT raw FROM held_emails WHERE raw IS NOT NULL",
                                "held_norm", NormalizationConfig())
        valid = "SELECT raw FROM held_norm WHERE email IS NOT NULL"
    else:
        valid = "SELECT NULL::VARCHAR AS raw LIMIT 0"
    con.execute(f"""
        INSERT INTO rejects
        SELECT profile_id, contact_id, 'update', 'email', slot, len, max_len, 'field',
               'profile ' || profile_id || ': Keap contact ' || contact_id
               || ' holds an address Keap refuses in ' || coalesce(slot, '?') || ' ('
               || CASE WHEN too_long THEN len || ' characters, Keap allows ' || max_len
                       ELSE 'not a valid email address' END
               || '); the profile''s email was not added, since that would send the list back'
               || ' with it (its other fields still sync): fix or remove that address in Keap'
        FROM (SELECT h.*, length(trim(coalesce(h.raw, ''))) AS len, l.max_len,
                     length(trim(coalesce(h.raw, ''))) > coalesce(l.max_len, 100) AS too_long,
                     coalesce(trim(h.raw), '') = '' OR h.raw NOT IN ({valid}) AS invalid
              FROM held_emails h LEFT JOIN keap_limits l ON l.keap_field = h.slot)
        WHERE too_long OR invalid
        QUALIFY row_number() OVER (PARTITION BY contact_id ORDER BY slot) = 1
    """)
    con.execute("""
        INSERT INTO rejects
        SELECT profile_id, contact_id, 'update', 'phone', slot, len, max_len, 'field',
               'profile ' || profile_id || ': Keap contact ' || contact_id
               || ' holds a phone number Keap refuses in ' || slot || ' (' || len
               || ' characters, Keap allows ' || max_len || '); the profile''s phone was not '
               || 'added, since that would send the list back with it (its other fields still '
               || 'sync): fix or remove that number in Keap'
        FROM (SELECT d.profile_id, d.contact_id, p.field AS slot,
                     length(coalesce(p.number, '')) AS len, l.max_len
              FROM (SELECT profile_id, contact_id, unnest(phone_slots) AS p FROM diff d
                    WHERE apply AND kind = 'phone' AND NOT EXISTS (
                        SELECT 1 FROM rejects r WHERE r.contact_id = d.contact_id
                        AND r.field = 'phone')) d
              JOIN keap_limits l ON l.keap_field = d.p.field)
        WHERE len > max_len OR len = 0
        QUALIFY row_number() OVER (PARTITION BY contact_id ORDER BY slot) = 1
    """)
    con.execute("""
        UPDATE diff SET apply = false,
               note = key || ' not sent: Keap would refuse it (see sync.keap_rejects)'
        WHERE EXISTS (SELECT 1 FROM rejects r WHERE r.action = 'update'
                      AND r.contact_id = diff.contact_id AND r.field = diff.key)
    """)


def create_rejects(con: duckdb.DuckDBPyConnection) -> None:
    """Creates Keap would refuse, caught before they are sent: a profile whose email is longer
    than EMAIL1 allows cannot be created (nor matched later), so nothing is sent for it (scope
    contact, and it leaves `unmatched`); a field longer than Keap allows is left out of the
    create body (scope field), the rest of the contact is created."""
    con.execute("""
        INSERT INTO rejects
        WITH e AS (
            SELECT u.profile_id,
                   trim(coalesce((SELECT w.value FROM want w WHERE w.profile_id = u.profile_id
                                  AND w.key = 'email'), u.email)) AS value
            FROM unmatched u)
        SELECT e.profile_id, NULL, 'create', 'email', 'EMAIL1', length(e.value), l.max_len,
               'contact',
               'profile ' || e.profile_id || ': email is ' || length(e.value)
               || ' characters, Keap allows ' || l.max_len || ' in EMAIL1; the contact is not '
               || 'created (nothing is sent for this profile): shorten or replace the email in '
               || 'Greenhouse'
        FROM e JOIN keap_limits l ON l.keap_field = 'EMAIL1'
        WHERE length(e.value) > l.max_len
    """)
    con.execute("""
        DELETE FROM unmatched WHERE profile_id IN
            (SELECT profile_id FROM rejects WHERE action = 'create' AND scope = 'contact')
    """)
    con.execute("""
        INSERT INTO rejects
        SELECT w.profile_id, NULL, 'create', w.key, l.keap_field, length(w.value), l.max_len,
               'field',
               'profile ' || w.profile_id || ': ' || w.key || ' is ' || length(w.value)
               || ' characters, Keap allows ' || l.max_len
               || CASE WHEN w.kind = 'phone' THEN ' in PHONE1' ELSE '' END
               || '; left out of the new contact (its other fields are sent): shorten it in '
               || 'Greenhouse'
        FROM want w JOIN unmatched u USING (profile_id)
        JOIN keap_limits l ON l.keap_field = CASE w.kind WHEN 'scalar' THEN w.key
                                                         WHEN 'phone' THEN 'PHONE1' END
        WHERE w.value IS NOT NULL AND length(w.value) > l.max_len
    """)


# -- rows -----------------------------------------------------------------------------------------
def changes(con: duckdb.DuckDBPyConnection, desired_m: dict[str, Any]) -> None:
    """`changeset`: create, update, tag_add and tag_remove rows with change ids; dead-lettered
    ones moved to `skipped`."""
    _updates(con)
    _creates(con)
    _tags(con)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE all_changes AS
        WITH u AS (
            SELECT 'update' AS action, profile_id, contact_id, d.email AS match_email,
                   fields, body, update_mask, NULL::VARCHAR AS tag, NULL::VARCHAR AS tag_id,
                   conflict, field_values
            FROM upd JOIN (SELECT profile_id, email FROM desired) d USING (profile_id)
            UNION ALL
            SELECT 'create', profile_id, NULL, match_email, fields, body, NULL, NULL, NULL,
                   NULL, field_values FROM cre
            UNION ALL
            SELECT action, profile_id, contact_id, match_email, ['tag_ids'], NULL, NULL, tag,
                   tag_id, NULL, NULL FROM tagrows),
        ids AS (
            SELECT *, sha256(concat_ws(chr(31), action, CAST(profile_id AS VARCHAR),
                         coalesce(contact_id, 'email:' || match_email),
                         to_json({'body': body, 'tag': tag, 'update_mask': update_mask})
                     ))[:32] AS change_id
            FROM u)
        SELECT i.*, c.change_id AS depends_on
        FROM ids i LEFT JOIN ids c ON i.action IN ('tag_add', 'tag_remove')
            AND i.contact_id IS NULL AND c.action = 'create' AND c.profile_id = i.profile_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE skipped AS
        SELECT * FROM all_changes
        WHERE change_id IN (SELECT change_id FROM dead)
           OR depends_on IN (SELECT change_id FROM dead)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE changeset AS
        SELECT * FROM all_changes WHERE change_id NOT IN (SELECT change_id FROM skipped)
    """)


def _updates(con: duckdb.DuckDBPyConnection) -> None:
    """`upd`: one PATCH per matched contact with differing fields."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE upd_parts AS
        -- standard fields
        SELECT contact_id, CASE WHEN key = 'company' THEN 'company' ELSE key END AS top,
               CASE WHEN key = 'company' THEN
                        CASE WHEN value IS NULL THEN 'null'
                             ELSE '{"company_name":' || to_json(value) || '}' END
                    ELSE coalesce(CAST(to_json(value) AS VARCHAR), 'null') END AS json
        FROM diff WHERE apply AND kind = 'scalar'
        UNION ALL
        -- emails: Keap's array, plus ours in the first free slot
        SELECT contact_id, 'email_addresses', json_list(list_transform(list_sort(
                   list_transform(list_append(email_slots,
                                              {'email': value, 'field': free_slot}),
                                  lambda e: {'field': e.field, 'email': e.email})),
                   lambda e: email_item(e)))
        FROM diff WHERE apply AND kind = 'email'
        UNION ALL
        SELECT contact_id, 'phone_numbers', json_list(list_transform(list_sort(
                   list_transform(list_append(phone_slots,
                                              {'number': value, 'extension': NULL,
                                               'type': NULL, 'field': free_slot}),
                                  lambda p: {'field': p.field, 'number': p.number,
                                             'extension': p.extension, 'type': p.type})),
                   lambda p: phone_item(p)))
        FROM diff WHERE apply AND kind = 'phone'
    """)
    # custom fields: every value Keap holds, ours set (one array per contact)
    con.execute("""
        INSERT INTO upd_parts
        WITH ours AS (SELECT contact_id, label_key, cf_id AS id, cf_label AS label,
                             cf_content(value, field_type) AS content
                      FROM diff WHERE apply AND kind = 'custom'),
        theirs AS (SELECT k.contact_id, k.label_key, k.id, k.label, k.content FROM k_cf k
                   WHERE k.contact_id IN (SELECT contact_id FROM ours)
                     AND NOT EXISTS (SELECT 1 FROM ours o WHERE o.contact_id = k.contact_id
                                     AND o.label_key IS NOT DISTINCT FROM k.label_key)),
        items AS (SELECT * FROM ours UNION ALL SELECT * FROM theirs)
        SELECT contact_id, 'custom_fields',
               json_list(list(cf_item(id, label, content)
                              ORDER BY id IS NULL, id_order(id), label))
        FROM items GROUP BY contact_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE upd AS
        WITH body AS (
            SELECT contact_id,
                   '{' || string_agg(to_json(top) || ':' || json, ',' ORDER BY top) || '}'
                       AS body,
                   list(top ORDER BY top) AS update_mask
            FROM upd_parts GROUP BY contact_id),
        f AS (
            SELECT contact_id, any_value(profile_id) AS profile_id,
                   list(key ORDER BY key) FILTER (WHERE apply) AS fields,
                   map(list(key ORDER BY key) FILTER (WHERE apply),
                       list(value ORDER BY key) FILTER (WHERE apply)) AS field_values,
                   string_agg(note, '; ' ORDER BY key) AS notes
            FROM diff GROUP BY contact_id)
        SELECT f.profile_id, contact_id, f.fields, b.body, b.update_mask, f.field_values,
               nullif(concat_ws('; ', m.match_conflict, f.notes), '') AS conflict
        FROM body b JOIN f USING (contact_id) JOIN matched m USING (contact_id)
    """)


def _creates(con: duckdb.DuckDBPyConnection) -> None:
    """`cre`: one upsert (POST ?duplicate_option=Email) per profile no contact holds."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE unmatched AS
        SELECT * FROM desired WHERE profile_id NOT IN (SELECT profile_id FROM pick)
    """)
    create_rejects(con)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cre AS
        WITH w AS (
            SELECT w.profile_id, w.key, w.kind, w.label_key,
                   CASE WHEN w.key = 'email' THEN coalesce(w.value, u.email) ELSE w.value END
                       AS value
            FROM want w JOIN unmatched u USING (profile_id)
            WHERE NOT EXISTS (SELECT 1 FROM rejects r WHERE r.action = 'create'
                              AND r.profile_id = w.profile_id AND r.field = w.key)
            UNION ALL  -- the match email even when the mapping does not name it
            SELECT profile_id, 'email', 'email', NULL, email FROM unmatched
            WHERE NOT map_contains(fields, 'email')),
        parts AS (
            SELECT profile_id, CASE WHEN key = 'company' THEN 'company' ELSE key END AS top,
                   CASE WHEN key = 'company' THEN '{"company_name":' || to_json(value) || '}'
                        ELSE CAST(to_json(value) AS VARCHAR) END AS json
            FROM w WHERE kind = 'scalar' AND value IS NOT NULL
            UNION ALL
            SELECT profile_id, 'email_addresses',
                   json_list([email_item({'email': value, 'field': 'EMAIL1'})])
            FROM w WHERE kind = 'email'
            UNION ALL
            SELECT profile_id, 'phone_numbers',
                   json_list([phone_item({'number': value, 'extension': NULL::VARCHAR,
                                          'type': NULL::VARCHAR, 'field': 'PHONE1'})])
            FROM w WHERE kind = 'phone' AND value IS NOT NULL
            UNION ALL
            SELECT profile_id, 'custom_fields',
                   json_list(list(cf_item(cf.id, coalesce(cf.label, w.key[8:]),
                                          cf_content(w.value, coalesce(cf.field_type, 'TEXT')))
                                  ORDER BY cf.id IS NULL, id_order(cf.id), w.key))
            FROM w LEFT JOIN cf_dict cf USING (label_key)
            WHERE w.kind = 'custom' AND w.value IS NOT NULL GROUP BY profile_id),
        f AS (SELECT profile_id, list(key ORDER BY key) AS fields,
                     map(list(key ORDER BY key), list(value ORDER BY key)) AS field_values
              FROM w WHERE value IS NOT NULL GROUP BY profile_id)
        SELECT p.profile_id, u.email AS match_email, f.fields, f.field_values,
               '{' || string_agg(to_json(top) || ':' || json, ',' ORDER BY top) || '}' AS body
        FROM parts p JOIN unmatched u USING (profile_id) JOIN f USING (profile_id)
        GROUP BY ALL
    """)


def _tags(con: duckdb.DuckDBPyConnection) -> None:
    """`tagrows`: managed tags to add (any desired tag the contact lacks) and to remove
    (managed tags the contact carries and should not)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE tagrows AS
        WITH wt AS (SELECT DISTINCT ON (profile_id, tag_key) profile_id, tag,
                           lower(trim(tag)) AS tag_key
                    FROM (SELECT profile_id, unnest(tags) AS tag FROM desired)
                    WHERE nullif(trim(tag), '') IS NOT NULL),
        target AS (SELECT profile_id, m.contact_id, d.email AS match_email
                   FROM matched m JOIN (SELECT profile_id, email FROM desired) d
                       USING (profile_id)
                   UNION ALL SELECT profile_id, NULL, email FROM unmatched)
        SELECT 'tag_add' AS action, t.profile_id, t.contact_id, t.match_email, wt.tag,
               d.tag_id
        FROM target t JOIN wt USING (profile_id) LEFT JOIN tag_dict d USING (tag_key)
        WHERE NOT EXISTS (SELECT 1 FROM k_tag k WHERE k.contact_id = t.contact_id
                          AND k.tag_key = wt.tag_key)
        UNION ALL
        SELECT 'tag_remove', m.profile_id, m.contact_id, m.match_email, k.tag, d.tag_id
        FROM target m JOIN k_tag k USING (contact_id) JOIN managed USING (tag_key)
        LEFT JOIN tag_dict d USING (tag_key)
        WHERE NOT EXISTS (SELECT 1 FROM wt WHERE wt.profile_id = m.profile_id
                          AND wt.tag_key = k.tag_key)
    """)


# -- summaries ----------------------------------------------------------------------------------
def summary_counts(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Counts for metadata and the manifest: per action, contacts and fields touched,
    conflicts, skipped (dead letter, shared contact). No values."""
    by_action = dict(con.execute(
        "SELECT action, count(*) FROM changeset GROUP BY action").fetchall())
    fields = dict(con.execute("""
        SELECT f, count(*) FROM (SELECT unnest(fields) AS f FROM changeset
                                 WHERE action IN ('create', 'update'))
        GROUP BY f ORDER BY f""").fetchall())
    contacts, profiles, conflicts = con.execute("""
        SELECT count(DISTINCT contact_id), count(DISTINCT profile_id),
               count(*) FILTER (WHERE conflict IS NOT NULL) FROM changeset""").fetchone()
    kept, no_slot = con.execute("""
        SELECT count(*) FILTER (WHERE note LIKE '%(keap_wins)'),
               count(*) FILTER (WHERE note LIKE '%slot') FROM diff""").fetchone()
    rejected, rejected_contacts, rejected_profiles = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE scope = 'contact'), count(DISTINCT profile_id)
        FROM rejects""").fetchone()
    skipped = con.execute("SELECT count(*) FROM skipped").fetchone()[0]
    shared = con.execute("SELECT count(*) FROM shared").fetchone()[0]
    return {
        **{a: int(by_action.get(a, 0)) for a in ACTIONS},
        "changes": int(sum(by_action.values())),
        "contacts_touched": int(contacts) + int(by_action.get("create", 0)),
        "profiles_touched": int(profiles),
        "fields_touched": {k: int(v) for k, v in fields.items()},
        "conflicts": int(conflicts),
        "fields_kept_keap_wins": int(kept),
        "fields_without_free_slot": int(no_slot),
        "skipped_dead_letter": int(skipped),
        "skipped_shared_contact": int(shared),
        "rejected": int(rejected),
        "rejected_contacts": int(rejected_contacts),
        "rejected_profiles": int(rejected_profiles),
    }


def changeset_partition(root: Path, day: str) -> Path:
    return partition_dir(root, NAME, day, SOURCE)


# -- the Dagster asset -----------------------------------------------------------------------------
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
