"""The identity step for one day: read the snapshots, normalize, cluster, apply survivorship,
quarantine what cannot be synced, write three partitions.

    identity/candidate_profiles   one row per person (see docs/identity.md)
    identity/quarantine           every candidate / application in no profile, with its reason
    identity/keap_contacts        Keap contacts with normalized emails and E.164 phones

One in-memory DuckDB does all of it (bounded memory, spilling to the data root); the
connection is kept open for the checks, which compare what was written with what was read.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from assets.identity import incremental, keap, profiles
from assets.identity.config import IdentityConfig
from assets.identity.emails import normalize_emails
from assets.identity.incremental import (
    CANDIDATE_PROFILES,
    INPUTS,
    KEAP_CONTACTS,
    QUARANTINE,
)
from assets.identity.inputs import has_partition, load_state, require_partition, versions
from assets.identity.names import normalize_names
from assets.identity.normalize import connect
from assets.identity.phones import normalize_phones
from orchestration.storage.derived import SOURCE, write_partition

OUTPUTS = {
    CANDIDATE_PROFILES: ("SELECT * FROM profiles", "profile_id"),
    QUARANTINE: ("SELECT * FROM quarantine", "entity, record_id"),
    KEAP_CONTACTS: ("SELECT * EXCLUDE (update_time), update_time FROM keap_contacts",
                    "contact_id"),
}


@dataclass
class IdentityBuild:
    """What one run built; `con` keeps the input ids (`cand`, `app`) for the checks."""

    root: Path
    day: str
    con: duckdb.DuckDBPyConnection
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    keap_backed_up: bool = True
    spill: Path | None = None

    def close(self) -> None:
        self.con.close()
        if self.spill is not None:
            shutil.rmtree(self.spill, ignore_errors=True)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - started, 2)


def build_identity(root: Path, day: str, cfg: IdentityConfig, run_id: str) -> IdentityBuild:
    spill = root / SOURCE / f".spill-{uuid.uuid4().hex[:8]}"
    spill.mkdir(parents=True, exist_ok=True)
    b = IdentityBuild(root, day, connect(cfg, spill), spill=spill)
    try:
        _build(b, cfg, run_id)
    except BaseException:
        b.close()
        raise
    return b


def _build(b: IdentityBuild, cfg: IdentityConfig, run_id: str) -> None:
    con, root, day = b.con, b.root, b.day
    config = cfg.model_dump() if hasattr(cfg, "model_dump") else dict(cfg)
    inputs = incremental.input_partitions(root, day)
    base, build = incremental.find_base(root, day, cfg, config, inputs)
    b.counts["build"] = build
    b.keap_backed_up = has_partition(root, "keap", "contacts", day)
    with b.phase("read_snapshots"):
        if base is None:
            b.counts["candidates"] = load_state(con, root, "greenhouse", "candidates", day,
                                                profiles.CANDIDATE_COLUMNS, "cand")
            b.counts["applications"] = load_state(con, root, "greenhouse", "applications",
                                                  day, profiles.APPLICATION_COLUMNS, "app")
            b.counts["keap_contacts"] = load_state(con, root, "keap", "contacts", day,
                                                   keap.KEAP_COLUMNS, "keap", required=False)
            moves = versions(root, "greenhouse", "applications", day)
        else:
            for entity in ("candidates", "applications"):
                require_partition(root, "greenhouse", entity, day)
            b.counts.update(incremental.read_region(con, root, day, base, cfg))
            moves = incremental.region_versions(root, day)
        profiles.moved_applications(con, moves)
    _compute(b, cfg, "cand" if base is None else "cand_state")
    if base is not None:
        with b.phase("splice"):
            incremental.splice(con)
    with b.phase("write"):
        extra = {"inputs": _input_lineage(root, day), "config": config,
                 "incremental": incremental.record(inputs, config, build)}
        for name, (query, order) in OUTPUTS.items():
            b.manifests[name] = write_partition(con, root, name, day, query, order,
                                                run_id=run_id, extra=extra)
        b.counts.update(_summary(con))
    # only the input ids stay for the checks
    for t in ("cand_email_raw", "cand_phone_raw", "keap_email_raw", "keap_phone_raw",
              "email_norm", "phone_norm", "name_norm", "cand_norm", "cand_emails", "cand_phones",
              "keap_emails", "keap_phones", "edges", "comp", "app_moves",
              "keap", "keap_contacts", "profiles", "quarantine", "merged"):
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _compute(b: IdentityBuild, cfg: IdentityConfig, every_candidate: str) -> None:
    """Normalize, cluster and apply survivorship over the records in `cand`, `app`, `keap`
    (every record of the day, or an incremental build's region)."""
    con = b.con
    with b.phase("normalize"):
        profiles.raw_values(con)
        keap.raw_values(con)
        b.counts.update(normalize_emails(
            con, "SELECT raw FROM cand_email_raw UNION ALL SELECT raw FROM keap_email_raw",
            "email_norm", cfg))
        b.counts.update(normalize_phones(
            con, "SELECT raw FROM cand_phone_raw UNION ALL SELECT raw FROM keap_phone_raw",
            "phone_norm", cfg))
        b.counts["distinct_names"] = normalize_names(
            con, f"{profiles.NAME_VALUES} UNION ALL {keap.NAME_VALUES}", "name_norm")
        profiles.normalized_candidates(con, cfg)
        keap.contacts(con)
    with b.phase("cluster"):
        profiles.quarantined_candidates(con)
        b.counts["clustering_rounds"] = profiles.cluster(con)
        profiles.conflicts(con, cfg)
        profiles.membership(con, cfg)
    with b.phase("survivorship"):
        profiles.profiles(con, cfg, every_candidate)
        profiles.quarantine(con)


def _input_lineage(root: Path, day: str) -> dict[str, Any]:
    out = {}
    for key, (source, entity) in INPUTS.items():
        m = root / source / entity / f"snapshot_date={day}" / "_manifest.json"
        if m.exists():
            manifest = json.loads(m.read_text())
            out[key] = {"snapshot_date": day, "rows": manifest.get("rows"),
                        "content_fingerprint": manifest.get("content_fingerprint")}
    return out


def _summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    profiles_n, records, merged, multi = con.execute("""
        SELECT count(*), coalesce(sum(records), 0), coalesce(sum(len(merged_candidate_ids)), 0),
               count(*) FILTER (WHERE records > 1)
        FROM profiles""").fetchall()[0]
    by_reason = con.execute("""
        SELECT entity, reason, count(*) FROM quarantine GROUP BY ALL ORDER BY ALL""").fetchall()
    keap_dups = con.execute("""
        SELECT count(*) FROM (SELECT e FROM (SELECT contact_id, unnest(emails) AS e
                                             FROM keap_contacts)
                              GROUP BY e HAVING count(DISTINCT contact_id) > 1)""").fetchall()[0][0]
    return {
        "profiles": profiles_n, "profiled_candidates": records,
        "profiles_with_several_records": multi, "merged_candidate_ids": merged,
        "quarantined": {f"{e}/{r}": n for e, r, n in by_reason},
        "keap_shared_emails": keap_dups,
    }
