"""Email normalization and syntax validation, on DISTINCT values, set-based.

An address is folded (Unicode NFKC, surrounding whitespace trimmed, lower-cased), split at its
last `@`, and validated with email-validator (syntax only: no DNS). The library costs ~160 µs
an address, mostly in its domain checks, so the work is split where the result cannot differ:

- domains: every DISTINCT domain goes through the library (a few thousand, not a million);
  its IDNA (ASCII) form is the normalized domain;
- local parts matching RFC 5322 dot-atom (the library's own first test, which accepts them
  unchanged) are valid without a call; the others (spaces, `..`, `@@`, non-ASCII, quotes) go
  to the library, which validates them and gives the reason;
- the total length limit (254 octets) is checked in SQL.

`tests/unit/test_identity.py` proves the split equals calling the library on whole addresses.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from assets.identity.config import NormalizationConfig

# RFC 5322 atext, as email-validator's DOT_ATOM_TEXT (the SQL literal doubles the quote)
ATEXT = "a-zA-Z0-9_!#$%&''*+/=?^`{|}~-"
DOT_ATOM = f"^[{ATEXT}]+(\\.[{ATEXT}]+)*$"
EMAIL_MAX_LENGTH = 254
PROBE_DOMAIN = "a.co"          # a cheap valid domain to validate a local part on its own
PROBE_LOCAL = "a"

RESULT = duckdb.struct_type({"value": duckdb.sqltype("VARCHAR"),
                             "error": duckdb.sqltype("VARCHAR")})


def _chunk(a: pa.Array | pa.ChunkedArray) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def fold(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, trim (Unicode whitespace), lower-case: vectorized Arrow compute."""
    a = _chunk(values)
    return pc.utf8_lower(pc.utf8_trim_whitespace(pc.utf8_normalize(a, "NFKC")))


def _library(values: pa.Array | pa.ChunkedArray, template: str, part: str) -> pa.StructArray:
    """email-validator on each value put into `template`; returns (normalized part, error)."""
    from email_validator import EmailNotValidError, validate_email

    out_value: list[str | None] = []
    out_error: list[str | None] = []
    for v in _chunk(values).to_pylist():
        if v is None:
            out_value.append(None)
            out_error.append(None)
            continue
        try:
            r = validate_email(template.format(v), check_deliverability=False)
            out_value.append(r.ascii_domain if part == "domain" else r.local_part.lower())
            out_error.append(None)
        except EmailNotValidError as e:
            out_value.append(None)
            out_error.append(str(e))
    return pa.StructArray.from_arrays([pa.array(out_value, pa.string()),
                                       pa.array(out_error, pa.string())],
                                      names=["value", "error"])


def check_domains(values: pa.Array | pa.ChunkedArray) -> pa.StructArray:
    return _library(values, PROBE_LOCAL + "@{}", "domain")


def check_local_parts(values: pa.Array | pa.ChunkedArray) -> pa.StructArray:
    return _library(values, "{}@" + PROBE_DOMAIN, "local")


def register(con: duckdb.DuckDBPyConnection) -> None:
    v = duckdb.sqltype("VARCHAR")
    con.create_function("tv_fold", fold, [v], v, type="arrow",
                        side_effects=False, null_handling="special")
    con.create_function("tv_email_domain", check_domains, [v], RESULT, type="arrow",
                        side_effects=False, null_handling="special")
    con.create_function("tv_email_local", check_local_parts, [v], RESULT, type="arrow",
                        side_effects=False, null_handling="special")


def _provider_rules(cfg: NormalizationConfig) -> tuple[str, str]:
    """SQL for the local part and domain after the provider rules (off by default)."""
    gmail = ", ".join(f"'{d.lower()}'" for d in cfg.gmail_domains) or "NULL"
    local, domain = "local", "domain"
    is_gmail = f"domain IN ({gmail})"
    if cfg.remove_plus_tags:
        where = is_gmail if cfg.plus_tags_gmail_only else "TRUE"
        local = (f"CASE WHEN {where} AND strpos({local}, '+') > 1 "
                 f"THEN split_part({local}, '+', 1) ELSE {local} END")
    if cfg.gmail_remove_dots:
        local = f"CASE WHEN {is_gmail} THEN replace({local}, '.', '') ELSE {local} END"
        domain = f"CASE WHEN {is_gmail} THEN 'gmail.com' ELSE domain END"
    return local, domain


