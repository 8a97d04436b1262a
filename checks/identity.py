"""Checks of the identity assets.

On `identity/candidate_profiles` (ERROR, blocking: they gate the Keap sync):
- `extracted_equals_profiled_plus_quarantined`: every candidate and application of the day's
  backed-up state is in exactly one profile or exactly one quarantine row, and nothing else is;
- `emails_are_unique`: no normalized email is in two profiles;
- `candidates_map_to_one_profile`: every syncable candidate (and every merged-away Greenhouse
  id) is in exactly one profile.
On `identity/keap_contacts` (WARN): `keap_emails_are_unique`, Keap's own duplicates (contacts
sharing a normalized email): pre-existing mess the sync must not make worse.
On `identity/field_profile` (WARN): `fields_keep_their_shape`, `stages_and_statuses_are_mapped`,
`sync_fields_are_present` (numbers from the audit's own aggregates, not GX: they compare
per-field statistics across days, which no row-level expectation expresses).

The frames are built by DuckDB from the partitions just written (what the sync will read) and
the state that was read; Great Expectations (`checks/gx.py`, the shared runner) computes the
numbers: failing row counts, percentages and samples of failing ids, never emails or names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import dagster as dg
import duckdb

from checks import gx
from orchestration.storage.parquet import duck_path


class IdentityBuild(Protocol):
    """What the checks read of an identity build (assets/identity/build.py's IdentityBuild)."""

    root: Path
    day: str
    con: duckdb.DuckDBPyConnection
    counts: dict[str, Any]
    keap_backed_up: bool

EXTRACTED_EQUALS_PROFILED_PLUS_QUARANTINED = "extracted_equals_profiled_plus_quarantined"
EMAILS_ARE_UNIQUE = "emails_are_unique"
CANDIDATES_MAP_TO_ONE_PROFILE = "candidates_map_to_one_profile"
KEAP_EMAILS_ARE_UNIQUE = "keap_emails_are_unique"
FIELDS_KEEP_THEIR_SHAPE = "fields_keep_their_shape"
STAGES_AND_STATUSES_ARE_MAPPED = "stages_and_statuses_are_mapped"
SYNC_FIELDS_ARE_PRESENT = "sync_fields_are_present"

ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN
PROFILES_KEY = dg.AssetKey(["identity", "candidate_profiles"])
KEAP_KEY = dg.AssetKey(["identity", "keap_contacts"])
PROFILE_CHECKS = {
    EXTRACTED_EQUALS_PROFILED_PLUS_QUARANTINED: ERROR,
    EMAILS_ARE_UNIQUE: ERROR,
    CANDIDATES_MAP_TO_ONE_PROFILE: ERROR,
}
KEAP_CHECKS = {KEAP_EMAILS_ARE_UNIQUE: WARN}
DESCRIPTIONS = {
    EXTRACTED_EQUALS_PROFILED_PLUS_QUARANTINED:
        "Nothing disappears: every backed-up candidate and application is in exactly one "
        "profile or quarantined once, with a reason.",
    EMAILS_ARE_UNIQUE: "No normalized email belongs to two profiles (the sync matches Keap "
                       "contacts by email).",
    CANDIDATES_MAP_TO_ONE_PROFILE: "Every syncable Greenhouse candidate, and every candidate id "
                                   "merged away in Greenhouse, is in exactly one profile.",
    KEAP_EMAILS_ARE_UNIQUE: "Keap contacts do not share a normalized email (Keap's own "
                            "duplicates; the sync must not add to them).",
    FIELDS_KEEP_THEIR_SHAPE: "Today's records look like the previous audit's: no pattern "
                             "class (email, date, code, ...) takes over a field, no field "
                             "suddenly empty.",
    STAGES_AND_STATUSES_ARE_MAPPED: "Every stage and status value is one the Keap sync "
                                    "knows how to map.",
    SYNC_FIELDS_ARE_PRESENT: "Every field the Keap sync reads is still in the snapshots and "
                             "still filled in today's records.",
}
FIELD_CHECKS = {FIELDS_KEEP_THEIR_SHAPE: WARN, STAGES_AND_STATUSES_ARE_MAPPED: WARN,
                SYNC_FIELDS_ARE_PRESENT: WARN}
SAMPLE = 20


def field_check_specs(key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=key, description=DESCRIPTIONS[name])
            for name in FIELD_CHECKS]


