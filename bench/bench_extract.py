"""Benchmark: extraction from the sandbox, talentvault vs dlt's REST API source.

    uv run --extra bench python bench/bench_extract.py --contacts 100000 --candidates 100000

Measures, with the sandbox's rate limits off:
  (a) talentvault: a full `keap/contacts` snapshot (run_extract + KeapResource, page_size 1000);
  (b) talentvault: full `greenhouse/candidates` and `greenhouse/applications` snapshots
      (GreenhouseResource, per_page 500);
  (c) dlt: the same Keap contacts endpoint through `dlt.sources.rest_api` into Parquet files
      (filesystem destination), asking for the same `fields` as talentvault: once with dlt's
      defaults (nested lists become child tables) and once with `max_table_nesting=0`.
Each measurement runs in its own child process, so peak RSS (getrusage ru_maxrss) is its own.
API calls are counted by the sandbox (its request log, emptied before each measurement); the
sandbox server's CPU time is read from /proc for each measurement too.

Worlds are generated once and cached under bench/out/worlds/ (generation is not measured; see
bench_generate.py), keyed by size, seed and a digest of the generator's source. The generator
gives Keap ~0.8 contacts per candidate, so the Keap world is sized up until it holds at least
--contacts contacts; the Greenhouse world has exactly --candidates candidates. Results print as
a markdown table into bench/out/extract/benchmarks.md; with --write-docs they replace the section
"Extraction: talentvault vs dlt" of docs/benchmarks.md (other sections, and the hand-written
notes of this one, are kept).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import hashlib
import json
import math
import os
import platform
import pstats
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from outputs import NOTES_SLOT, add_flag, report_path, write_section

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Extraction: talentvault vs dlt"
KEAP_PER_CANDIDATE_GUESS = 0.80   # world/build.py: 60% of candidates in Keap (+4% dupes) + leads
UNLIMITED = 1_000_000             # client pacing high enough never to wait

if str(ROOT) not in sys.path:     # `python bench/bench_extract.py` puts bench/ first, not root
    sys.path.insert(0, str(ROOT))


# -- worlds --------------------------------------------------------------------------------------
@functools.cache
def generator_version() -> str:
    """A digest of the world generator's source: a cached world is reused only while the
    generator that made it is unchanged (computed once per run, so a run uses one version)."""
    h = hashlib.sha256()
    files = sorted((ROOT / "sandbox" / "world").rglob("*.py"))
    assert files, "the world generator moved: update bench_extract.generator_version"
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:10]


def world_dir(candidates: int, seed: int) -> Path:
    return OUT / "worlds" / f"c{candidates}-s{seed}-{generator_version()}"


def ensure_world(candidates: int, seed: int) -> dict[str, Any]:
    """The cached world of this size (generated on first use); returns its summary."""
    folder = world_dir(candidates, seed)
    done = folder / "summary.json"   # written last: a world without it is incomplete
    if done.exists():
        return json.loads(done.read_text())
    from sandbox.world import generate as world

    print(f"generating a world of {candidates:,} candidates in {folder} "
          "(once; not measured) ...", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    summary = world.generate(folder, candidates=candidates, seed=seed)
    summary["generate_seconds"] = round(time.perf_counter() - started, 1)
    done.write_text(json.dumps(summary, indent=2))
    return summary


def ensure_keap_world(contacts: int, seed: int) -> tuple[int, dict[str, Any]]:
    """A world with at least `contacts` Keap contacts: sized by the usual ratio, rounded up to
    1,000 candidates, and grown by 3 % steps until it holds enough (each step is cached)."""
    candidates = math.ceil(contacts / KEAP_PER_CANDIDATE_GUESS / 1000) * 1000
    while True:
        summary = ensure_world(candidates, seed)
        if summary["counts"]["keap"]["contacts"] >= contacts:
            return candidates, summary
        candidates = math.ceil(candidates * 1.03 / 1000) * 1000


# -- measuring in a child process ----------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU time the whole machine spent busy (all CPUs, all processes) since boot."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().splitlines()[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def admin(base_url: str, method: str, path: str) -> Any:
    import httpx

    r = httpx.request(method, f"{base_url}/_sandbox{path}", timeout=120)
    r.raise_for_status()
    return r.json()


def measure(jobs: list[tuple[str, str, dict[str, Any]]], base_url: str, server_pid: int,
            source: str, repeat: int) -> list[dict[str, Any]]:
    """The fastest of `repeat` runs of each job (name, child kind, child args), each run in a
    fresh child process and folder. Rounds go through every job in turn, so a busy spell on
    a shared machine does not land on one tool's runs only."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in jobs}
    for _ in range(repeat):
        for name, kind, args in jobs:
            runs[name].append(measure_once(name, kind, base_url, server_pid, source, args))
    out = []
    for name, _, _ in jobs:
        best = min(runs[name], key=lambda r: r["wall_seconds"])
        best["walls"] = [r["wall_seconds"] for r in runs[name]]
        best["client_cpus"] = [r["client_cpu_seconds"] for r in runs[name]]
        out.append(best)
    return out


