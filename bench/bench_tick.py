"""`sandbox tick` on one world, this checkout vs a previous commit, side by side in one run.

    uv run python bench/bench_tick.py --candidates 50000 --days 1 --before 7767174

Generates the world once (seed 42; cached under bench/out/tick/), copies it for each side, and
plays the same days with each side's code in its own process (the previous commit from a
temporary git worktree). The world a previous commit plays is put back to the indexes that
commit's store created (records_parent instead of records_parent_seq). Checks that both sides
wrote the same records (a hash over records, tombstones and lookup keys) and prints wall and CPU
seconds. Writes only under bench/out/tick/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out" / "tick"

PLAY = """
import json, resource, sys, time
from pathlib import Path
from sandbox.store import Store
from sandbox.world.life import tick
store = Store(Path(sys.argv[1]), create=False)
t, c = time.perf_counter(), time.process_time()
done = tick(store, int(sys.argv[2]))
print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c,
                  "events": sum(v for k, v in done["total"].items() if not k.endswith("_skipped")),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def world_hash(path: Path) -> str:
    con = sqlite3.connect(path / "world.db")
    digest = hashlib.sha256()
    for table in ("records", "tombstones", "lookup"):
        for row in con.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"):
            digest.update(repr(row).encode())
    con.close()
    return digest.hexdigest()[:16]


def play(code: Path, world: Path, days: int) -> dict:
    run = subprocess.run(["uv", "run", "--project", str(code), "python", "-c", PLAY, str(world),
                          str(days)], cwd=code, capture_output=True, text=True, check=True,
                         env={**os.environ, "UV_NO_SYNC": "0"})
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candidates", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--before", default="7767174", help="the commit to compare with")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    base = OUT / f"world-{args.candidates}"
    if not (base / "world.db").exists():
        subprocess.run([sys.executable, "-m", "orchestration.cli", "sandbox", "init",
                        "--candidates", str(args.candidates), "--data-dir", str(base)],
                       cwd=REPO, check=True, capture_output=True)
    old_code = OUT / "before-code"
    if old_code.exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(old_code)], cwd=REPO)
    subprocess.run(["git", "worktree", "add", "--detach", str(old_code), args.before], cwd=REPO,
                   check=True, capture_output=True)
    rows = {}
    try:
        for side, code in (("before", old_code), ("after", REPO)):
            world = OUT / f"play-{side}"
            shutil.rmtree(world, ignore_errors=True)
            shutil.copytree(base, world)
            if side == "before":
                con = sqlite3.connect(world / "world.db")
                con.execute("DROP INDEX IF EXISTS records_parent_seq")
                con.execute("CREATE INDEX IF NOT EXISTS records_parent "
                            "ON records (source, entity, parent)")
                con.commit()
                con.close()
            rows[side] = {**play(code, world, args.days), "hash": world_hash(world)}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(old_code)], cwd=REPO)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}",
              "candidates": args.candidates, "days": args.days, "before": args.before,
              "same_records": rows["before"]["hash"] == rows["after"]["hash"], **rows}
    (OUT / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
