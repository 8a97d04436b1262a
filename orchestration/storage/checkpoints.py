"""History checkpoints: the state views stay fast however long the history grows.

The state of an entity as of T (storage/state_sql.py) ranks every stored version of every id, so
its cost grows with the history: a year of daily 1% incrementals at 1M records is 4.8M versions
(docs/benchmarks.md). A checkpoint of entity E at day D is a derived partition,

    <root>/history/<source>__<entity>/snapshot_date=D/part-00000.parquet + _manifest.json

holding, for every id in E's partitions up to D, its winning version among them (the same
ranking as the state: latest update time, a delete before an upsert of the same time, the
earliest partition of a duplicated version), deletes included, plus `_in_fence`: whether the id
appears in a partition at or after the latest full up to D. Its manifest records `valid_from`
(the later of the newest update time up to D and the end of day D) and a digest of each of E's
partition manifests up to D.

Why the views can use it, exactly: for T >= valid_from, every version in partitions up to D has
an update time <= T, so the winner among them at T is the checkpoint's row; the winner among all
versions is then the winner among the checkpoint's row and the versions after D, which is what
the view ranks; and the full-snapshot fence is the checkpoint's flag or-ed with "appears after
D" (a checkpoint is used only while no full partition came after D). For T < valid_from an
older checkpoint, or the plain ranking, answers. A checkpoint is used only while every
partition it was built from is unchanged (same manifest digest: a re-run, an erasure rewrite
or a retention prune of one of them retires it), and only for entities whose versions all carry
an update time.

`refresh` (run by the catalog asset after each backup) builds one per entity when `EVERY` or
more partitions landed since the newest valid checkpoint or full partition, and removes
checkpoints that no longer match their partitions. Checkpoints land like every other
partition (sealed, encrypted, replicated, rewritten by `forget`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestration.storage import seals
from orchestration.storage.derived import write_partition
from orchestration.storage.landing import record_removed
from orchestration.storage.parquet import connect as connect_duckdb
from orchestration.storage.parquet import duck_path
from orchestration.storage.state_sql import _scan, full_days, history_sql, state_sql

SOURCE = "history"
EVERY = 28          # partitions landed since the last checkpoint before the next one
ORDER = "_source_updated_at DESC NULLS LAST, (_op = 'delete') DESC, snapshot_date"


def checkpoint_root(entity_dir: Path) -> Path:
    entity_dir = Path(entity_dir)
    return entity_dir.parents[1] / SOURCE / f"{entity_dir.parent.name}__{entity_dir.name}"


def partition_digests(entity_dir: Path, through: str | None = None) -> dict[str, str]:
    """Day -> digest of the partition's manifest content (canonical JSON, so a copy of it
    written with other formatting, as the bucket door's index does, has the same digest), for
    the entity's partitions up to `through`."""
    out = {}
    for m in sorted(Path(entity_dir).glob("snapshot_date=*/_manifest.json")):
        day = m.parent.name.split("=", 1)[1]
        if through is None or day <= through:
            try:
                content = seals.canonical(json.loads(m.read_text()))
            except (OSError, ValueError):
                content = m.read_bytes() if m.exists() else b""
            out[day] = hashlib.sha256(content).hexdigest()
    return out


def valid_checkpoints(entity_dir: Path) -> list[dict[str, Any]]:
    """The entity's checkpoints that still match their partitions and have no full partition
    after them, oldest first: {day, valid_from, file}."""
    base = checkpoint_root(entity_dir)
    if not base.is_dir():
        return []
    digests = partition_digests(entity_dir)
    fulls = full_days(entity_dir)
    out = []
    for m in sorted(base.glob("snapshot_date=*/_manifest.json")):
        try:
            manifest = json.loads(m.read_text())
        except (OSError, ValueError):
            continue
        day, built = manifest.get("snapshot_date"), manifest.get("partitions") or {}
        if not day or any(f > day for f in fulls) or \
                {d: h for d, h in digests.items() if d <= day} != built:
            continue
        out.append({"day": day, "valid_from": manifest["valid_from"],
                    "file": m.parent / manifest["files"][0]["file"]})
    return out


def _later_history(entity_dir: Path, day: str, as_of: str | None) -> str | None:
    """Every version once from the partitions after `day`, named file by file (the views are
    rebuilt when a partition lands, like the fence's list of fulls): binding a scan reads each
    file's schema, and a glob over the whole year would read them all for every branch."""
    files = sorted(str(f) for f in Path(entity_dir).glob("snapshot_date=*/*.parquet")
                   if f.parent.name.split("=", 1)[1] > day)
    if not files:
        return None
    listed = ", ".join(f"'{duck_path(f)}'" for f in files)
    cond = f"WHERE _source_updated_at <= {as_of}" if as_of else ""
    return f"""
        SELECT * EXCLUDE (_n), TRUE AS _in_fence FROM (
            SELECT *, row_number() OVER (
                PARTITION BY id, _source_updated_at, _op ORDER BY snapshot_date) AS _n
            FROM read_parquet([{listed}], hive_partitioning = true,
                              hive_types = {{'snapshot_date': DATE}}, union_by_name = true)
            {cond}
        ) WHERE _n = 1
    """


def _from_checkpoint(entity_dir: Path, cp: dict[str, Any], as_of: str | None) -> str:
    kept = (f"SELECT * EXCLUDE (_version_date), _version_date AS snapshot_date "
            f"FROM read_parquet('{duck_path(cp['file'])}', hive_partitioning = false)")
    later = _later_history(entity_dir, cp["day"], as_of)
    versions = f"{kept} UNION ALL BY NAME {later}" if later else kept
    return f"""
        SELECT * EXCLUDE (_rn, _in, _in_fence) FROM (
            SELECT *, row_number() OVER (PARTITION BY id ORDER BY {ORDER}) AS _rn,
                   bool_or(_in_fence) OVER (PARTITION BY id) AS _in
            FROM ({versions})
        ) WHERE _rn = 1 AND _op = 'upsert' AND _in
    """


