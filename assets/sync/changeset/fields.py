"""Step 3, field differences: only the fields whose value differs; `keap_wins` fields a human
changed in Keap after our last write keep Keap's value."""

from __future__ import annotations

import duckdb


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
