"""Benchmark: generating the sandbox world (time, memory, size).

    uv run python bench/bench_generate.py --candidates 1000000

Generates a world in a temporary folder (or --data-dir), then prints wall and CPU time, peak
resident memory of this process and of the worker processes (getrusage ru_maxrss), the record
counts and the size of world.db, as JSON and as a markdown table row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

from sandbox.store import DB_NAME
from sandbox.world import generate as world


def run(candidates: int, seed: int, apc: float, folder: Path) -> dict:
    wall, cpu = time.perf_counter(), time.process_time()
    summary = world.generate(folder, candidates=candidates, seed=seed,
                             applications_per_candidate=apc)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    records = sum(n for entities in summary["counts"].values() for n in entities.values())
    return {
        "candidates": candidates, "applications_per_candidate": apc, "seed": seed,
        "records": records, "counts": summary["counts"],
        "wall_seconds": round(wall, 1), "phases_seconds": summary["seconds"],
        "main_cpu_seconds": round(cpu, 1),
        "worker_cpu_seconds": round(kids.ru_utime + kids.ru_stime, 1),
        "records_per_second": round(records / wall),
        "peak_rss_main_mb": round(me.ru_maxrss / 1024),      # ru_maxrss is KiB on Linux
        "peak_rss_worker_mb": round(kids.ru_maxrss / 1024),
        "db_mb": round((folder / DB_NAME).stat().st_size / 2 ** 20),
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--applications-per-candidate", type=float, default=1.5)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where to write the world (default: a temporary folder, removed)")
    args = parser.parse_args()
    folder = args.data_dir or Path(tempfile.mkdtemp(prefix="tv-bench-"))
    try:
        result = run(args.candidates, args.seed, args.applications_per_candidate, folder)
    finally:
        if args.data_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, indent=2))
    print(f"| {result['candidates']:,} | {result['applications_per_candidate']} "
          f"| {result['records']:,} | {result['wall_seconds']} s "
          f"| {result['main_cpu_seconds']} s + {result['worker_cpu_seconds']} s "
          f"| {result['records_per_second']:,} | {result['peak_rss_main_mb']} MB "
          f"/ {result['peak_rss_worker_mb']} MB | {result['db_mb']:,} MB |")


if __name__ == "__main__":
    main()
