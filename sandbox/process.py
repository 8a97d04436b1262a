"""Running the sandbox server: in the foreground (`talentvault sandbox serve`) or as a background
process that the demo, the Dagster resources and the tests start when none is listening.

With credentials.py, this is all the product may import from the sandbox (the `talentvault
sandbox` commands excepted): it starts, finds and stops a server and reads a stopped world's
clock; everything else reaches the sandbox over HTTP at its base URL. Which mode may start a
sandbox is the product's decision (orchestration/config.py), taken before calling in here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from sandbox.version import code_version

HOST = "127.0.0.1"  # the sandbox listens on loopback only


def serve(data_dir: Path, *, host: str = HOST, port: int = 8765,
          faults: str | None = None, rate_limits: bool = True,
          token_ttl_seconds: float = 3600.0, log_level: str = "warning") -> None:
    import uvicorn

    from sandbox.server import create_app

    app = create_app(data_dir, faults=faults, rate_limits=rate_limits,
                     token_ttl_seconds=token_ttl_seconds)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_keep_alive=30)


class StaleSandbox(RuntimeError):
    """A sandbox answers at the URL but serves another world or code (the message says the fix)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def is_up(base_url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(f"{base_url}/_sandbox/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class SandboxProcess:
    """A sandbox server in a child process; `stop()` ends it."""

    base_url: str
    data_dir: Path
    proc: subprocess.Popen | None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(data_dir: Path, *, port: int | None = None, faults: str | None = None,
          rate_limits: bool = True, token_ttl_seconds: float = 3600.0,
          log_file: Path | None = None, wait_seconds: float = 30.0) -> SandboxProcess:
    """Start `talentvault sandbox serve` in the background and wait until it answers."""
    port = port or free_port()
    base_url = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "orchestration.cli", "sandbox", "serve",
           "--port", str(port), "--data-dir", str(data_dir),
           "--token-ttl", str(token_ttl_seconds)]
    if faults:
        cmd += ["--faults", faults]
    if not rate_limits:
        cmd.append("--no-rate-limits")
    log_file = log_file or Path(data_dir) / "server.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    out = open(log_file, "ab")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                            env={**os.environ}, start_new_session=True)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"the sandbox server exited at start (code {proc.returncode}); see {log_file}")
        if is_up(base_url, timeout=0.5):
            return SandboxProcess(base_url, data_dir, proc)
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the sandbox server did not answer within {wait_seconds}s; see {log_file}")


def ensure_running(folder: Path, base_url: str, *, candidates: int = 3000,
                   seed: int = 42, reuse_any: bool = False) -> tuple[str, bool]:
    """Make sure *this* sandbox answers at base_url, starting a detached one on `folder` if not.

    Returns (base_url, started). A started server keeps running after this process exits (so
    `dagster dev` runs and the CLI share it); `talentvault sandbox stop` ends it (pid file).
    A server already answering is reused only when it serves `folder` with this code (or
    always, with `reuse_any`: the user named that server's URL): one that this folder started
    from older code (its pid file names it) is restarted; one serving another folder raises
    StaleSandbox naming the command that stops it.
    The caller decides whether a sandbox may start at all (never in live mode: see
    orchestration/config.py `sandbox_may_start`)."""
    if is_up(base_url):
        if reuse_any:
            return base_url, False
        running = _health(base_url)
        if _serves(running, folder) and running.get("code") == code_version():
            return base_url, False
        if not _serves(running, folder):
            raise StaleSandbox(
                f"the sandbox answering at {base_url} serves another world "
                f"({running.get('world') or 'an older version'}): stop it with "
                f"`TALENTVAULT_DATA_DIR=<its data dir> talentvault sandbox stop` "
                f"or set TALENTVAULT_SANDBOX_URL to another port")
        _restart_stale(folder, base_url, running)
    from urllib.parse import urlparse

    from sandbox.world import generate as world

    port = urlparse(base_url).port or 8765
    world.ensure(folder, candidates=candidates, seed=seed)
    proc = start(folder, port=port)
    (Path(folder) / "server.pid").write_text(str(proc.proc.pid if proc.proc else ""))
    return proc.base_url, True


def _health(base_url: str) -> dict:
    try:
        body = httpx.get(f"{base_url}/_sandbox/health", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _serves(health: dict, folder: Path) -> bool:
    world = health.get("world")
    return bool(world) and Path(world).resolve().parent == Path(folder).resolve()


def _restart_stale(folder: Path, base_url: str, health: dict) -> None:
    """Stop the server this folder started from other code, and wait until the port is free."""
    pid_file = Path(folder) / "server.pid"
    pid = pid_file.read_text().strip() if pid_file.exists() else ""
    if not pid or str(health.get("pid")) != pid:
        raise StaleSandbox(
            f"the sandbox answering at {base_url} runs other code than this checkout and was "
            f"not started by it: stop that server (`talentvault sandbox stop` with its data dir) "
            f"and run again")
    stop_background(folder)
    deadline = time.monotonic() + 15
    while is_up(base_url, timeout=0.3) and time.monotonic() < deadline:
        time.sleep(0.1)


def stop_background(folder: Path) -> bool:
    """Stop a sandbox started by `ensure_running` (by its pid file). False if none was running."""
    pid_file = Path(folder) / "server.pid"
    if not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
    except (ValueError, ProcessLookupError):
        return False
    finally:
        pid_file.unlink(missing_ok=True)
    return True


def clock(base_url: str, *, timeout: float = 10) -> datetime:
    """The running sandbox's simulated clock (its payloads are stamped with it), asked over HTTP:
    the one way the product reads it. Raises httpx.HTTPError (or KeyError/ValueError on a reply
    that is not the sandbox's) when nothing answers."""
    r = httpx.get(f"{base_url}/_sandbox/clock", timeout=timeout)
    r.raise_for_status()
    now = datetime.fromisoformat(r.json()["now"].replace("Z", "+00:00"))
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)


def clock_or_none(base_url: str, *, timeout: float = 10) -> datetime | None:
    """`clock`, or None when no sandbox answers at `base_url`."""
    try:
        return clock(base_url, timeout=timeout)
    except (httpx.HTTPError, KeyError, ValueError):
        return None


def world_now(folder: Path) -> datetime | None:
    """The simulated clock of the world in `folder`, read from its file (no server needed);
    None when there is no world."""
    from sandbox.store import DB_NAME, Store

    if not (Path(folder) / DB_NAME).exists():
        return None
    store = Store(Path(folder), create=False)
    try:
        return store.now()
    finally:
        store.close()