def normalize_emails(con: duckdb.DuckDBPyConnection, values_sql: str, target: str,
                     cfg: NormalizationConfig) -> dict[str, Any]:
    """Create table `target(raw, email, error)`: one row per DISTINCT non-null `raw` of
    `values_sql` (a query with a column `raw`). `email` is the normalized address, or NULL with
    the reason in `error`. Returns counts (values, library calls) for metadata."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _email_split AS
        WITH d AS (SELECT DISTINCT raw FROM ({values_sql}) WHERE raw IS NOT NULL),
        f AS (SELECT raw, tv_fold(raw) AS v FROM d),
        -- split at the last @ (split_part and length count characters alike)
        s AS (SELECT raw, v, contains(v, '@') AS has_at, split_part(v, '@', -1) AS domain
              FROM f),
        l AS (SELECT *, v[:length(v) - length(domain) - 1] AS local FROM s)
        SELECT raw, has_at, local, domain, regexp_full_match(local, '{DOT_ATOM}') AS atom
        FROM l
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _email_domain AS
        SELECT domain, tv_email_domain(domain) AS r
        FROM (SELECT DISTINCT domain FROM _email_split WHERE has_at)
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _email_local AS
        SELECT local, tv_email_local(local) AS r
        FROM (SELECT DISTINCT local FROM _email_split WHERE has_at AND NOT atom)
    """)
    local, domain = _provider_rules(cfg)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        WITH j AS (
            SELECT s.raw, s.has_at,
                   CASE WHEN s.atom THEN lower(s.local) ELSE l.r.value END AS local,
                   dm.r.value AS domain,
                   coalesce(l.r.error, dm.r.error) AS error
            FROM _email_split s
            LEFT JOIN _email_domain dm ON s.has_at AND dm.domain = s.domain
            LEFT JOIN _email_local l ON s.has_at AND NOT s.atom AND l.local = s.local
        ),
        n AS (
            SELECT raw, CASE
                WHEN NOT has_at THEN 'An email address must have an @-sign.'
                WHEN error IS NOT NULL THEN error
                WHEN octet_length(encode(local || '@' || domain)) > {EMAIL_MAX_LENGTH}
                    THEN 'The email address is too long.'
                END AS error, local, domain
            FROM j
        )
        SELECT raw, CASE WHEN error IS NULL THEN {local} || '@' || {domain} END AS email,
               error
        FROM n
    """)
    counts = con.execute("""
        SELECT (SELECT count(*) FROM _email_split),
               (SELECT count(*) FROM _email_domain) + (SELECT count(*) FROM _email_local)
    """).fetchall()[0]
    for t in ("_email_split", "_email_domain", "_email_local"):
        con.execute(f"DROP TABLE {t}")
    return {"distinct_emails": counts[0], "email_library_calls": counts[1]}


def reference_email(raw: str, cfg: NormalizationConfig | None = None) -> str | None:
    """The same normalization, one address at a time, through the library on the whole address
    (for tests and ad-hoc use; the assets use `normalize_emails`)."""
    from email_validator import EmailNotValidError, validate_email

    v = unicodedata.normalize("NFKC", raw).strip().lower()
    try:
        r = validate_email(v, check_deliverability=False)
    except EmailNotValidError:
        return None
    local, domain = r.local_part.lower(), r.ascii_domain
    cfg = cfg or NormalizationConfig()
    gmail = {d.lower() for d in cfg.gmail_domains}
    if cfg.remove_plus_tags and (domain in gmail or not cfg.plus_tags_gmail_only) \
            and local.find("+") > 0:
        local = local.split("+", 1)[0]
    if cfg.gmail_remove_dots and domain in gmail:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"