def measure_once(name: str, kind: str, base_url: str, server_pid: int, source: str,
                 args: dict[str, Any]) -> dict[str, Any]:
    work = OUT / "runs" / re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    admin(base_url, "DELETE", "/requests")
    env = {**os.environ, "TALENTVAULT_DATA_DIR": str(work / "data"),
           "TALENTVAULT_SANDBOX_URL": base_url, "RUNTIME__DLTHUB_TELEMETRY": "false",
           "PYTHONHASHSEED": "0",
           # modules imported lazily inside the timed part must not be compiled from source on
           # every run (as they are where PYTHONDONTWRITEBYTECODE is set): cache their bytecode
           "PYTHONPYCACHEPREFIX": str(OUT / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    result_file = work / "result.json"
    code = Path(args.get("code") or ROOT)   # --before: the previous commit's checkout
    cmd = [sys.executable, str(code / "bench" / "bench_extract.py"), "--child", kind,
           "--child-args", json.dumps({**args, "base_url": base_url, "work": str(work),
                                       "server_pid": server_pid,
                                       "result": str(result_file)})]
    print(f"measuring {name} ...", flush=True)
    subprocess.run(cmd, env=env, check=True, cwd=code)
    result = json.loads(result_file.read_text())
    log = admin(base_url, "GET", f"/requests?source={source}")["requests"]
    result["api_calls"] = len(log)
    result["api_errors"] = sum(1 for e in log if (e["status"] or 0) >= 400)
    result["name"] = name
    result["records_per_second"] = round(result["records"] / result["wall_seconds"])
    print(f"  {json.dumps(result)}", flush=True)
    return result


def _preload() -> int:
    """Import what both tools load lazily on first use (pyarrow pulls in pandas to convert
    timezone-aware datetimes; dlt's normalizer does too), so the timed part is the work, as in
    a long-lived worker, not one-off imports. Returns the peak RSS so far (KiB)."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Clock:
    """Wall, own CPU, the sandbox server's CPU and the rest of the machine's CPU over the timed
    part of a child (the rest: a shared machine makes wall times noisy; this says how much)."""

    def __init__(self, server_pid: int, baseline_kib: int):
        self.server_pid, self.baseline_kib = server_pid, baseline_kib
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.server, self.busy = cpu_seconds(server_pid), busy_seconds()

    def stats(self) -> dict[str, Any]:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        server = cpu_seconds(self.server_pid) - self.server
        others = max(0.0, busy_seconds() - self.busy - cpu - server)
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "wall_seconds": round(wall, 2),
            "client_cpu_seconds": round(cpu, 1),
            "server_cpu_seconds": round(server, 1),
            "others_cpu_seconds": round(others, 1),
            "peak_rss_mb": round(max(me.ru_maxrss, kids.ru_maxrss) / 1024),  # KiB on Linux
            "rss_after_imports_mb": round(self.baseline_kib / 1024),
        }


class Timer:
    """Adds up the time spent inside some functions (wrapped on their classes)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        inner = getattr(owner, attr)
        seconds = self.seconds
        seconds.setdefault(label, 0.0)

        def timed(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                seconds[label] += time.perf_counter() - t
        setattr(owner, attr, timed)

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 2) for k, v in self.seconds.items()}


def child_talentvault(a: dict[str, Any]) -> dict[str, Any]:
    from assets.extract import run_extract
    from assets.greenhouse.extract import SPECS as GREENHOUSE
    from assets.keap.extract import SPECS as KEAP
    from orchestration.http import HttpClient
    from orchestration.resources import GreenhouseResource, KeapResource
    from orchestration.storage.schema import EntitySchema
    from orchestration.storage.snapshots import SnapshotStorage
    from orchestration.storage.writer import PartitionWriter

    baseline = _preload()
    timer = Timer()
    timer.wrap(HttpClient, "request", "http_seconds")        # send + receive + JSON check
    timer.wrap(EntitySchema, "rows", "to_arrow_seconds")     # page of dicts -> Arrow batch
    timer.wrap(PartitionWriter, "add", "add_seconds")        # to_arrow + staging Parquet write
    timer.wrap(PartitionWriter, "commit", "commit_seconds")  # DuckDB dedupe/sort/write, hash
    source, entity = a["entity"].split("/")
    specs = KEAP if source == "keap" else GREENHOUSE
    spec = next(s for s in specs if s.schema.entity == entity)
    if source == "keap":
        client = KeapResource(requests_per_second=UNLIMITED, requests_per_minute=UNLIMITED,
                              page_size=1000).open()
    else:
        client = GreenhouseResource(requests_per_window=UNLIMITED, page_size=500).open()
    storage = SnapshotStorage(root=str(Path(a["work"]) / "data"))
    profiler = cProfile.Profile() if a.get("profile") else None
    clock = Clock(a["server_pid"], baseline)
    try:
        if profiler:
            profiler.enable()
        manifest = run_extract(spec, client, storage, date.fromisoformat(a["day"]), "bench",
                               requested_mode="full")
    finally:
        if profiler:
            profiler.disable()
        client.close()
    out = clock.stats()
    if profiler:   # --profile: where the client's time went, by function (slower run)
        report = Path(a["work"]) / "profile.txt"
        with report.open("w") as fh:
            pstats.Stats(profiler, stream=fh).sort_stats("tottime").print_stats(40)
        print(f"  profile: {report}", flush=True)
    part = storage.partition_dir(source, entity, a["day"])
    out.update(records=manifest["upserts"], client_calls=manifest["api_calls"],
               parquet_mb=round(sum(f["bytes"] for f in manifest["files"]) / 2 ** 20, 1),
               path=str(part), breakdown=timer.rounded())
    return out


def child_dlt(a: dict[str, Any]) -> dict[str, Any]:
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    import dlt
    import pyarrow.parquet as pq
    from dlt.sources.rest_api import rest_api_source

    from sandbox import credentials

    baseline = _preload()
    work = Path(a["work"])
    source = rest_api_source({
        "client": {
            "base_url": f"{a['base_url']}/keap/crm/rest/v2/",
            "auth": {"type": "api_key", "name": "X-Keap-API-Key",
                     "api_key": credentials.KEAP_API_KEY, "location": "header"},
        },
        "resources": [{
            "name": "contacts",
            "endpoint": {
                "path": "contacts",
                "params": {"page_size": 1000, "order_by": "id asc", "fields": a["fields"]},
                "data_selector": "contacts",
                "paginator": {"type": "cursor", "cursor_path": "next_page_token",
                              "cursor_param": "page_token"},
            },
        }],
    })
    if a.get("max_table_nesting") is not None:
        source.max_table_nesting = a["max_table_nesting"]   # nested lists stay JSON columns
    pipeline = dlt.pipeline(
        pipeline_name="bench_keap_contacts", pipelines_dir=str(work / "dlt_pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=(work / "dlt_data").as_uri()),
        dataset_name="keap")
    clock = Clock(a["server_pid"], baseline)
    pipeline.run(source, loader_file_format="parquet")
    out = clock.stats()
    steps = {s.step: round((s.finished_at - s.started_at).total_seconds(), 2)
             for s in pipeline.last_trace.steps}
    tables = work / "dlt_data" / "keap"
    files = sorted((tables / "contacts").glob("*.parquet"))
    rows = pipeline.last_trace.last_normalize_info.row_counts
    out.update(records=sum(pq.ParquetFile(f).metadata.num_rows for f in files),
               client_calls=None, path=str(tables / "contacts"),
               parquet_mb=round(sum(f.stat().st_size for f in tables.rglob("*.parquet"))
                                / 2 ** 20, 1),
               tables={k: v for k, v in sorted(rows.items()) if not k.startswith("_dlt")},
               breakdown={f"{k}_seconds": v for k, v in steps.items()})
    return out


# -- the run -------------------------------------------------------------------------------------
@functools.cache
def before_code(commit: str) -> Path:
    """A checkout of `commit` (a temporary git worktree under bench/out/), whose own bench
    script measures the code as it was, against the same sandbox in the same run."""
    folder = OUT / f"before-{commit}"
    if not (folder / "bench" / "bench_extract.py").exists():
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT,
                       capture_output=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], cwd=ROOT,
                       check=True, capture_output=True)
    return folder


