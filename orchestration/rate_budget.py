"""One rate budget per vendor credential, shared by every process of a deployment.

Each client paces itself (orchestration/http.py `Pacer`), but a nightly backup, a push, webhook
runs, a restore and a CLI command are separate processes: paced apart, together they overrun the
vendor's limit. With a shared budget every call first takes a slot in one sliding log of call
times per budget key, kept in a small SQLite file (WAL; one `BEGIN IMMEDIATE` transaction per
call, a fraction of a millisecond), so the windows hold for the sum of all processes.

- Key: the vendor and a hash of what identifies the credential (base URL, API key or client
  id), never the secret: two Keap keys have two budgets, every process using one key shares one.
- Crash-safe: a process killed mid-transaction leaves nothing locked (SQLite releases its locks
  and rolls back), and a slot taken by a process that died before calling simply expires with
  its window.
- Pauses a vendor asks for (429 Retry-After, a spent-quota header) are shared too.
- Where: `TALENTVAULT_RATE_BUDGET` = a file path, or `off` (each process paces alone);
  default `<data root>/state/rate-budget.sqlite`. Every process of a deployment must see the
  same file (one machine, or a shared volume): docs/architecture.md, "Rate budget across
  processes".
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

ENV_VAR = "TALENTVAULT_RATE_BUDGET"
FILE_NAME = "rate-budget.sqlite"
MAX_SLEEP = 1.0  # re-check at least this often (another process may have paused the key)


class SharedBudget:
    """Sliding windows over one key's call log in SQLite; thread-safe within a process."""

    def __init__(self, path: Path | str, key: str):
        self.path, self.key = Path(path), key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._con = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                    check_same_thread=False)
        self._con.execute("PRAGMA synchronous=OFF")  # losing a slot to a power cut is harmless
        self._setup()

    def _setup(self) -> None:
        """WAL and the tables, once per file. Several processes may open a new file at the same
        moment, and switching to WAL does not wait on a busy file: retry for up to 30 s."""
        deadline = time.monotonic() + 30
        while True:
            try:
                if self._con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    self._con.execute("PRAGMA journal_mode=WAL")
                self._con.executescript("""
                    CREATE TABLE IF NOT EXISTS calls (key TEXT NOT NULL, t REAL NOT NULL);
                    CREATE INDEX IF NOT EXISTS calls_by_key ON calls (key, t);
                    CREATE TABLE IF NOT EXISTS pauses (key TEXT PRIMARY KEY, until REAL NOT NULL);
                """)
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def acquire(self, windows: list[tuple[int, float]], safety: float) -> float:
        """Wait until one more call fits in every window for all processes; take the slot.
        Returns seconds waited."""
        if not windows:
            return 0.0
        horizon = max(s for _, s in windows) + safety
        waited = 0.0
        while True:
            wait = self._try(windows, safety, horizon)
            if wait <= 0:
                return waited
            nap = min(wait, MAX_SLEEP)
            time.sleep(nap)
            waited += nap

    def _try(self, windows: list[tuple[int, float]], safety: float, horizon: float) -> float:
        with self._lock:
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                con.execute("DELETE FROM calls WHERE key = ? AND t <= ?", (self.key, now - horizon))
                row = con.execute("SELECT until FROM pauses WHERE key = ?", (self.key,)).fetchone()
                wait = max(0.0, row[0] - now) if row else 0.0
                for limit, seconds in windows:
                    # the limit-th most recent call inside the window, if there are that many
                    hit = con.execute(
                        "SELECT t FROM calls WHERE key = ? AND t > ? ORDER BY t DESC "
                        "LIMIT 1 OFFSET ?", (self.key, now - seconds - safety, limit - 1)
                    ).fetchone()
                    if hit:
                        wait = max(wait, hit[0] + seconds + safety - now)
                if wait <= 0:
                    con.execute("INSERT INTO calls VALUES (?, ?)", (self.key, now))
                con.execute("COMMIT")
                return wait
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def pause(self, seconds: float) -> None:
        """The vendor said the window is spent: no process calls with this key for `seconds`."""
        with self._lock:
            until = time.time() + seconds
            self._con.execute(
                "INSERT INTO pauses VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET until = max(until, excluded.until)", (self.key, until))


def budget_key(vendor: str, *identity: str) -> str:
    """`vendor:<hash>`: which credential, without the secret."""
    digest = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:16]
    return f"{vendor}:{digest}"


def budget_path() -> Path | None:
    """Where the shared budget lives (TALENTVAULT_RATE_BUDGET), None when it is off."""
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting.lower() in ("off", "0", "false", "no"):
        return None
    if setting:
        return Path(setting)
    from orchestration.config import data_root

    return data_root() / "state" / FILE_NAME


def shared_budget(vendor: str, *identity: str) -> SharedBudget | None:
    """The shared budget of one vendor credential, or None when sharing is off."""
    path = budget_path()
    return None if path is None else SharedBudget(path, budget_key(vendor, *identity))