def evaluate_field_checks(key: dg.AssetKey, day: str, baseline: str | None,
                          summary: dict[str, Any], missing: list[str],
                          ) -> list[dg.AssetCheckResult]:
    """The drift checks from the audit's summary (field names and stage/status values only:
    never personal data)."""
    shape = [(f, d) for f, d, sync in summary["drifted"]
             if not (sync and d.startswith("disappeared"))]
    gone = [(f, "not in the snapshots any more") for f in missing] + [
        (f, d) for f, d, sync in summary["drifted"] if sync and d.startswith("disappeared")]
    unmapped = [(f, ", ".join(f"{v['value']} ({v['count']})" for v in values[:SAMPLE]))
                for f, values in summary["unmapped"]]
    base = {"partition": day, "baseline": baseline or "none (first audit)"}
    out = []
    for name, failing, rule in (
            (FIELDS_KEEP_THEIR_SHAPE, shape,
             "no pattern class gains 30% of a field's values; no null-rate jump of 50 points"),
            (STAGES_AND_STATUSES_ARE_MAPPED, unmapped,
             "every stage/status value is in the sync mapping's vocabulary"),
            (SYNC_FIELDS_ARE_PRESENT, gone,
             "every field the sync reads exists and has values in today's records")):
        out.append(dg.AssetCheckResult(
            check_name=name, asset_key=key, passed=not failing, severity=FIELD_CHECKS[name],
            metadata={**base, "rule": rule, "failing_fields": len(failing),
                      "sample_failing_fields": dg.MetadataValue.json(
                          [f for f, _ in failing[:SAMPLE]]),
                      "details": dg.MetadataValue.md(_field_table(failing))}))
    return out


def _field_table(rows: list[tuple[str, str]]) -> str:
    if not rows:
        return "nothing to report"
    lines = ["| field | what |", "|---|---|"]
    lines += [f"| {f} | {w.replace('|', '/')} |" for f, w in rows[:SAMPLE]]
    return "\n".join(lines)


def profile_check_specs() -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=PROFILES_KEY, blocking=True,
                              description=DESCRIPTIONS[name]) for name in PROFILE_CHECKS] + [
        dg.AssetCheckSpec(name, asset=KEAP_KEY, description=DESCRIPTIONS[name])
        for name in KEAP_CHECKS]


