"""The incremental identity build: recompute only the people whose profile or quarantine rows
can have changed since the last build (the base), keep the base's rows for everyone else.

A profile is a connected component of candidates linked by a shared normalized email (one
record, or several), its rows depend only on its members' records and their applications; a
quarantine row on its record alone (no/invalid email, unparseable), on its candidate (an
application's) or on its component (conflicting identities); a Keap contact's row on the
contact alone. So:

- the base is the latest identity build up to the day whose three outputs come from one run of
  this code with the same configuration, and whose inputs are still exactly the partitions it
  read (every candidates, applications and Keap contacts partition up to the base day, by
  content fingerprint: a backfill, a re-landed open day or an erasure rewrites one, and then the
  next build is **full**; partitions retention pruned are fine when a full snapshot before the
  base day fences them off). `TALENTVAULT_IDENTITY=full` forces one;
  so does an `emails` survivorship rule other than `union` (the profiles' emails are the index
  of who can join whom);
- **changed** records: current versions first seen in a partition after the base day or
  updated after the base day's end, and records that came or went (the state's ids against the
  base's profiled + quarantined ids);
- the **region**: the changed candidates, the candidates of changed applications, the base
  components holding any of them (profiles by candidate, merged-away id or application;
  conflict groups from the quarantine), then every base component holding an email of the
  region, to a fixed point. A record outside the region is unchanged, so are its emails, so a
  component with no member in the region is a base component as it was;
- the build runs the full build's SQL over the region's candidates and their applications (and
  the changed Keap contacts), and splices: the region's new rows, the base's for the rest.

`tests/e2e/test_identity_incremental.py` checks incremental = full over simulated days;
bench/bench_identity.py --day-after measures both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from assets.identity import profiles
from assets.identity.config import IdentityConfig, survivorship_rules
from assets.identity.emails import normalize_emails
from assets.identity.inputs import current_keys, end_of_day, load_rows, versions
from orchestration.storage.derived import output_dir, partition_dir, read_manifest
from orchestration.storage.parquet import duck_path
from orchestration.storage.snapshots import SnapshotStorage

# bump when the identity build's logic changes: a base built by other logic is not reused
CODE_VERSION = 1
MODE_VAR = "TALENTVAULT_IDENTITY"       # auto (default) | full
CANDIDATE_PROFILES = "candidate_profiles"
QUARANTINE = "quarantine"
KEAP_CONTACTS = "keap_contacts"
OUTPUT_NAMES = (CANDIDATE_PROFILES, QUARANTINE, KEAP_CONTACTS)
INPUTS = {"greenhouse/candidates": ("greenhouse", "candidates"),
          "greenhouse/applications": ("greenhouse", "applications"),
          "keap/contacts": ("keap", "contacts")}
BASES_TRIED = 2                         # the day itself (a re-run) and the build before it


@dataclass
class Base:
    day: str


def input_partitions(root: Path, day: str) -> dict[str, dict[str, str]]:
    """Per input entity, the content fingerprint of every partition up to `day` (a full
    snapshot's date is marked with a trailing `*` on its fingerprint)."""
    storage = SnapshotStorage(root=str(root))
    return {key: {m["snapshot_date"]: str(m.get("content_fingerprint"))
                  + ("*" if m.get("mode") == "full" else "")
                  for m in storage.manifests(source, entity) if m["snapshot_date"] <= day}
            for key, (source, entity) in INPUTS.items()}


def same_inputs(now: dict[str, str], then: dict[str, str], base_day: str) -> bool:
    """Whether the partitions up to the base day still give the state the base read: the same
    fingerprints, except partitions pruned since that are older than a full snapshot taken
    before the base day (retention prunes daily; the full fences the state: what came before it
    cannot change the state after its day)."""
    if any(then.get(d) != f for d, f in now.items()):
        return False                     # a partition replaced or added
    removed = set(then) - set(now)
    if not removed:
        return True
    fulls = [d for d, f in now.items() if f.endswith("*") and d < base_day]
    return bool(fulls) and max(removed) < max(fulls)


def record(inputs: dict[str, dict[str, str]], config: dict[str, Any],
           build: str) -> dict[str, Any]:
    """What a build records in its manifests so the next one can use it as its base."""
    return {"code": CODE_VERSION, "config": config, "inputs": inputs, "build": build}


def find_base(root: Path, day: str, cfg: IdentityConfig, config: dict[str, Any],
              inputs: dict[str, dict[str, str]]) -> tuple[Base | None, str]:
    """The base to build on, or None and why it is a full build."""
    mode = os.environ.get(MODE_VAR, "auto").strip().lower() or "auto"
    if mode not in ("auto", "full"):
        raise ValueError(f"{MODE_VAR}={mode!r}: set it to auto or full (or leave it unset)")
    if mode == "full":
        return None, f"full: {MODE_VAR}=full"
    if survivorship_rules(cfg.survivorship)["emails"] != "union":
        return None, "full: the emails survivorship rule is not union"
    folder = output_dir(root, CANDIDATE_PROFILES)
    days = sorted((d.name.split("=", 1)[1] for d in folder.glob("snapshot_date=*")
                   if d.name.split("=", 1)[1] <= day), reverse=True) if folder.is_dir() else []
    reason = "full: no earlier identity build"
    for b in days[:BASES_TRIED]:
        ms = [read_manifest(root, name, b) for name in OUTPUT_NAMES]
        if any(m is None for m in ms):
            reason = f"full: the identity build of {b} is incomplete"
            continue
        inc = [m.get("incremental") for m in ms]
        if len({m.get("run_id") for m in ms}) != 1 or any(i != inc[0] for i in inc):
            reason = f"full: the identity outputs of {b} are not from one build"
            continue
        if not inc[0] or inc[0].get("code") != CODE_VERSION:
            reason = f"full: the identity build of {b} was made by other code"
            continue
        if inc[0].get("config") != config:
            reason = f"full: the identity configuration changed since {b}"
            continue
        then = inc[0].get("inputs") or {}
        if set(then) != set(inputs) or not all(
                same_inputs({d: f for d, f in v.items() if d <= b}, then[k], b)
                for k, v in inputs.items()):
            reason = f"full: a backup partition up to {b} was replaced, added or removed since"
            continue
        return Base(b), f"incremental on {b}"
    return None, reason


def _files(root: Path, name: str, day: str) -> str:
    files = ", ".join(f"'{duck_path(f)}'"
                      for f in sorted(partition_dir(root, name, day).glob("*.parquet")))
    return f"read_parquet([{files}], hive_partitioning = false)"


def _changed(con: duckdb.DuckDBPyConnection, state: str, base_ids: str, target: str,
             base_day: str) -> int:
    """`target(id)`: records whose current version the base did not read, and records that
    came or went since the base."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _base_ids AS SELECT DISTINCT id FROM ({base_ids});
        CREATE OR REPLACE TEMP TABLE {target} AS
        SELECT id FROM {state}
        WHERE snapshot_date > DATE '{base_day}' OR _source_updated_at > {end_of_day(base_day)}
        UNION SELECT id FROM {state} ANTI JOIN _base_ids USING (id)
        UNION SELECT id FROM _base_ids ANTI JOIN {state} USING (id);
        DROP TABLE _base_ids;
    """)
    return con.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]