def last_whole_day(base_url: str) -> str:
    now = datetime.fromisoformat(admin(base_url, "GET", "/clock")["now"].replace("Z", "+00:00"))
    return (now - timedelta(milliseconds=1)).date().isoformat()


def warm(folder: Path) -> None:
    """Read the world's files once, so no measurement pays for a cold page cache."""
    for f in folder.glob("world.db*"):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def keap_fields(base_url: str) -> str:
    """The `fields` talentvault asks for (defaults + the model's optional properties)."""
    os.environ["TALENTVAULT_SANDBOX_URL"] = base_url
    from orchestration.resources import KeapResource

    client = KeapResource().open()
    try:
        return ",".join(client.all_contact_fields())
    finally:
        client.close()


def same_ids(tv_part: str, dlt_dir: str) -> dict[str, int]:
    import duckdb

    con = duckdb.connect()
    try:
        only_tv, only_dlt = con.execute(f"""
            WITH a AS (SELECT id FROM read_parquet('{tv_part}/*.parquet') WHERE _op = 'upsert'),
                 b AS (SELECT CAST(id AS VARCHAR) AS id FROM read_parquet('{dlt_dir}/*.parquet'))
            SELECT (SELECT count(*) FROM (SELECT id FROM a EXCEPT SELECT id FROM b)),
                   (SELECT count(*) FROM (SELECT id FROM b EXCEPT SELECT id FROM a))
        """).fetchone()
    finally:
        con.close()
    return {"only_talentvault": only_tv, "only_dlt": only_dlt}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sandbox import process

    gh_summary = ensure_world(args.candidates, args.seed)
    keap_candidates, keap_summary = ensure_keap_world(args.contacts, args.seed)
    worlds = {"greenhouse": (args.candidates, gh_summary),
              "keap": (keap_candidates, keap_summary)}
    results: list[dict[str, Any]] = []
    facts: dict[str, Any] = {"worlds": {k: {"candidates": c, "counts": s["counts"],
                                            "generate_seconds": s.get("generate_seconds")}
                                        for k, (c, s) in worlds.items()}}
    for vendor in ("keap", "greenhouse"):
        candidates, _ = worlds[vendor]
        folder = world_dir(candidates, args.seed)
        warm(folder)
        server = process.start(folder, rate_limits=False, log_file=OUT / "sandbox.log")
        try:
            assert server.proc is not None
            pid, base = server.proc.pid, server.base_url
            day = last_whole_day(base)
            if vendor == "keap":
                fields = keap_fields(base)
                facts["keap_fields"] = fields
                jobs = [("talentvault keap/contacts", "talentvault",
                         {"entity": "keap/contacts", "day": day, "profile": args.profile})]
                if args.before:
                    jobs.append((f"talentvault {args.before} (before) keap/contacts",
                                 "talentvault", {"entity": "keap/contacts", "day": day,
                                                 "code": str(before_code(args.before))}))
                if not args.skip_dlt:
                    jobs += [(f"dlt rest_api keap/contacts{label}", "dlt",
                              {"fields": fields, "max_table_nesting": nesting})
                             for label, nesting in (("", None), (", max_table_nesting=0", 0))]
                measured = measure(jobs, base, pid, "keap", args.repeat)
                results += measured
                tv, dlts = measured[0], measured[1:]
                expected = keap_summary["counts"]["keap"]["contacts"]
                facts["ids"], facts["counts_match"] = {}, tv["records"] == expected
                for dl in dlts:
                    ids = same_ids(tv["path"], dl["path"])
                    facts["ids"][dl["name"]] = ids
                    facts["counts_match"] &= dl["records"] == expected and not any(ids.values())
            else:
                jobs = [(f"talentvault greenhouse/{entity}", "talentvault",
                         {"entity": f"greenhouse/{entity}", "day": day,
                          "profile": args.profile}) for entity in args.greenhouse]
                if args.before:
                    jobs += [(f"talentvault {args.before} (before) greenhouse/{entity}",
                              "talentvault", {"entity": f"greenhouse/{entity}", "day": day,
                                              "code": str(before_code(args.before))})
                             for entity in args.greenhouse]
                results += measure(jobs, base, pid, "greenhouse", args.repeat)
        finally:
            server.stop()
    return {"results": results, "facts": facts}