@dataclass
class CheckRun:
    results: list[dg.AssetCheckResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def _glob(b: IdentityBuild, name: str) -> str:
    from orchestration.storage.derived import partition_glob

    return f"read_parquet('{duck_path(partition_glob(b.root, name, b.day))}')"


def _frames(b: IdentityBuild) -> dict[str, Any]:
    """pandas frames for GX, and counts for metadata; built set-based in DuckDB."""
    con = b.con
    profiles, quarantine = _glob(b, "candidate_profiles"), _glob(b, "quarantine")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE chk_profiled AS
        SELECT unnest(candidate_ids) AS id, profile_id FROM {profiles};
        CREATE OR REPLACE TEMP TABLE chk_quarantined AS
        SELECT entity, record_id AS id FROM {quarantine};
    """)
    frames = {}
    for entity, table, profiled in (
            ("candidates", "cand", "SELECT id FROM chk_profiled"),
            ("applications", "app",
             f"SELECT unnest(application_ids) AS id FROM {profiles}")):
        # times a record is accounted for; -1 for output rows that were never extracted
        frames[entity] = con.execute(f"""
            WITH p AS (SELECT id, count(*) AS n FROM ({profiled}) GROUP BY id),
            q AS (SELECT id, count(*) AS n FROM chk_quarantined WHERE entity = '{entity}'
                  GROUP BY id),
            e AS (SELECT DISTINCT id FROM {table})
            SELECT coalesce(e.id, p.id, q.id) AS id,
                   CASE WHEN e.id IS NULL THEN -1
                        ELSE coalesce(p.n, 0) + coalesce(q.n, 0) END AS times_accounted
            FROM e FULL JOIN p USING (id) FULL JOIN q USING (id)
        """).df()
    counts = dict(zip(
        ["extracted_candidates", "profiled_candidates", "quarantined_candidates",
         "extracted_applications", "profiled_applications", "quarantined_applications"],
        con.execute(f"""
            SELECT (SELECT count(*) FROM cand), (SELECT count(*) FROM chk_profiled),
                   (SELECT count(*) FROM chk_quarantined WHERE entity = 'candidates'),
                   (SELECT count(*) FROM app),
                   (SELECT coalesce(sum(len(application_ids)), 0) FROM {profiles}),
                   (SELECT count(*) FROM chk_quarantined WHERE entity = 'applications')
        """).fetchall()[0], strict=True))
    frames["counts"] = {k: int(v) for k, v in counts.items()}
    # per (profile, email): how many profiles hold the email. The same rows fail as under GX's
    # row-level uniqueness of the email column, which costs ~1 s for a million emails; set
    # membership over the counts takes a tenth of that
    frames["emails"] = con.execute(f"""
        SELECT profile_id, count(*) OVER (PARTITION BY email) AS profiles
        FROM (SELECT DISTINCT profile_id, unnest(emails) AS email FROM {profiles})
    """).df()
    frames["mapping"] = con.execute("""
        SELECT c.id, count(p.profile_id) AS profiles FROM cand c
        LEFT JOIN chk_profiled p USING (id)
        WHERE c.id NOT IN (SELECT id FROM chk_quarantined WHERE entity = 'candidates')
        GROUP BY c.id
    """).df()
    frames["merged"] = con.execute(f"""
        SELECT id, count(DISTINCT profile_id) AS profiles
        FROM (SELECT unnest(merged_candidate_ids) AS id, profile_id FROM {profiles})
        GROUP BY id
    """).df()
    # per normalized Keap email: how many contacts hold it (and the first of them, as a sample
    # id). Keap's pre-existing duplicates can be many: row-level uniqueness would make GX list
    # every one of them (~30 s for 240,000), this frame keeps the check in seconds
    frames["keap"] = con.execute(f"""
        SELECT min(contact_id) AS id, count(DISTINCT contact_id) AS contacts
        FROM (SELECT contact_id, unnest(emails) AS email FROM {_glob(b, 'keap_contacts')})
        GROUP BY email
    """).df()
    frames["counts"]["keap_contacts_sharing_an_email"] = int(con.execute(f"""
        SELECT count(DISTINCT contact_id) FROM (
            SELECT contact_id, unnest(emails) AS email FROM {_glob(b, 'keap_contacts')})
        WHERE email IN (SELECT email FROM (SELECT unnest(emails) AS email, contact_id
                                           FROM {_glob(b, 'keap_contacts')})
                        GROUP BY email HAVING count(DISTINCT contact_id) > 1)
    """).fetchall()[0][0])
    return frames


def evaluate_profile_checks(b: IdentityBuild) -> CheckRun:
    """Every identity check for the build `b` (profiles and Keap contacts)."""
    run = CheckRun()
    started = time.perf_counter()
    frames = _frames(b)
    run.timings["checks_frames"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    gx.context()  # the import (10-20 s on first use), timed apart from the validations
    run.timings["gx_import"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    recon = EXTRACTED_EQUALS_PROFILED_PLUS_QUARANTINED
    outcomes = gx.validate(frames["candidates"], [gx.Expect(
        recon, "each backed-up candidate is in one profile or one quarantine row "
        "(times_accounted = 1)", "ExpectColumnValuesToBeInSet",
        {"column": "times_accounted", "value_set": [1]})])
    outcomes += gx.validate(frames["applications"], [gx.Expect(
        recon, "each backed-up application is in one profile or one quarantine row "
        "(times_accounted = 1)", "ExpectColumnValuesToBeInSet",
        {"column": "times_accounted", "value_set": [1]})])
    outcomes += gx.validate(frames["emails"], [gx.Expect(
        EMAILS_ARE_UNIQUE, "each normalized email is in one profile (rows: a profile's emails, "
        "with the number of profiles holding each)", "ExpectColumnValuesToBeInSet",
        {"column": "profiles", "value_set": [1]})], index_column="profile_id")
    outcomes += gx.validate(frames["mapping"], [gx.Expect(
        CANDIDATES_MAP_TO_ONE_PROFILE, "each syncable candidate is in exactly one profile",
        "ExpectColumnValuesToBeInSet", {"column": "profiles", "value_set": [1]})])
    outcomes += gx.validate(frames["merged"], [gx.Expect(
        CANDIDATES_MAP_TO_ONE_PROFILE, "each merged-away candidate id is in exactly one "
        "profile", "ExpectColumnValuesToBeInSet", {"column": "profiles", "value_set": [1]})])
    keap = gx.validate(frames["keap"], [gx.Expect(
        KEAP_EMAILS_ARE_UNIQUE, "each normalized email is on one Keap contact (rows: emails; "
        "sample: the first contact of each shared email)", "ExpectColumnValuesToBeInSet",
        {"column": "contacts", "value_set": [1]})])
    run.timings["gx_validate"] = round(time.perf_counter() - started, 2)

    c = frames["counts"]
    extra = {recon: {
        **c,
        "candidates": dg.MetadataValue.md(_equation(c, "candidates")),
        "applications": dg.MetadataValue.md(_equation(c, "applications")),
    }}
    run.results += gx.check_results(outcomes, PROFILE_CHECKS, PROFILES_KEY,
                                    metadata={"partition": b.day}, extra=extra)
    note = {} if b.keap_backed_up else {KEAP_EMAILS_ARE_UNIQUE: {
        "note": f"keap/contacts has no snapshot for {b.day}: nothing to compare"}}
    run.results += gx.check_results(
        keap, KEAP_CHECKS, KEAP_KEY, extra=note,
        metadata={"partition": b.day, "contacts": int(b.counts["keap_contacts"]),
                  "contacts_sharing_an_email": c["keap_contacts_sharing_an_email"]})
    return run


def _equation(c: dict[str, int], entity: str) -> str:
    e, p, q = (c[f"{k}_{entity}"] for k in ("extracted", "profiled", "quarantined"))
    holds = "holds" if e == p + q else "**does not hold**"
    return f"extracted {e} = profiled {p} + quarantined {q} ({holds})"
