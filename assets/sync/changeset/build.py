"""Building changeset partition D: the steps in order in one DuckDB, then the changeset and the
reject list written as derived partitions."""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from assets.sync.changeset import incremental, state
from assets.sync.changeset.base import COLUMNS, MEMORY_LIMIT, NAME, ORDER, REJECTS, SOURCE, connect
from assets.sync.changeset.fields import field_diffs
from assets.sync.changeset.match import match, policies
from assets.sync.changeset.rejects import KEAP_MAX_LENGTH, REJECT_COLUMNS, limits, update_rejects
from assets.sync.changeset.rows import changes
from assets.sync.changeset.summary import profile_counts, summary_counts
from orchestration.storage.derived import partition_glob, write_partition
from orchestration.storage.parquet import duck_path


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
    con.execute(f"""CREATE OR REPLACE TEMP VIEW desired_all AS
                    SELECT profile_id, email, coalesce(emails, []) AS emails, fields,
                           coalesce(tags, []) AS tags
                    FROM read_parquet(
                        '{duck_path(partition_glob(root, state.DESIRED, day, SOURCE))}')""")
    b.counts["ledger_rows"] = state.ledger_table(con, root)
    state.written_changes(con, root)
    state.reference_tables(con, root, day, desired_m)
    t = _phase(b, "inputs", t)
    base, why = incremental.find_base(con, root, day, desired_m)
    b.counts["build"] = why
    if base is not None:
        incremental.load_base(con, root, base)
        b.counts.update(incremental.dirty_sets(con, root, day, base,
                                               desired_m.get("managed_tags")))
        con.execute("CREATE OR REPLACE TEMP TABLE desired AS SELECT * FROM desired_all "
                    "WHERE profile_id IN (SELECT profile_id FROM compute_set)")
        t = _phase(b, "dirty", t)
    else:
        con.execute("CREATE OR REPLACE TEMP TABLE desired AS SELECT * FROM desired_all")
    # the standard fields the desired state names (of the profiles computed: only theirs are
    # compared)
    scalar_keys = [r[0] for r in con.execute("""
        SELECT DISTINCT k FROM (SELECT unnest(map_keys(fields)) AS k FROM desired)
        WHERE k NOT IN ('email', 'phone') AND NOT starts_with(k, 'custom:') ORDER BY k
    """).fetchall()]
    b.counts.update(state.keap_contacts(
        con, root, day, scalar_keys,
        only="SELECT contact_id FROM c_all" if base is not None else None))
    t = _phase(b, "keap_state", t)
    b.counts.update(match(con))
    t = _phase(b, "match", t)
    policies(con, desired_m)
    field_diffs(con)
    limits(con)
    update_rejects(con)
    t = _phase(b, "diff", t)
    changes(con, desired_m)
    profile_counts(con)
    if base is not None:
        incremental.splice(con)
    t = _phase(b, "rows", t)
    b.counts["archived_applied_rows"] = state.archive_applied(con, root, day, run_id)
    b.rejects_manifest = write_partition(
        con, root, REJECTS, day, f"SELECT {REJECT_COLUMNS} FROM rejects",
        "profile_id, action, keap_field, field", run_id=run_id, source=SOURCE,
        extra={"limits": KEAP_MAX_LENGTH})
    write_partition(con, root, incremental.PROFILES, day,
                    "SELECT profile_id, kept, no_slot, skipped, shared FROM profile_counts",
                    "profile_id", run_id=run_id, source=SOURCE)
    b.manifest = write_partition(
        con, root, NAME, day, f"SELECT {COLUMNS} FROM changeset", ORDER, run_id=run_id,
        source=SOURCE, extra={
            "build": why,
            "incremental": incremental.record(con, root, day, desired_m,
                                              b.counts.get("keap_extracted_at")),
            "inputs": {"keap_desired": {"snapshot_date": day,
                                        "content_fingerprint":
                                            desired_m.get("content_fingerprint")},
                       "keap_extracted_at": b.counts.get("keap_extracted_at")},
            "mapping_fingerprint": desired_m.get("mapping_fingerprint"),
            "counts": summary_counts(con),
        })
    _phase(b, "write", t)
