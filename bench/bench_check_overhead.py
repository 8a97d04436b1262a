"""Benchmark: what the in-asset Great Expectations checks cost one Dagster step process.

    nice -n 15 uv run python bench/bench_check_overhead.py --runs 4 --rows 200

Each extract asset checks its partition in its own step process when the run uses the
multiprocess executor (`dagster dev`, `dagster asset materialize`, schedules). Such a process
starts cold: it loads the code location, then its first check imports GX and builds the
ephemeral context. This script prices exactly that, in fresh child processes:

- `boot`: `import dagster` and `orchestration.definitions` (what every step loads, checks or not)
- `gx_import`: `checks.gx._gx()` (`import great_expectations`) + `great_expectations.expectations`
- `gx_context`: the ephemeral context and its one pandas batch definition (`checks.gx.context`)
- `first_checks`: the asset's checks on a small partition, first time in the process
  (`checks.snapshots.evaluate_partition` on `greenhouse/applications`, 8 checks, with its
  reference targets `candidates`, `jobs`, `job_stages` backed up)
- `warm_checks`: the same checks again in the same process (the price once GX is loaded)

Variants (`--variants`; `-eager` = the runner before scipy.stats was deferred):

- `source`: the interpreter as the environment gives it. With `PYTHONDONTWRITEBYTECODE=1` and a
  virtualenv installed without bytecode (no `.pyc` next to the sources), every process compiles
  every module it imports from source.
- `bytecode`: the same, reading compiled bytecode (a warmed `PYTHONPYCACHEPREFIX` in the
  temp dir; what `uv sync --compile-bytecode` / `UV_COMPILE_BYTECODE=1` gives a virtualenv).
- `forkserver`: Dagster's multiprocess executor with `start_method: forkserver` and
  `preload_modules: [great_expectations, ...]`: the server imports once, every step forks from
  it. Measured with `multiprocessing`'s forkserver context, which is what that executor uses;
  `boot` and `gx_import` are then the forked child's (near zero) re-import cost.

The partition data is written once per run (not timed). Prints one JSON line per child and a
markdown table (median of `--runs`) for docs/bench_checks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = Path(tempfile.gettempdir()) / "talentvault_check_overhead"   # not bench/out: shared
DAY = "2026-01-05"
T = "2026-01-05T10:00:00Z"
PHASES = ("boot", "gx_import", "gx_context", "first_checks", "warm_checks")
PRELOAD = ["dagster", "orchestration.definitions", "great_expectations",
           "great_expectations.expectations"]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


# --- the partition -----------------------------------------------------------------------------

def write_partitions(root: str, rows: int) -> None:
    """Candidates, jobs, job stages and `rows` applications, through SnapshotStorage.writer."""
    from assets.greenhouse import schemas as gh
    from orchestration.storage.snapshots import SnapshotStorage

    storage = SnapshotStorage(root=root)
    start = datetime.fromisoformat(DAY).replace(tzinfo=UTC)
    end = start + timedelta(days=1)

    def write(schema, docs):
        w = storage.writer(schema, DAY, mode="full", run_id="bench", window=(None, end),
                           default_updated=end - timedelta(milliseconds=1))
        w.add(docs)
        w.commit()

    write(gh.candidates, [{"id": 10_000_000 + i, "first_name": "x", "created_at": T,
                           "updated_at": T} for i in range(rows)])
    write(gh.jobs, [{"id": 100_001, "name": "Engineer", "status": "open", "created_at": T,
                     "updated_at": T}])
    write(gh.job_stages, [{"id": 300_001, "job_id": 100_001, "name": "Screen",
                           "created_at": T, "updated_at": T}])
    write(gh.applications, [{"id": 50_000_000 + i, "candidate_id": 10_000_000 + i,
                             "job_id": 100_001, "stage_id": 300_001, "status": "in_process",
                             "created_at": T, "updated_at": T} for i in range(rows)])


# --- one step process --------------------------------------------------------------------------

def step(root: str, lazy: bool, started: float | None = None) -> dict:
    """What one step process pays, phase by phase (wall seconds) + CPU and the checks' verdict."""
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    out: dict = {"gx_preloaded": "great_expectations" in sys.modules, "lazy": lazy}
    if started is not None:   # forkserver: from the parent's request to the child running
        out["spawn"] = round(time.time() - started, 3)

    import dagster  # noqa: F401

    import orchestration.definitions  # noqa: F401
    t1 = time.perf_counter()
    c1 = time.process_time()
    from checks import gx
    if not lazy:
        gx.LAZY_MODULES = ()    # the runner as it was before: GX imports scipy.stats, altair
    gx._gx()
    import great_expectations.expectations  # noqa: F401
    t2 = time.perf_counter()
    out["gx_import_cpu"] = time.process_time() - c1
    gx.context()
    t3 = time.perf_counter()

    from assets.greenhouse import schemas as gh
    from checks.snapshots import evaluate_partition
    from orchestration.storage.snapshots import SnapshotStorage

    storage = SnapshotStorage(root=root)
    clock = datetime(2026, 1, 6, tzinfo=UTC)
    first = evaluate_partition(storage, gh.applications, DAY, clock=clock,
                               clock_source="sandbox", incremental=True)
    t4 = time.perf_counter()
    warm = evaluate_partition(storage, gh.applications, DAY, clock=clock,
                              clock_source="sandbox", incremental=True)
    t5 = time.perf_counter()
    verdict = sorted((r.check_name, r.passed, r.metadata["unexpected_count"].value)
                     for r in first)
    assert verdict == sorted((r.check_name, r.passed, r.metadata["unexpected_count"].value)
                             for r in warm)
    out["scipy_stats_loaded"] = type(sys.modules.get("scipy.stats")).__name__ == "module"
    out.update(boot=t1 - t0, gx_import=t2 - t1, gx_context=t3 - t2, first_checks=t4 - t3,
               warm_checks=t5 - t4, checks=len(first), passed=sum(r.passed for r in first),
               cpu=time.process_time() - cpu0)
    out["step_total"] = t4 - t0
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def _child_main(root: str, lazy: bool) -> None:
    print(json.dumps(step(root, lazy)), flush=True)