def read_region(con: duckdb.DuckDBPyConnection, root: Path, day: str, base: Base,
                cfg: IdentityConfig) -> dict[str, int]:
    """Tables `cand_state`, `app_state`, `keap_state` (the day's current versions, keys only),
    and `cand`, `app`, `keap` with the region's records (what the full build's SQL reads);
    `region_groups(gid)`, `region_cands(id)`, `region_apps(id)`, `dirty_k(id)` for `splice`."""
    b = base.day
    n = {"candidates": current_keys(con, root, "greenhouse", "candidates", day, "cand_state"),
         "applications": current_keys(con, root, "greenhouse", "applications", day,
                                      "app_state", extra=["candidate_id"]),
         "keap_contacts": current_keys(con, root, "keap", "contacts", day, "keap_state")}
    for view, name in (("bp", CANDIDATE_PROFILES), ("bq", QUARANTINE), ("bk", KEAP_CONTACTS)):
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM "
                    f"{_files(root, name, b)}")
    con.execute("""
        CREATE OR REPLACE TEMP TABLE bg AS
        SELECT profile_id AS gid, unnest(candidate_ids) AS cid FROM bp
        UNION ALL
        SELECT list_min(list_append(related_ids, record_id)), record_id FROM bq
        WHERE entity = 'candidates' AND reason = 'conflicting_identity';
        CREATE OR REPLACE TEMP TABLE bg_email AS
        SELECT profile_id AS gid, unnest(emails) AS email FROM bp;
    """)
    n["changed_candidates"] = _changed(
        con, "cand_state", "SELECT cid AS id FROM bg UNION ALL SELECT record_id FROM bq "
        "WHERE entity = 'candidates'", "dirty_c", b)
    n["changed_applications"] = _changed(
        con, "app_state", "SELECT unnest(application_ids) AS id FROM bp UNION ALL "
        "SELECT record_id FROM bq WHERE entity = 'applications'", "dirty_a", b)
    n["changed_keap_contacts"] = _changed(
        con, "keap_state", "SELECT contact_id AS id FROM bk", "dirty_k", b)
    # seeds: changed candidates, the candidates of changed applications; their base groups
    # (by member, merged-away id or application) and the conflict groups' members (whose
    # emails no profile lists)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE seeds AS
        SELECT id FROM dirty_c
        UNION SELECT candidate_id FROM app_state
              WHERE id IN (SELECT id FROM dirty_a) AND candidate_id IS NOT NULL;
        CREATE OR REPLACE TEMP TABLE region_groups AS
        SELECT gid FROM bg WHERE cid IN (SELECT id FROM seeds)
        UNION SELECT profile_id FROM (SELECT profile_id, unnest(merged_candidate_ids) AS m
                                      FROM bp) WHERE m IN (SELECT id FROM seeds)
        UNION SELECT profile_id FROM (SELECT profile_id, unnest(application_ids) AS a FROM bp)
              WHERE a IN (SELECT id FROM dirty_a);
        CREATE OR REPLACE TEMP TABLE conflicted AS
        SELECT cid AS id FROM bg WHERE gid NOT IN (SELECT profile_id FROM bp);
        CREATE OR REPLACE TEMP TABLE seed_keys AS
        SELECT * FROM cand_state WHERE id IN (SELECT id FROM seeds UNION
                                             SELECT id FROM conflicted);
    """)
    # the seeds' emails only (a record's JSON is most of what a scan decodes): the region's
    # whole records are read once, when it is known
    load_rows(con, root, "greenhouse", "candidates", day, ["emails"], "seed_cand", "seed_keys")
    _seed_emails(con, cfg)
    n["closure_rounds"] = _closure(con)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE region_cands AS
        SELECT id FROM seeds UNION SELECT cid FROM bg WHERE gid IN (SELECT gid FROM region_groups);
        CREATE OR REPLACE TEMP TABLE cand_keys AS
        SELECT * FROM cand_state WHERE id IN (SELECT id FROM region_cands);
        CREATE OR REPLACE TEMP TABLE region_apps AS
        SELECT id FROM app_state WHERE candidate_id IN (SELECT id FROM region_cands)
        UNION SELECT id FROM dirty_a;
        CREATE OR REPLACE TEMP TABLE app_keys AS
        SELECT * FROM app_state WHERE id IN (SELECT id FROM region_apps);
        CREATE OR REPLACE TEMP TABLE k_keys AS
        SELECT * FROM keap_state WHERE id IN (SELECT id FROM dirty_k);
    """)
    load_rows(con, root, "greenhouse", "candidates", day, profiles.CANDIDATE_COLUMNS, "cand",
              "cand_keys")
    load_rows(con, root, "greenhouse", "applications", day, profiles.APPLICATION_COLUMNS,
              "app", "app_keys")
    from assets.identity import keap

    load_rows(con, root, "keap", "contacts", day, keap.KEAP_COLUMNS, "keap", "k_keys")
    for t in ("seed_cand", "seed_keys", "cand_keys", "app_keys", "k_keys",
              "seed_emails", "conflicted", "seeds"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    n.update({f"region_{k}": con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
              for k, t in (("groups", "region_groups"), ("candidates", "cand"),
                           ("applications", "app"), ("keap_contacts", "keap"))})
    return n


def _seed_emails(con: duckdb.DuckDBPyConnection, cfg: IdentityConfig) -> None:
    """`seed_emails(id, email)`: the valid normalized emails of the seeds and of the base's
    conflicting records; the conflict groups' emails join `bg_email`."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE seed_raw AS
        SELECT id, raw, pos FROM (SELECT id, unnest(emails) AS raw,
                                         generate_subscripts(emails, 1) AS pos FROM seed_cand)
        WHERE raw IS NOT NULL
    """)
    normalize_emails(con, "SELECT raw FROM seed_raw", "seed_norm", cfg)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE seed_emails AS
        SELECT DISTINCT r.id, n.email FROM seed_raw r JOIN seed_norm n USING (raw)
        WHERE n.email IS NOT NULL;
        INSERT INTO bg_email
        SELECT bg.gid, s.email FROM seed_emails s JOIN bg ON bg.cid = s.id
        WHERE bg.gid NOT IN (SELECT profile_id FROM bp);
        DROP TABLE seed_raw; DROP TABLE seed_norm;
    """)


def _closure(con: duckdb.DuckDBPyConnection) -> int:
    """Grow `region_groups` to every base group holding an email of the region (the seeds'
    emails now, the region groups' emails at the base) until nothing is added."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE region_emails AS
        SELECT email FROM seed_emails WHERE id IN (SELECT id FROM seeds)
    """)
    for rounds in range(1, profiles.MAX_ROUNDS + 1):
        con.execute("""
            INSERT INTO region_emails
            SELECT DISTINCT email FROM bg_email WHERE gid IN (SELECT gid FROM region_groups)
            EXCEPT SELECT email FROM region_emails
        """)
        added = con.execute("""
            INSERT INTO region_groups
            SELECT DISTINCT gid FROM bg_email WHERE email IN (SELECT email FROM region_emails)
            EXCEPT SELECT gid FROM region_groups
        """).fetchall()[0][0]
        if added == 0:
            con.execute("DROP TABLE region_emails")
            return rounds
    raise RuntimeError(f"the incremental region did not close in {profiles.MAX_ROUNDS} rounds")


def splice(con: duckdb.DuckDBPyConnection) -> None:
    """`profiles`, `quarantine`, `keap_contacts`: the region's new rows and the base's rows for
    everything else (materialized: a re-run's base is the partition about to be replaced)."""
    con.execute("""
        CREATE OR REPLACE TEMP TABLE profiles AS
        SELECT * FROM profiles
        UNION ALL BY NAME
        SELECT * FROM bp WHERE profile_id NOT IN (SELECT gid FROM region_groups);
        CREATE OR REPLACE TEMP TABLE quarantine AS
        SELECT * FROM quarantine
        UNION ALL BY NAME
        SELECT * FROM bq
        WHERE NOT (entity = 'candidates' AND record_id IN (SELECT id FROM region_cands))
          AND NOT (entity = 'applications' AND record_id IN (SELECT id FROM region_apps));
        CREATE OR REPLACE TEMP TABLE keap_contacts AS
        SELECT * FROM keap_contacts
        UNION ALL BY NAME
        SELECT * FROM bk WHERE contact_id NOT IN (SELECT id FROM dirty_k);
    """)
    # the checks compare the outputs with every record of the day, not the region's
    con.execute("""
        CREATE OR REPLACE TEMP TABLE cand AS SELECT id FROM cand_state;
        CREATE OR REPLACE TEMP TABLE app AS SELECT id FROM app_state;
    """)
    for t in ("bg", "bg_email", "region_groups", "region_cands", "region_apps", "dirty_c",
              "dirty_a", "dirty_k", "cand_state", "app_state", "keap_state"):
        con.execute(f"DROP TABLE IF EXISTS {t}")
    for v in ("bp", "bq", "bk"):
        con.execute(f"DROP VIEW IF EXISTS {v}")


def region_versions(root: Path, day: str) -> str:
    """Every version of the region's applications (where a Greenhouse merge shows)."""
    return (f"SELECT * FROM ({versions(root, 'greenhouse', 'applications', day)}) "
            f"WHERE id IN (SELECT id FROM app)")

