"""Phone normalization to E.164 with phonenumbers, on DISTINCT values, set-based.

phonenumbers costs ~60-90 µs a value; a million distinct numbers would take a minute and a
half. Most values have a shape whose library result is a pure function of its digits, so SQL
computes those from the library's own metadata (country calling codes, national and
international prefixes, possible lengths), and only the rest go to the library:

- fast path (SQL): only digits and `( ) . -` separators, an optional leading `+`, an optional
  ` x123` / ` ext. 22` extension (E.164 drops it). International (`+`): the country code is
  the 1-3 digit prefix phonenumbers would pick; national: the default region's code is
  prepended. A shape where phonenumbers would strip a prefix (national prefix `0`, an
  international dialling prefix like `011`, a leading country code) goes to the library,
  except the US `1` trunk prefix (`1-415-555-0134`), which is exact;
- library: everything else (letters `1-800-FLOWERS`, other extension styles, prefixes to strip,
  `phone_validation: valid`), through a DuckDB Arrow UDF.

Accepted numbers are IS_POSSIBLE in phonenumbers' terms (possible length for the country,
not "local only": a 7-digit US number without area code is refused). The unit tests compare
both paths with the library on every shape the sandbox generates and on random strings.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import duckdb
import pyarrow as pa

from assets.identity.config import NormalizationConfig

EXTENSION = r"\s+(x|ext\.?)\s?[0-9]{1,7}$"
FAST_SHAPE = r"^\+?[0-9( ).\-]*[0-9][0-9( ).\-]*$"


@cache
def country_codes() -> pa.Table:
    """Per country calling code: the national prefix phonenumbers strips when parsing (if a
    plain digit string), whether it is anything more complex, and the possible lengths."""
    import phonenumbers as pn
    from phonenumbers import PhoneMetadata

    rows: dict[str, list[Any]] = {"cc": [], "np": [], "np_complex": [], "lengths": [],
                                  "local_only": []}
    for cc in sorted(pn.COUNTRY_CODE_TO_REGION_CODE):
        region = pn.region_code_for_country_code(cc)
        meta = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
        if meta is None or meta.general_desc is None:
            continue
        npp = meta.national_prefix_for_parsing
        # "0" or "0|180020": literal prefixes SQL can test; anything else is left to the library
        simple = npp is None or re.fullmatch(r"\d+(\|\d+)*", npp) is not None
        rows["cc"].append(str(cc))
        rows["np"].append(npp.split("|") if npp and simple else None)
        rows["np_complex"].append(not simple or meta.national_prefix_transform_rule is not None)
        rows["lengths"].append([n for n in meta.general_desc.possible_length if n > 0])
        rows["local_only"].append(list(meta.general_desc.possible_length_local_only))
    return pa.table(rows, schema=pa.schema([
        ("cc", pa.string()), ("np", pa.list_(pa.string())), ("np_complex", pa.bool_()),
        ("lengths", pa.list_(pa.int64())), ("local_only", pa.list_(pa.int64()))]))


@cache
def region_rules(region: str) -> dict[str, Any]:
    """The default region's calling code and the prefixes that make the fast path step aside."""
    import phonenumbers as pn
    from phonenumbers import PhoneMetadata

    meta = PhoneMetadata.metadata_for_region(region.upper())
    if meta is None:
        raise ValueError(f"default_phone_region {region!r} is not a region phonenumbers knows "
                         "(use an ISO 3166 code such as US, GB, DE)")
    return {"cc": str(meta.country_code), "idd": meta.international_prefix or "",
            "np": meta.national_prefix_for_parsing or "",
            "us_trunk": region.upper() == "US" and pn.region_code_for_country_code(1) == "US"}


def library_e164(values: pa.Array | pa.ChunkedArray, region: str, validation: str) -> pa.Array:
    import phonenumbers as pn

    possible = pn.ValidationResult.IS_POSSIBLE
    e164 = pn.PhoneNumberFormat.E164
    out: list[str | None] = []
    a = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    for v in a.to_pylist():
        try:
            n = pn.parse(v, region) if v is not None else None
        except pn.NumberParseException:
            n = None
        if n is None:
            out.append(None)
            continue
        ok = (pn.is_valid_number(n) if validation == "valid"
              else pn.is_possible_number_with_reason(n) == possible)
        out.append(pn.format_number(n, e164) if ok else None)
    return pa.array(out, pa.string())


