"""The incremental changeset: recompute only the profiles whose result can have changed since
the last build (the base), keep the base's rows for every other profile.

A profile's rows depend on its desired row, on the Keap contacts holding any of its emails (the
hits: their fields, tags, emails), on the other profiles hitting the contact it picks (who wins a
shared contact), on the ledger's writes to its contacts and its dead letters, and on global
inputs (the mapping's policies and managed tags, Keap's tags and custom fields, this code). So:

- global inputs differ from the base's (recorded in its manifest: the mapping's policies,
  Keap's custom fields, a Keap tag renamed or removed, a tag Keap has becoming managed or
  unmanaged), the base's own inputs were replaced
  since (its desired partition, a Keap contacts partition it read), or there is no base: a
  **full** build (a tag Keap did not have at the base, one the push created, or a managed tag
  Keap has no tag for, a new job's, only makes the profiles that want it dirty);
- else the changed sets: profiles whose desired row differs from the base day's (or that came
  or went); contacts whose identity row differs in what the build reads of it (normalized
  emails and phones), that have a version
  in a Keap partition after the base day, or that the ledger wrote after the base's backup
  started (with the profiles those writes were for);
- **dirty** profiles: the changed ones and every profile holding an email of a changed profile
  or contact (now or at the base), then every profile holding an email of a contact those hit
  (contention for a shared contact) or sharing one of their emails. Two hops are enough: a
  profile's pick depends only on its own hits, and who wins a contact only on the profiles
  hitting it;
- the build runs over the dirty profiles plus their **context** (the profiles hitting the same
  contacts, so shared-contact winners come out as in a full build) and the contacts holding
  their emails; only the dirty profiles' rows are kept, the base's rows for all others.

`tests/e2e/test_changeset_incremental.py` checks incremental = full over simulated days with
pushes, edits in Keap and ATS changes; bench/bench_changeset.py measures both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from assets.sync.changeset.base import NAME, REJECTS, SOURCE
from orchestration.storage.derived import partition_dir, read_manifest
from orchestration.storage.parquet import duck_path
from orchestration.storage.snapshots import SnapshotStorage

# bump when the changeset's logic changes: a base built by other logic is not reused
CODE_VERSION = 1
PROFILES = "keap_changeset_profiles"      # per profile: the counts no row carries
MODE_VAR = "TALENTVAULT_CHANGESET"        # auto (default) | full
DESIRED = "keap_desired"
POLICY_KEYS = ("conflict", "custom_fields", "mapping_fingerprint")


@dataclass
class Base:
    day: str
    manifest: dict[str, Any]

    @property
    def tags(self) -> dict[str, list[str]]:
        return self.manifest["incremental"].get("tags") or {}


def _glob(folder: Path) -> str:
    return duck_path(folder / "*.parquet")


def record(con: duckdb.DuckDBPyConnection, root: Path, day: str, desired_m: dict[str, Any],
           extracted_at: str | None) -> dict[str, Any]:
    """What a build records so the next one can use it as its base."""
    return {"code": CODE_VERSION, "keap_extracted_at": extracted_at,
            "desired": desired_m.get("content_fingerprint"),
            "policies": {k: desired_m.get(k) for k in POLICY_KEYS},
            "managed_tags": sorted(_keys(desired_m.get("managed_tags"))),
            "keap_partitions": keap_partitions(root, day), "fields": fields_hash(con),
            "tags": tag_map(con)}


def keap_partitions(root: Path, day: str) -> dict[str, str]:
    """Fingerprints of the Keap contacts partitions the state as of `day` reads: from the
    latest full up to `day` (a full starts the state afresh)."""
    found: dict[str, str] = {}
    for m in reversed(SnapshotStorage(root=str(root)).manifests("keap", "contacts")):
        if m["snapshot_date"] > day:
            continue
        found[m["snapshot_date"]] = str(m.get("content_fingerprint"))
        if m.get("mode") == "full":
            break
    return found


def fields_hash(con: duckdb.DuckDBPyConnection) -> str:
    """Keap's custom fields as the build resolved them (labels, ids, types)."""
    return str(con.execute("""SELECT coalesce(sum(hash(label_key, id, label, field_type))
                                              ::HUGEINT, 0) FROM cf_dict""").fetchone()[0])


