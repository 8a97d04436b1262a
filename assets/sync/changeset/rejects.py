"""Keap's limits: values Keap would refuse are not sent but listed in the reject list
(sync/keap_rejects) with the reason and the fix."""

from __future__ import annotations

import duckdb

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