# -- reporting -----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.machine())
    versions = {}
    for pkg in ("dlt", "pyarrow", "duckdb", "httpx", "requests", "uvicorn", "starlette",
                "dagster"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "-"
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gb": round(mem_kib / 2 ** 20, 1),
            "python": platform.python_version(), "os": platform.platform(terse=True),
            "versions": versions}


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| what | records | wall | records/s | API calls | peak RSS | client CPU "
             "| records/client CPU s | sandbox CPU | Parquet | others' CPU |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['records']:,} | {r['wall_seconds']:.1f} s "
            f"| {r['records_per_second']:,} | {r['api_calls']:,} | {r['peak_rss_mb']:,} MB "
            f"| {r['client_cpu_seconds']} s "
            f"| {round(r['records'] / max(r['client_cpu_seconds'], 0.1)):,} "
            f"| {r['server_cpu_seconds']} s "
            f"| {r['parquet_mb']} MB | {r['others_cpu_seconds']} s |")
    return "\n".join(lines)


def breakdown(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        parts = ", ".join(f"{k.removesuffix('_seconds')} {v} s" for k, v in r["breakdown"].items())
        extra = f"; tables {r['tables']}" if r.get("tables") else ""
        walls = ", ".join(f"{w} s" for w in r.get("walls", []))
        cpus = ", ".join(f"{c} s" for c in r.get("client_cpus", []))
        lines.append(f"- {r['name']}: {parts}; RSS after imports {r['rss_after_imports_mb']} MB;"
                     f" all runs: wall {walls}, client CPU {cpus}{extra}")
    return "\n".join(lines)


def write_doc(section: str, doc: Path = DOC) -> None:
    """Replace this benchmark's section of `doc` (docs/benchmarks.md with --write-docs), keeping
    every other section and the hand-written notes of this one."""
    write_section(doc, SECTION, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--candidates", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--greenhouse", nargs="+", default=["candidates", "applications"])
    parser.add_argument("--skip-dlt", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement; the fastest is reported (default 3)")
    parser.add_argument("--before", metavar="COMMIT",
                        help="also measure talentvault as it was at COMMIT (a git worktree)")
    parser.add_argument("--profile", action="store_true",
                        help="profile talentvault's runs (cProfile; slower: not for the table)")
    add_flag(parser)
    parser.add_argument("--child", choices=["talentvault", "dlt"], help=argparse.SUPPRESS)
    parser.add_argument("--child-args", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_args = json.loads(args.child_args)
        fn = child_talentvault if args.child == "talentvault" else child_dlt
        result = fn(child_args)
        Path(child_args["result"]).write_text(json.dumps(result))
        return

    try:
        out = run(args)
    finally:
        if args.before:
            subprocess.run(["git", "worktree", "remove", "--force",
                            str(OUT / f"before-{args.before}")], cwd=ROOT, capture_output=True)
    facts, results, m = out["facts"], out["results"], machine()
    (OUT / "bench_extract.json").write_text(json.dumps({**out, "machine": m}, indent=2))
    print(table(results))
    print(breakdown(results))
    print(json.dumps(facts.get("ids")), "counts match:", facts.get("counts_match"))
    if facts.get("counts_match") is False:
        print("WARNING: talentvault and dlt did not extract the same contacts", file=sys.stderr)
    doc = report_path(args, DOC, "extract")
    write_doc(render(args, m, facts, results), doc)
    print(f"wrote {doc.relative_to(ROOT)}")


def render(args: argparse.Namespace, m: dict[str, Any], facts: dict[str, Any],
           results: list[dict[str, Any]]) -> str:
    w = facts["worlds"]
    gh, keap = w["greenhouse"], w["keap"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    cmd = ("uv run --extra bench python bench/bench_extract.py "
           f"--contacts {args.contacts} --candidates {args.candidates}")
    if args.repeat != 3:
        cmd += f" --repeat {args.repeat}"
    if args.before:
        cmd += f" --before {args.before}"

    def para(text: str) -> str:
        return textwrap.fill(" ".join(text.split()), width=98)

    load = os.getloadavg()
    return "\n\n".join([
        SECTION,
        para(f"""Run on {date.today().isoformat()}: {m['nproc']} CPUs ({m['cpu']}),
            {m['ram_gb']} GB RAM, Python {m['python']}, {m['os']}; {versions}. Load average
            at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}."""),
        f"```bash\n{cmd}\n```",
        para(f"""Worlds (seed {args.seed}, generator {generator_version()}, generated once
            and cached under `bench/out/worlds/`, not measured; generation took
            {gh.get('generate_seconds')} s and {keap.get('generate_seconds')} s): Greenhouse
            from a world of {gh['candidates']:,} candidates
            ({gh['counts']['greenhouse']['applications']:,} applications); Keap from a world
            of {keap['candidates']:,} candidates, which holds
            {keap['counts']['keap']['contacts']:,} Keap contacts (the generator makes ~0.8
            Keap contacts per candidate, so the Keap world is bigger). Sandbox rate limits
            off; talentvault's client pacing raised out of the way; Keap `page_size` 1000,
            Greenhouse `per_page` 500; dlt asks for the same `fields` as talentvault."""),
        para(f"""Each row is the fastest of {args.repeat} runs, each in its own fresh child
            process and output folder. Records/s = records / wall time of the extraction
            (imports and world generation excluded). "API calls" are the requests the
            sandbox logged (talentvault's Keap row includes its one `/contacts/model` call,
            Greenhouse rows their token request); "client CPU" is the measuring process's CPU
            time (all its threads, DuckDB's included), which moves much less than wall time
            when the machine is busy; "sandbox CPU" the server process's;
            "others' CPU" what the rest of the machine used meanwhile (a shared machine makes
            wall times noisy); "Parquet" the size of everything written (dlt: all its
            tables)."""),
        table(results),
        para(f"""Record counts and ids match between talentvault and dlt (every contact of
            the world, no id in one output and not the other):
            {facts.get('counts_match')}."""),
        "Where the time went (wall seconds of the fastest run, measured inside each child):",
        breakdown(results),
        NOTES_SLOT,
    ]) + "\n"


if __name__ == "__main__":
    main()
