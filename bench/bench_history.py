"""History that stays fast for years: a year of one entity's backups (1 full + 364 daily
incrementals changing 1% of the records: 90% updates, 5% deletes, 5% upserts of new or existing
ids, so deleted ids come back), in the layout a backup writes (id-sorted part files, manifests
with their mode), then the catalog's questions asked of the state views
side by side in one run: the plain state definition (a window over every version, fenced by
full snapshots: the views before history checkpoints) and the catalog's views through history
checkpoints (orchestration/storage/checkpoints.py; one every 28 partitions, as the catalog asset
builds them night after night):

- building the catalog (the DDL over every partition);
- current-state count, lookup of one record by id;
- a whole-record as-of scan at a past time (every column of every record alive then).

    uv run python bench/bench_history.py [--records 1000000] [--days 365] [--write-docs]

The world is generated under bench/out/history/ and kept between runs (same arguments, same
files); `--fresh` regenerates it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.outputs import OUT, ROOT, add_flag, report_path, timed  # noqa: E402
from orchestration.storage import checkpoints, parquet  # noqa: E402
from orchestration.storage.state_sql import history_sql, state_sql  # noqa: E402

START = date(2025, 1, 1)
RAW = "repeat(md5(CAST({n} AS VARCHAR) || '{tag}'), 12)"   # ~384 bytes, like a vendor record
COLUMNS = """printf('c%08d', {n}) AS id, 'Given' || {n} AS given_name,
    'Family' || ({n} % 997) AS family_name, NULL::VARCHAR AS middle_name, 'Recruiter' AS job_title,
    CAST({n} % 5000 AS VARCHAR) AS company_id, printf('p%d@example.com', {n}) AS primary_email,
    [printf('p%d@example.com', {n})] AS emails, [printf('+1555%07d', {n})] AS phones,
    [CAST({n} % 40 AS VARCHAR)] AS tag_ids, CAST({n} % 12 AS VARCHAR) AS owner_id,
    'API' AS source_type, TIMESTAMPTZ '2024-06-01 00:00:00+00' AS create_time"""


def partition(root: Path, day: date) -> Path:
    return root / "keap" / "contacts" / f"snapshot_date={day.isoformat()}"


def write_day(con, root: Path, day: date, query: str, mode: str) -> None:
    folder = partition(root, day)
    folder.mkdir(parents=True, exist_ok=True)
    con.execute(f"CREATE OR REPLACE TEMP TABLE day AS {query}")
    n = con.execute("SELECT count(*) FROM day").fetchone()[0]
    step, files = 250_000, []
    for i in range(max(1, -(-n // step))):
        name = f"part-{i:05d}.parquet"
        parquet.write_query(con, f"SELECT * FROM day ORDER BY id, _source_updated_at "
                            f"LIMIT {step} OFFSET {i * step}", folder / name, key=None)
        files.append({"file": name})
    (folder / "_manifest.json").write_text(json.dumps(
        {"source": "keap", "entity": "contacts", "snapshot_date": day.isoformat(),
         "mode": mode, "files": files}))


def generate(root: Path, records: int, days: int) -> None:
    """Day 0 a full snapshot of `records`; each later day 1% of them changed: 90% updates, 5%
    deletes, 5% upserts of new or existing ids (a deleted id drawn again comes back)."""
    con = parquet.connect(key=None, config={"threads": 2, "memory_limit": "2GB"})
    stamp = "TIMESTAMPTZ '{d} 00:00:00+00' + to_seconds(n % 86000)"
    write_day(con, root, START, f"""SELECT {COLUMNS.format(n='n')},
        {stamp.format(d=START)} AS update_time, {RAW.format(n='n', tag='0')} AS _raw,
        {stamp.format(d=START)} AS _source_updated_at,
        TIMESTAMPTZ '{START} 23:00:00+00' AS _extracted_at, 'upsert' AS _op, 'bench' AS _run_id
        FROM range(1, {records} + 1) r(n)""", "full")
    change = max(1, records // 100)
    for d in range(1, days):
        day = START + timedelta(days=d)
        ts = stamp.format(d=day)
        picked = f"""SELECT DISTINCT 1 + (hash(i, {d}) % {records})::BIGINT AS n,
                     (hash(i, {d}, 'kind') % 100)::INT AS kind
                     FROM range({change}) r(i)"""
        write_day(con, root, day, f"""
            WITH p AS ({picked})
            SELECT {COLUMNS.format(n='n')}, {ts} AS update_time,
                   {RAW.format(n='n', tag=d)} AS _raw,
                   {ts} AS _source_updated_at, TIMESTAMPTZ '{day} 23:00:00+00' AS _extracted_at,
                   CASE WHEN kind < 5 THEN 'delete' ELSE 'upsert' END AS _op,
                   'bench' AS _run_id
            FROM p
            UNION ALL
            SELECT {COLUMNS.format(n='n2')}, {ts.replace('n %', 'n2 %')},
                   {RAW.format(n='n2', tag=d)}, {ts.replace('n %', 'n2 %')},
                   TIMESTAMPTZ '{day} 23:00:00+00', 'upsert', 'bench'
            FROM (SELECT CASE WHEN kind % 2 = 0 THEN {records} + {d} * {change} + n
                         ELSE n END AS n2 FROM p WHERE kind >= 95) q""", "incremental")
    con.close()


def measure(entity_dir: Path, build, label: str, lookup_id: str, as_of: str) -> list:
    """`build(entity_dir, as_of_sql)` gives a state query; timed: the DDL, a count, a lookup
    by id and a whole-record as-of scan."""
    con = parquet.connect(key=None, config={"threads": 2, "memory_limit": "3GB"})
    con.execute("SET TimeZone = 'UTC'")
    catalog = timed(lambda: [build(entity_dir, None), build(entity_dir, "CAST(ts AS TIMESTAMPTZ)")])
    con.execute(f"CREATE VIEW cur AS {build(entity_dir, None)}")
    con.execute(f"CREATE MACRO as_of(ts) AS TABLE {build(entity_dir, 'CAST(ts AS TIMESTAMPTZ)')}")
    count = timed(lambda: con.execute("SELECT count(*) FROM cur").fetchone())
    lookup = timed(lambda: con.execute("SELECT * FROM cur WHERE id = ?", [lookup_id]).fetchall())
    scan = timed(lambda: con.execute(
        f"SELECT count(*), sum(length(_raw)), max(given_name), sum(len(emails)) "
        f"FROM as_of(TIMESTAMPTZ '{as_of}')").fetchone(), repeat=1)
    answer = con.execute("SELECT count(*) FROM cur").fetchone()[0]
    con.close()
    return [label, catalog, count, lookup, scan, answer]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--fresh", action="store_true")
    add_flag(ap)
    args = ap.parse_args()
    world = OUT / "history" / f"world-{args.records}-{args.days}"
    if args.fresh and world.exists():
        shutil.rmtree(world)
    t = time.perf_counter()
    if not (world / ".done").exists():
        generate(world, args.records, args.days)
        (world / ".done").touch()
    generated = time.perf_counter() - t
    entity = world / "keap" / "contacts"
    lookup_id = f"c{args.records // 3:08d}"
    as_of = f"{START + timedelta(days=args.days // 2)} 12:00:00+00"
    def plain(entity_dir: Path, as_of_sql: str | None) -> str:
        return state_sql(history_sql(entity_dir), as_of_sql, entity_dir=entity_dir)

    rows = [measure(entity, plain, "plain: a window over every version (before)", lookup_id,
                    as_of)]
    t = time.perf_counter()
    made = 0
    for d in range(checkpoints.EVERY - 1, args.days, checkpoints.EVERY):
        day = (START + timedelta(days=d)).isoformat()
        if not (checkpoints.checkpoint_root(entity) / f"snapshot_date={day}").exists():
            checkpoints.build(entity, day)
            made += 1
    per_checkpoint = (time.perf_counter() - t) / made if made else float("nan")
    rows.append(measure(entity, checkpoints.catalog_state_sql,
                        f"through checkpoints every {checkpoints.EVERY} partitions (after)",
                        lookup_id, as_of))
    size = sum(f.stat().st_size for f in entity.rglob("*.parquet"))
    versions = parquet.connect(key=None).execute(
        f"SELECT count(*) FROM read_parquet('{entity}/*/*.parquet')").fetchone()[0]
    lines = [
        "## History at a year: the catalog's questions",
        "",
        f"`uv run python bench/bench_history.py --records {args.records} --days {args.days}` "
        f"on {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}: "
        f"one entity, 1 full + {args.days - 1} daily 1% incrementals = {versions:,} stored "
        f"versions in {args.days} partitions ({size / 1e6:,.0f} MB of Parquet; generated in "
        f"{generated:,.0f} s, or reused). Medians of 3 (the as-of scan: 1 run). Building one "
        f"checkpoint (the nightly cost, once every {checkpoints.EVERY} nights per entity): "
        f"{per_checkpoint:.1f} s.",
        "",
        "| views | catalog build | current count | lookup by id | whole-record as-of scan | "
        "current records |",
        "|---|---|---|---|---|---|",
        *[f"| {r[0]} | {r[1]:.3f} s | {r[2]:.2f} s | {r[3]:.2f} s | {r[4]:.2f} s | {r[5]:,} |"
          for r in rows],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    target = report_path(args, ROOT / "docs" / "bench_history.md", "history")
    target.write_text(text)


if __name__ == "__main__":
    main()
