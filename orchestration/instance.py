"""Runs whose process is gone: found, marked failed, and their concurrency-pool slots freed.

A Dagster run is recorded STARTED when its process begins and ended by that same process. A
process killed outright (SIGKILL, out of memory, a deploy, a power cut) never ends its run: the run
stays STARTED and keeps its concurrency-pool slots (dagster.yaml `concurrency: pools:
default_limit: 1`), so every later run of that pool would wait for it forever. Here:

- `run_worker`: the process that runs a run, and whether it is alive;
- `release_abandoned_runs`: marks the runs whose process is gone failed and frees their slots
  (and their places in a pool's queue). `talentvault demo` and `talentvault runs release` call it
  before launching anything, and a step waiting for a pool slot calls it for the runs holding
  that pool (orchestration/pools.py), so a re-run after a crash frees the crashed run's slot
  itself, whoever launched either run;
- `LocalRunLauncher`: Dagster's default run launcher plus the run-worker health check that
  Dagster's run monitoring needs (dagster.yaml `run_monitoring:`), so the daemon of `dagster dev`
  does the same for runs nobody re-runs.

Which process runs a run: the pid on its RUN_START event (Dagster records the pid of the process
behind every event), else its `talentvault/pid` tag. A pid is only judged on the machine the run
ran on: the one in its `talentvault/host` tag, else this one when the instance's storage is
SQLite (a file on this machine). A run on another machine is never judged dead from here, and a
pid taken over by a process that started after the run is not the run's.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter
from dagster._core.storage.runs.in_memory import InMemoryRunStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage

PID_TAG, HOST_TAG = "talentvault/pid", "talentvault/host"
# runs that count as running: their process is expected to end them
RUNNING = (DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
REPO = Path(__file__).resolve().parents[1]

# a process that started this long after the run did is not the run's: its pid was reused. Wide,
# so that a clock step (NTP) between the run's start and the check never makes a live run look
# dead; pids are reused after minutes or hours, not seconds
PID_REUSE_SLACK_SECONDS = 120.0


@dataclass(frozen=True)
class RunWorker:
    """The process behind a run. `alive` is None when it cannot be told from here."""

    run_id: str
    status: DagsterRunStatus | None  # None: the run is not in the run storage (deleted)
    pid: int | None
    host: str | None
    alive: bool | None

    def describe(self) -> str:
        """For messages: `pid 4242, alive on this machine`, `pid 4242, gone`, ..."""
        if self.status is None:
            return "a run no longer in the run history"
        if self.pid is None:
            return "no process recorded"
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        if self.alive is None:
            return f"pid {self.pid}{where}, not checkable from this machine"
        return f"pid {self.pid}{where}, {'alive' if self.alive else 'gone'}"


def run_worker(instance: dg.DagsterInstance, run_id: str) -> RunWorker:
    """The process that runs (or ran) `run_id`, and whether it is still alive."""
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return RunWorker(run_id, None, None, None, alive=False)
    run = record.dagster_run
    pid = _start_event_pid(instance, run_id) or _int(run.tags.get(PID_TAG))
    host = run.tags.get(HOST_TAG)
    local = host == socket.gethostname() if host else _storage_is_local(instance)
    alive = _process_alive(pid, since=record.start_time) if pid and local else None
    return RunWorker(run_id, run.status, pid, host, alive)


def release_abandoned_runs(instance: dg.DagsterInstance, pools: list[str] | None = None,
                           by: str = "talentvault") -> list[str]:
    """Mark failed the runs whose process is gone and free their concurrency slots; returns
    their run ids. With `pools`, only the runs holding (or queued for) those pools are looked
    at; without, also every STARTED or CANCELING run of the instance. A run whose process is
    alive, or cannot be checked from this machine, is left alone. `by` names who released it
    (in the run's failure message)."""
    freed = []
    for run_id in _candidates(instance, pools):
        worker = run_worker(instance, run_id)
        if worker.alive is False:
            release_run(instance, worker, by)
            freed.append(run_id)
    return freed


def release_run(instance: dg.DagsterInstance, worker: RunWorker, by: str) -> None:
    """End a run whose process is gone (failed; canceled if it was being canceled) and free its
    concurrency slots and queued claims."""
    run = instance.get_run_by_id(worker.run_id)
    if run is not None and run.status in RUNNING:
        message = (f"abandoned: the process that ran it ({worker.describe()}) was killed or "
                   f"crashed; marked ended and its concurrency slots freed by {by}")
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message)
        else:
            instance.report_run_failed(run, message)
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(worker.run_id)