def register(con: duckdb.DuckDBPyConnection, cfg: NormalizationConfig) -> None:
    region, validation = cfg.default_phone_region.upper(), cfg.phone_validation
    region_rules(region)  # fail early on an unknown region

    def udf(values: pa.Array | pa.ChunkedArray) -> pa.Array:
        return library_e164(values, region, validation)

    v = duckdb.sqltype("VARCHAR")
    con.create_function("tv_phone_library", udf, [v], v, type="arrow",
                        side_effects=False, null_handling="special")
    con.register("_tv_country_codes", country_codes())


def _quote(s: str) -> str:
    return s.replace("'", "''")


def _fast_sql(cfg: NormalizationConfig) -> str:
    """SQL over `_phone_split(raw, v, d, plus, shape_ok)` giving (raw, e164, fast)."""
    r = region_rules(cfg.default_phone_region.upper())
    cc, idd, np = r["cc"], _quote(r["idd"]), _quote(r["np"])
    strip_idd = f"regexp_matches(d, '^(?:{idd})')" if idd else "FALSE"
    strip_np = f"regexp_matches(d, '^(?:{np})')" if np else "FALSE"
    us_trunk = "regexp_full_match(d, '1[2-9][0-9]{9}')" if r["us_trunk"] else "FALSE"
    cc_pick = ("CASE WHEN d[1:1] IN (SELECT cc FROM _tv_country_codes) THEN d[1:1] "
               "WHEN d[1:2] IN (SELECT cc FROM _tv_country_codes) THEN d[1:2] "
               "WHEN d[1:3] IN (SELECT cc FROM _tv_country_codes) THEN d[1:3] END")
    return f"""
        WITH s AS (
            SELECT raw, d, plus, shape_ok,
                   CASE WHEN plus THEN {cc_pick} ELSE '{cc}' END AS cc,
                   CASE WHEN NOT shape_ok OR '{cfg.phone_validation}' = 'valid' THEN 'library'
                        WHEN plus THEN 'international'
                        WHEN {us_trunk} THEN 'us_trunk'
                        WHEN {strip_idd} OR starts_with(d, '{cc}') OR {strip_np} THEN 'library'
                        ELSE 'national' END AS path
            FROM _phone_split
        ),
        n AS (
            SELECT s.*, CASE WHEN path = 'international' THEN d[length(cc) + 1:]
                             WHEN path = 'us_trunk' THEN d[2:]
                             ELSE d END AS nsn
            FROM s
        )
        SELECT n.raw,
            CASE WHEN list_contains(c.lengths, length(n.nsn))
                      AND NOT list_contains(c.local_only, length(n.nsn))
                 THEN '+' || n.cc || n.nsn END AS e164,
            coalesce(NOT (n.path = 'library' OR c.cc IS NULL OR c.np_complex
                 OR (n.path = 'international' AND c.np IS NOT NULL
                     AND len(list_filter(c.np, lambda p: starts_with(n.nsn, p))) > 0)),
                     FALSE) AS fast
        FROM n LEFT JOIN _tv_country_codes c ON c.cc = n.cc
    """


def normalize_phones(con: duckdb.DuckDBPyConnection, values_sql: str, target: str,
                     cfg: NormalizationConfig) -> dict[str, Any]:
    """Create table `target(raw, e164)`: one row per DISTINCT non-null `raw` of `values_sql`;
    `e164` is NULL when the value is not a possible phone number."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _phone_split AS
        WITH d AS (SELECT DISTINCT raw FROM ({values_sql}) WHERE raw IS NOT NULL),
        f AS (SELECT raw, trim(regexp_replace(tv_fold_keep_case(raw), '{EXTENSION}', ''))
                          AS body FROM d)
        SELECT raw, regexp_replace(body, '[^0-9]', '', 'g') AS d, starts_with(body, '+') AS plus,
               regexp_full_match(body, '{FAST_SHAPE}') AS shape_ok
        FROM f
    """)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _phone_fast AS {_fast_sql(cfg)}")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT raw, e164 FROM _phone_fast WHERE fast
        UNION ALL
        SELECT raw, tv_phone_library(raw) FROM _phone_fast WHERE NOT fast
    """)
    counts = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT fast) FROM _phone_fast").fetchall()[0]
    con.execute("DROP TABLE _phone_split")
    con.execute("DROP TABLE _phone_fast")
    return {"distinct_phones": counts[0], "phone_library_calls": counts[1]}


def reference_phone(raw: str, cfg: NormalizationConfig | None = None) -> str | None:
    """One value through the library only (tests, ad-hoc use)."""
    cfg = cfg or NormalizationConfig()
    return library_e164(pa.array([raw]), cfg.default_phone_region.upper(),
                        cfg.phone_validation)[0].as_py()
