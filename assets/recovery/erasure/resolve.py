"""Who the person is: their records, addresses and dependents, resolved set-based over every
partition of every backup, history included (the package docstring, step 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from assets.identity import suppressed
from assets.recovery.erasure.scope import KIND_NAMES, SOURCE_KIND, id_list, ids_of
from orchestration.storage.parquet import duck_path


def _entity_glob(root: Path, source: str, entity: str) -> str | None:
    base = root / source / entity
    if not any(base.glob("snapshot_date=*/*.parquet")):
        return None
    return str(base / "snapshot_date=*" / "*.parquet")


def _read(glob: str) -> str:
    return f"read_parquet('{duck_path(glob)}', union_by_name = true, hive_partitioning = false)"


def resolve(con: duckdb.DuckDBPyConnection, root: Path, email: str | None,
            source_ids: dict[str, list[str]]) -> dict[str, Any]:
    """Create TEMP TABLEs `person_ids(kind, id VARCHAR)` and `person_emails(email)` (normalized)
    and `person_needles(needle)` (every lower-cased spelling found in the backups); returns
    counts per kind."""
    from assets.identity import emails as em
    from assets.identity.config import NormalizationConfig

    em.register(con)
    parts = []
    for source, entity, kind, expr in (
            ("greenhouse", "candidates", "c",
             "list_concat(coalesce(emails, []), [primary_email])"),
            ("keap", "contacts", "k", "list_concat(coalesce(emails, []), [primary_email])"),
            ("highlevel", "contacts", "h", "[email]")):
        g = _entity_glob(root, source, entity)
        if g:
            parts.append(f"SELECT DISTINCT '{kind}' AS kind, CAST(id AS VARCHAR) AS id, "
                         f"unnest({expr}) AS raw FROM {_read(g)}")
    con.execute("CREATE OR REPLACE TEMP TABLE addr_raw (kind VARCHAR, id VARCHAR, raw VARCHAR)")
    if parts:
        con.execute("INSERT INTO addr_raw SELECT * FROM (" + " UNION ".join(parts) +
                    ") WHERE raw IS NOT NULL")
    em.normalize_emails(con, "SELECT raw FROM addr_raw", "addr_norm", NormalizationConfig())
    con.execute("""
        CREATE OR REPLACE TEMP TABLE addr AS
        SELECT r.kind, r.id, r.raw, coalesce(n.email, tv_fold(r.raw)) AS email
        FROM addr_raw r JOIN addr_norm n USING (raw)
    """)
    con.execute("CREATE OR REPLACE TEMP TABLE seeds (kind VARCHAR, id VARCHAR)")
    for source, ids in source_ids.items():
        for i in ids:
            con.execute("INSERT INTO seeds VALUES (?, ?)", [SOURCE_KIND[source], str(i)])
    con.execute("CREATE OR REPLACE TEMP TABLE person_emails (email VARCHAR)")
    if email:
        con.execute("INSERT INTO person_emails VALUES (?)",
                    [suppressed.normalize("email", email)])
    # seed records: the given ids and the records holding the given address
    con.execute("""
        INSERT INTO seeds SELECT DISTINCT kind, id FROM addr
        WHERE email IN (SELECT email FROM person_emails)
    """)
    # the person's addresses: the given one and every address on a seed record
    con.execute("""
        INSERT INTO person_emails
        SELECT DISTINCT email FROM addr SEMI JOIN seeds USING (kind, id)
        EXCEPT SELECT email FROM person_emails
    """)
    # every person record holding one of those addresses
    con.execute("""
        CREATE OR REPLACE TEMP TABLE person_ids AS
        SELECT DISTINCT kind, id FROM (
            SELECT kind, id FROM seeds
            UNION SELECT kind, id FROM addr WHERE email IN (SELECT email FROM person_emails))
    """)
    _dependents(con, root)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE person_needles AS
        SELECT DISTINCT needle FROM (
            SELECT email AS needle FROM person_emails
            UNION SELECT lower(trim(raw)) FROM addr
                  WHERE email IN (SELECT email FROM person_emails)
            UNION SELECT tv_fold(raw) FROM addr WHERE email IN (SELECT email FROM person_emails))
        WHERE needle IS NOT NULL AND needle <> '' AND contains(needle, '@')
    """)
    counts = dict(con.execute("SELECT kind, count(*) FROM person_ids GROUP BY kind").fetchall())
    out = {KIND_NAMES[k]: int(counts.get(k, 0)) for k in "ckhap"}
    out["emails"] = con.execute("SELECT count(*) FROM person_emails").fetchone()[0]
    return out


def _dependents(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    """Applications of the person's candidates, and identity profiles holding them."""
    cands = "(SELECT id FROM person_ids WHERE kind = 'c')"
    for entity in ("applications", "offers"):
        g = _entity_glob(root, "greenhouse", entity)
        if g:
            key = "id" if entity == "applications" else "application_id"
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'a', CAST({key} AS VARCHAR) FROM {_read(g)}
                WHERE CAST(candidate_id AS VARCHAR) IN {cands} AND {key} IS NOT NULL
                EXCEPT SELECT kind, id FROM person_ids
            """)
    g = _entity_glob(root, "identity", "candidate_profiles")
    if g:
        cols = set(con.sql(f"SELECT * FROM {_read(g)} LIMIT 0").columns)
        cand_cols = [c for c in ("candidate_ids", "merged_candidate_ids") if c in cols]
        conds = [f"list_has_any(CAST({c} AS VARCHAR[]), {id_list('c')})" for c in cand_cols]
        conds += _email_conditions(cols)
        if conds and "profile_id" in cols:
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'p', CAST(profile_id AS VARCHAR) FROM {_read(g)}
                WHERE {" OR ".join(f"coalesce({c}, FALSE)" for c in conds)}
                EXCEPT SELECT kind, id FROM person_ids
            """)
        if "application_ids" in cols and "profile_id" in cols:
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'a', CAST(a AS VARCHAR) FROM (
                    SELECT unnest(application_ids) AS a FROM {_read(g)}
                    WHERE CAST(profile_id AS VARCHAR) IN {ids_of('p')})
                WHERE a IS NOT NULL
                EXCEPT SELECT kind, id FROM person_ids
            """)
    g = _entity_glob(root, "identity", "keap_contacts")
    if g:
        cols = set(con.sql(f"SELECT * FROM {_read(g)} LIMIT 0").columns)
        conds = _email_conditions(cols)
        if conds and "contact_id" in cols:
            con.execute(f"""
                INSERT INTO person_ids
                SELECT DISTINCT 'k', CAST(contact_id AS VARCHAR) FROM {_read(g)}
                WHERE {" OR ".join(f"coalesce({c}, FALSE)" for c in conds)}
                EXCEPT SELECT kind, id FROM person_ids
            """)


def _email_conditions(cols: set[str]) -> list[str]:
    """Conditions on the (already normalized) `email` / `emails` columns of identity outputs."""
    out = []
    if "email" in cols:
        out.append("email IN (SELECT email FROM person_emails)")
    if "emails" in cols:
        out.append("list_has_any(emails, (SELECT coalesce(list(email), []) FROM person_emails))")
    return out