def catalog_state_sql(entity_dir: Path, as_of: str | None = None,
                      cps: list[dict[str, Any]] | None = None) -> str:
    """The state of a backed-up entity (as of the SQL timestamp `as_of`), equal to
    `state_sql(history_sql(entity_dir), as_of, entity_dir=entity_dir)`, through the newest
    checkpoint valid for the time asked (see the module docstring). `cps`: the entity's
    `valid_checkpoints`, when the caller has them already."""
    cps = valid_checkpoints(entity_dir) if cps is None else cps
    if not cps or as_of is not None:
        plain = state_sql(history_sql(entity_dir), as_of, entity_dir=entity_dir)
    if not cps:
        return plain
    if as_of is None:
        return _from_checkpoint(entity_dir, cps[-1], None)
    # one branch per period; the time is a constant where the view is used, so DuckDB keeps
    # the one branch whose condition holds and never scans the others
    bounds = [f"TIMESTAMPTZ '{c['valid_from']}'" for c in cps]
    branches = [f"SELECT * FROM ({plain}) WHERE {as_of} < {bounds[0]}"]
    for i, cp in enumerate(cps):
        upper = f" AND {as_of} < {bounds[i + 1]}" if i + 1 < len(cps) else ""
        branches.append(f"SELECT * FROM ({_from_checkpoint(entity_dir, cp, as_of)}) "
                        f"WHERE {as_of} >= {bounds[i]}{upper}")
    return " UNION ALL BY NAME ".join(f"({b})" for b in branches)


def build(entity_dir: Path, day: str, *, run_id: str = "checkpoint") -> dict[str, Any] | None:
    """Land the checkpoint of `entity_dir` at `day` (from its partitions up to `day`); None when
    the entity cannot have one (a version without an update time)."""
    entity_dir = Path(entity_dir)
    root = entity_dir.parents[1]
    after = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    con = connect_duckdb(config={"threads": 2, "memory_limit": "2GB"})
    try:
        history = history_sql(entity_dir, before_day=after)
        nulls, newest = con.execute(f"""SELECT count(*) FILTER (_source_updated_at IS NULL),
            max(_source_updated_at) FROM ({history})""").fetchone()
        if nulls or newest is None:
            return None
        fulls = full_days(entity_dir, before_day=after)
        # the fence reads every copy (a version repeated by a later full counts there)
        fence = (f"id IN (SELECT id FROM {_scan(entity_dir)} WHERE snapshot_date >= "
                 f"DATE '{fulls[-1]}' AND snapshot_date < DATE '{after}')") if fulls else "TRUE"
        query = f"""
            SELECT * EXCLUDE (_rn, snapshot_date), snapshot_date AS _version_date,
                   {fence} AS _in_fence FROM (
                SELECT *, row_number() OVER (PARTITION BY id ORDER BY {ORDER}) AS _rn
                FROM ({history})
            ) WHERE _rn = 1"""
        end_of_day = datetime.fromisoformat(f"{after}T00:00:00+00:00")
        valid_from = max(newest, end_of_day).isoformat()
        name = f"{entity_dir.parent.name}__{entity_dir.name}"
        return write_partition(con, root, name, day, query, "id", run_id=run_id, source=SOURCE,
                               extra={"mode": "checkpoint", "of": f"{entity_dir.parent.name}/"
                                      f"{entity_dir.name}", "valid_from": valid_from,
                                      "partitions": partition_digests(entity_dir, day)})
    finally:
        con.close()


def refresh(root: Path, sources: tuple[str, ...] = ("greenhouse", "keap", "highlevel"),
            every: int = EVERY) -> dict[str, int]:
    """Build the checkpoints that are due and remove the ones that no longer match."""
    built = removed = 0
    for source in sources:
        base = Path(root) / source
        if not base.is_dir():
            continue
        for entity_dir in sorted(p for p in base.iterdir() if p.is_dir()
                                 and not p.name.startswith(".")):
            gone, valid = _remove_stale(entity_dir)
            removed += gone
            days = sorted(partition_digests(entity_dir))
            if not days:
                continue
            # partitions since the newest valid checkpoint or full (an entity backed up in
            # full every day never needs one: its next full would retire it)
            marks = [c["day"] for c in valid] + full_days(entity_dir)
            since = [d for d in days if not marks or d > max(marks)]
            if len(since) >= every and build(entity_dir, days[-1]) is not None:
                built += 1
    return {"built": built, "removed": removed}


def _remove_stale(entity_dir: Path) -> tuple[int, list[dict[str, Any]]]:
    """Remove the entity's checkpoints that are no longer valid; (how many, the valid ones)."""
    base = checkpoint_root(entity_dir)
    if not base.is_dir():
        return 0, []
    valid = valid_checkpoints(entity_dir)
    keep = {c["day"] for c in valid}
    n = 0
    for folder in sorted(base.glob("snapshot_date=*")):
        if folder.name.split("=", 1)[1] in keep:
            continue
        trash = folder.parent / f".removed-{folder.name}-{uuid.uuid4().hex[:8]}"
        folder.rename(trash)
        record_removed(folder, "removed", "history checkpoint out of date")
        shutil.rmtree(trash, ignore_errors=True)
        n += 1
    return n, valid