def tag_map(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Keap's tags as the build resolved them: tag key -> [id, name]."""
    return {k: [i, n] for k, i, n in con.execute(
        "SELECT tag_key, tag_id, tag_name FROM tag_dict ORDER BY tag_key").fetchall()}


def find_base(con: duckdb.DuckDBPyConnection, root: Path, day: str,
              desired_m: dict[str, Any]) -> tuple[Base | None, str]:
    """The base to build on, or None and why a full build it is."""
    mode = os.environ.get(MODE_VAR, "auto").strip().lower() or "auto"
    if mode not in ("auto", "full"):
        raise ValueError(f"{MODE_VAR}={mode!r}: set it to auto or full (or leave it unset)")
    if mode == "full":
        return None, f"{MODE_VAR}=full"
    days = sorted(d.name.split("=", 1)[1]
                  for d in partition_dir(root, NAME, day, SOURCE).parent.glob("snapshot_date=*")
                  if (d / "_manifest.json").exists())
    days = [d for d in days if d <= day]
    if not days:
        return None, "no earlier changeset"
    b = days[-1]
    m = read_manifest(root, NAME, b, SOURCE) or {}
    inc = m.get("incremental") or {}
    if inc.get("code") != CODE_VERSION:
        return None, f"the changeset of {b} was built by other code"
    if read_manifest(root, PROFILES, b, SOURCE) is None:
        return None, f"the changeset of {b} has no per-profile counts"
    if not inc.get("keap_extracted_at"):
        return None, f"the changeset of {b} had no Keap backup"
    old_desired = read_manifest(root, DESIRED, b, SOURCE) or {}
    if old_desired.get("content_fingerprint") != inc.get("desired"):
        return None, f"sync/keap_desired of {b} was rebuilt since"
    if {k: desired_m.get(k) for k in POLICY_KEYS} != inc.get("policies"):
        return None, "the mapping or its policies or custom fields changed"
    if keap_partitions(root, b) != inc.get("keap_partitions"):
        return None, f"a Keap contacts backup up to {b} was replaced or added since"
    if fields_hash(con) != inc.get("fields"):
        return None, "Keap's custom fields changed"
    old_tags, tags = inc.get("tags") or {}, tag_map(con)
    if any(tags.get(k) != v for k, v in old_tags.items()):
        return None, "a Keap tag was renamed or removed"
    # a tag that became managed (or stopped being) changes the rows of the contacts holding
    # it: only a tag Keap has no tag for yet (a new job's) is known to be held by none
    moved = set(inc.get("managed_tags") or []) ^ _keys(desired_m.get("managed_tags"))
    if moved & (set(tags) | set(old_tags)):
        return None, "a tag Keap has became managed or stopped being managed"
    if not (partition_dir(root, "keap_contacts", b) / "_manifest.json").exists():
        return None, f"identity/keap_contacts has no partition {b}"
    return Base(b, m), f"incremental on {b}"


def _keys(tags: list[str] | None) -> set[str]:
    return {t.strip().lower() for t in tags or []}


def dirty_sets(con: duckdb.DuckDBPyConnection, root: Path, day: str, base: Base,
               desired_managed: list[str] | None) -> dict[str, int]:
    """Tables `dirty(profile_id)`, `compute_set(profile_id)`, `c_all(contact_id)` (see the
    module docstring). Needs `desired_all` (the view of `day`'s desired state) and `led`."""
    b = base.day
    since = base.manifest["incremental"]["keap_extracted_at"]
    # tags Keap has now and did not at the base (the push creates them: their rows get ids),
    # and managed tags no Keap tag has (a new job's): the profiles wanting them are dirty
    con.execute("CREATE OR REPLACE TEMP TABLE new_tags (tag_key VARCHAR)")
    added = sorted((set(tag_map(con)) - set(base.tags))
                   | (set(base.manifest["incremental"].get("managed_tags") or [])
                      ^ _keys(desired_managed)))
    if added:
        con.executemany("INSERT INTO new_tags VALUES (?)", [(k,) for k in added])
    now_glob, base_glob = (_glob(partition_dir(root, DESIRED, d, SOURCE)) for d in (day, b))
    # the desired partitions carry each row's hash (sync/desired); older ones are hashed here
    stored = all("row_hash" in (r[0] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{g}')").fetchall()) for g in (now_glob, base_glob))
    row_hash = "row_hash" if stored else \
        "hash(email, emails, fields, coalesce(tags, []::VARCHAR[]))"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE d_now AS
        SELECT profile_id, list_distinct(list_prepend(email, coalesce(emails, []))) AS es,
               {row_hash} AS h
        FROM read_parquet('{now_glob}');
        CREATE OR REPLACE TEMP TABLE pe_now AS
        SELECT profile_id, unnest(es) AS email FROM d_now;
        CREATE OR REPLACE TEMP TABLE p_changed AS
        WITH n AS (SELECT profile_id, h FROM d_now),
             o AS (SELECT profile_id, {row_hash} AS h FROM read_parquet('{base_glob}'))
        SELECT profile_id FROM n FULL JOIN o USING (profile_id) WHERE n.h IS DISTINCT FROM o.h;
        CREATE OR REPLACE TEMP TABLE pe_gone AS
        SELECT profile_id, unnest(list_distinct(list_prepend(email, coalesce(emails, []))))
                   AS email
        FROM read_parquet('{base_glob}')
        WHERE profile_id IN (SELECT profile_id FROM p_changed);
        CREATE OR REPLACE TEMP TABLE i_now AS
        SELECT contact_id, emails, hash(emails, phones) AS h
        FROM read_parquet('{_glob(partition_dir(root, "keap_contacts", day))}');
        CREATE OR REPLACE TEMP TABLE ce_now AS
        SELECT contact_id, unnest(emails) AS email FROM i_now;
    """)
    # versions the Keap backups after the base day hold and the ones up to it do not (a full
    # backup after the base repeats every unchanged version: those are not changes)
    parts = [p for p in sorted((root / "keap" / "contacts").glob("snapshot_date=*"))
             if p.name.split("=", 1)[1] <= day and any(p.glob("*.parquet"))]
    later_parts = [p for p in parts if p.name.split("=", 1)[1] > b]
    earlier_parts = [p for p in parts if p.name.split("=", 1)[1] <= b]

    def keys(folders: list[Path]) -> str:
        files = ", ".join(repr(_glob(f)) for f in folders)
        return f"SELECT id, _source_updated_at, _op FROM read_parquet([{files}])"

    if not later_parts:
        later = "SELECT NULL::VARCHAR AS contact_id LIMIT 0"
    elif not earlier_parts:
        later = f"SELECT CAST(id AS VARCHAR) AS contact_id FROM ({keys(later_parts)})"
    else:
        later = (f"SELECT CAST(id AS VARCHAR) AS contact_id FROM ({keys(later_parts)}) "
                 f"ANTI JOIN ({keys(earlier_parts)}) USING (id, _source_updated_at, _op)")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE c_changed AS
        WITH n AS (SELECT contact_id, h FROM i_now),
             o AS (SELECT contact_id, hash(emails, phones) AS h FROM read_parquet(
                       '{_glob(partition_dir(root, "keap_contacts", b))}'))
        SELECT contact_id FROM n FULL JOIN o USING (contact_id) WHERE n.h IS DISTINCT FROM o.h
        UNION SELECT contact_id FROM ({later})
        UNION SELECT contact_id FROM led
              WHERE written_at > TIMESTAMPTZ '{since}' AND contact_id IS NOT NULL;
        CREATE OR REPLACE TEMP TABLE ce_gone AS
        SELECT contact_id, unnest(emails) AS email FROM read_parquet(
            '{_glob(partition_dir(root, "keap_contacts", b))}')
        WHERE contact_id IN (SELECT contact_id FROM c_changed);
        CREATE OR REPLACE TEMP TABLE p1 AS
        WITH seed AS (SELECT profile_id FROM p_changed
                      UNION SELECT profile_id FROM led
                            WHERE written_at > TIMESTAMPTZ '{since}' AND profile_id IS NOT NULL
                      UNION SELECT profile_id FROM desired_all
                            WHERE list_has_any(list_transform(tags, lambda t: lower(trim(t))),
                                               (SELECT coalesce(list(tag_key), [])
                                                FROM new_tags))),
             e0 AS (SELECT email FROM pe_now WHERE profile_id IN (SELECT profile_id FROM seed)
                    UNION SELECT email FROM pe_gone
                    UNION SELECT email FROM ce_now
                          WHERE contact_id IN (SELECT contact_id FROM c_changed)
                    UNION SELECT email FROM ce_gone)
        SELECT profile_id FROM seed
        UNION SELECT profile_id FROM pe_now WHERE email IN (SELECT email FROM e0);
    """)
    # hop 2: the contacts p1 hits and the profiles hitting them or sharing p1's emails
    con.execute("""
        CREATE OR REPLACE TEMP TABLE dirty AS
        WITH e1 AS (SELECT email FROM pe_now WHERE profile_id IN (SELECT profile_id FROM p1)),
             c1 AS (SELECT contact_id FROM ce_now WHERE email IN (SELECT email FROM e1)),
             e2 AS (SELECT email FROM ce_now WHERE contact_id IN (SELECT contact_id FROM c1)
                    UNION SELECT email FROM e1)
        SELECT profile_id FROM p1
        UNION SELECT profile_id FROM pe_now WHERE email IN (SELECT email FROM e2);
        CREATE OR REPLACE TEMP TABLE compute_set AS
        WITH e1 AS (SELECT email FROM pe_now WHERE profile_id IN (SELECT profile_id FROM dirty)),
             c1 AS (SELECT contact_id FROM ce_now WHERE email IN (SELECT email FROM e1)),
             e2 AS (SELECT email FROM ce_now WHERE contact_id IN (SELECT contact_id FROM c1))
        SELECT profile_id FROM dirty
        UNION SELECT profile_id FROM pe_now WHERE email IN (SELECT email FROM e2);
        CREATE OR REPLACE TEMP TABLE c_all AS
        SELECT DISTINCT contact_id FROM ce_now WHERE email IN (
            SELECT email FROM pe_now WHERE profile_id IN (SELECT profile_id FROM compute_set));
    """)
    n = con.execute("""SELECT (SELECT count(*) FROM p_changed), (SELECT count(*) FROM c_changed),
                              (SELECT count(*) FROM dirty), (SELECT count(*) FROM compute_set),
                              (SELECT count(*) FROM c_all)""").fetchone()
    for t in ("d_now", "i_now", "pe_now", "pe_gone", "ce_now", "ce_gone", "p1", "new_tags"):
        con.execute(f"DROP TABLE {t}")
    return {"profiles_changed": n[0], "contacts_changed": n[1], "profiles_dirty": n[2],
            "profiles_computed": n[3], "contacts_read": n[4]}


def load_base(con: duckdb.DuckDBPyConnection, root: Path, base: Base) -> None:
    """`base_changes`, `base_rejects`, `base_profiles`: views of the base's rows (`splice`
    materializes what it keeps before anything is written: a re-run's base is the partition
    it replaces)."""
    for table, name in (("base_changes", NAME), ("base_rejects", REJECTS),
                        ("base_profiles", PROFILES)):
        folder = partition_dir(root, name, base.day, SOURCE)
        files = ", ".join(f"'{duck_path(f)}'" for f in sorted(folder.glob("*.parquet")))
        con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS "
                    f"SELECT * FROM read_parquet([{files}])")


def splice(con: duckdb.DuckDBPyConnection) -> None:
    """The dirty profiles' new rows, the base's for every other profile: `changeset`,
    `rejects` and `profile_counts` replaced."""
    for table, base in (("changeset", "base_changes"), ("rejects", "base_rejects"),
                        ("profile_counts", "base_profiles")):
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT * FROM {table} WHERE profile_id IN (SELECT profile_id FROM dirty)
            UNION ALL BY NAME
            SELECT * FROM {base} WHERE profile_id NOT IN (SELECT profile_id FROM dirty)
        """)