def _candidates(instance: dg.DagsterInstance, pools: list[str] | None) -> list[str]:
    """Run ids that hold a slot or a place in the queue of `pools` (all pools when None), plus,
    when `pools` is None, the runs recorded as running."""
    storage = instance.event_log_storage
    ids: set[str] = set()
    if storage.supports_global_concurrency_limits:
        if pools is None:
            ids |= storage.get_concurrency_run_ids()
            ids |= {s.run_id for key in storage.get_concurrency_keys()
                    for s in storage.get_concurrency_info(key).claimed_slots}
        else:
            for pool in pools:
                info = storage.get_concurrency_info(pool)
                ids |= {s.run_id for s in info.claimed_slots}
                ids |= {p.run_id for p in info.pending_steps}
    if pools is None:
        ids |= {r.run_id for r in instance.get_runs(RunsFilter(statuses=list(RUNNING)))}
    return sorted(ids)


def _start_event_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.RUN_START,
                                           limit=1).records
    event = records[0].event_log_entry.dagster_event if records else None
    return event.pid if event is not None else None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _storage_is_local(instance: dg.DagsterInstance) -> bool:
    """SQLite (or in-memory) run storage lives on this machine, and so do the runs writing it."""
    return isinstance(instance.run_storage, SqliteRunStorage | InMemoryRunStorage)


def _process_alive(pid: int, since: float | None) -> bool:
    """Whether `pid` is a live process that was already running at `since` (epoch seconds): a
    zombie (killed, not yet reaped) is dead, and so is a newer process that took over the pid."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    stat = _proc_stat(pid)
    if stat is None:  # not Linux, or it just ended: trust the signal check
        return True
    state, started_at = stat
    if state == "Z":
        return False
    return since is None or started_at <= since + PID_REUSE_SLACK_SECONDS


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """(state letter, start time in epoch seconds) of a process, from Linux's /proc."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    fields = text[text.rfind(")") + 2:].split()  # after "pid (command) "
    ticks = os.sysconf("SC_CLK_TCK")
    return fields[0], boot + int(fields[19]) / ticks


class LocalRunLauncher(DefaultRunLauncher):
    """Dagster's default run launcher, plus the run-worker health check that run monitoring
    (dagster.yaml `run_monitoring:`) asks launchers for: a STARTED run whose process is gone is
    reported FAILED, so the daemon marks it failed and, after `free_slots_after_run_end_seconds`,
    frees its concurrency slots. A run that cannot be checked from this machine counts as
    running."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        worker = run_worker(self._instance, run.run_id)
        if worker.alive is False:
            return CheckRunHealthResult(
                WorkerStatus.FAILED, f"the process that ran it ({worker.describe()}) was killed "
                "or crashed")
        return CheckRunHealthResult(WorkerStatus.RUNNING, worker.describe())


LOCAL_HOME = REPO / ".dagster_home"


def project_home() -> str | None:
    """DAGSTER_HOME, else (in a checkout holding dagster.yaml) the repository's own instance
    folder `.dagster_home/`, the instance `talentvault demo`, `ui`, `status` and `runs` use when
    none is set; it gets a copy of the repository's dagster.yaml whenever that file changed.
    None for an installed package without DAGSTER_HOME. Nothing in the instance depends on the
    working directory."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return home
    shipped, installed = REPO / "dagster.yaml", LOCAL_HOME / "dagster.yaml"
    if not shipped.exists():
        return None
    LOCAL_HOME.mkdir(exist_ok=True)
    if not installed.exists() or installed.read_text() != shipped.read_text():
        installed.write_text(shipped.read_text())
    return str(LOCAL_HOME)


def use_project_instance() -> dg.DagsterInstance:
    """The instance of `project_home()` (run history survives restarts); without one (an
    installed package, DAGSTER_HOME unset) the working directory is DAGSTER_HOME."""
    os.environ["DAGSTER_HOME"] = project_home() or str(Path.cwd())
    return dg.DagsterInstance.get()