def _fork_target(root: str, started: float, queue) -> None:
    queue.put(step(root, True, started))


# --- variants ----------------------------------------------------------------------------------

def run_subprocess(root: str, env: dict[str, str], lazy: bool) -> dict:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", root,
                           *([] if lazy else ["--eager"])], env=env, cwd=REPO,
                          capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall"] = round(time.perf_counter() - started, 3)
    return result


def source_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def bytecode_env() -> dict[str, str]:
    env = source_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return env


def warm_bytecode() -> None:
    """Compile what a step imports into the bench's pycache prefix (not timed)."""
    subprocess.run([sys.executable, "-c", "import " + ", ".join(PRELOAD)], env=bytecode_env(),
                   cwd=REPO, check=True, capture_output=True)


def run_forkserver(root: str, runs: int) -> list[dict]:
    """One forkserver (preloading like Dagster's `preload_modules`), `runs` steps forked off it."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    results = []
    queue = ctx.Queue()
    boot = time.perf_counter()
    for i in range(runs):
        p = ctx.Process(target=_fork_target, args=(root, time.time(), queue))
        p.start()
        r = queue.get()
        p.join()
        if i == 0:   # the server's own start (imports once per run), paid by the first step
            r["server_start_incl_first_step"] = round(time.perf_counter() - boot, 3)
        results.append(r)
    return results


# --- main --------------------------------------------------------------------------------------

def _pyc_count() -> int:
    import great_expectations
    pkg = Path(great_expectations.__file__).parent
    return sum(1 for _ in pkg.rglob("*.pyc"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--variants",
                    default="source-eager,source,bytecode-eager,bytecode,forkserver")
    ap.add_argument("--child")
    ap.add_argument("--eager", action="store_true")
    args = ap.parse_args()
    if args.child:
        _child_main(args.child, lazy=not args.eager)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    root = tempfile.mkdtemp(prefix="data-", dir=OUT)
    try:
        write_partitions(root, args.rows)
        variants = args.variants.split(",")
        results: dict[str, list[dict]] = {v: [] for v in variants}
        if any(v.startswith("bytecode") for v in variants):
            warm_bytecode()
        # child-process variants interleaved run by run, so load drift hits them alike
        for _ in range(args.runs):
            for v in variants:
                base, _, eager = v.partition("-")
                if v == "forkserver":
                    continue
                if base not in ("source", "bytecode") or eager not in ("", "eager"):
                    raise SystemExit(f"unknown variant {v!r}: use source[-eager], "
                                     "bytecode[-eager], forkserver")
                env = source_env() if base == "source" else bytecode_env()
                results[v].append(run_subprocess(root, env, lazy=not eager))
                print(json.dumps({"variant": v, **results[v][-1]}), flush=True)
        if "forkserver" in variants:
            results["forkserver"] = run_forkserver(root, args.runs)
            for r in results["forkserver"]:
                print(json.dumps({"variant": "forkserver", **r}), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    load = os.getloadavg()
    print(f"\n{platform.python_version()}, {os.cpu_count()} CPUs, load "
          f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, GX .pyc files in the venv: "
          f"{_pyc_count()}, PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE')}, "
          f"{args.rows} applications, median of {args.runs}\n")
    print("| variant | boot | GX import | GX import CPU | GX context | first checks | "
          "step total | warm checks | step CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs)
               for k in (*PHASES, "gx_import_cpu", "step_total", "cpu")}
        print(f"| {v} | {med['boot']:.2f} s | {med['gx_import']:.2f} s | "
              f"{med['gx_import_cpu']:.2f} s | {med['gx_context']:.2f} s | "
              f"{med['first_checks']:.2f} s | {med['step_total']:.2f} s | "
              f"{med['warm_checks']:.2f} s | {med['cpu']:.2f} s |")


if __name__ == "__main__":
    main()
