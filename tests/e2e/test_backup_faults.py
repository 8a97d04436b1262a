"""Backups against a misbehaving sandbox: faults, a dead API, and the vendors' rate limits."""

from __future__ import annotations

from collections import defaultdict

import pytest

from orchestration.http import ApiError
from orchestration.storage.snapshots import SnapshotStorage
from tests.e2e.conftest import ALL_SPECS, CORE_SPECS, World

# 10% each: 429s (half with Retry-After), 5xx, timeouts, dropped connections, malformed bodies
FAULTS = {"429": 0.05, "429_no_retry_after": 0.05, "500": 0.04, "502": 0.03, "503": 0.03,
          "slow": 0.10, "drop": 0.10, "malformed": 0.10}
HIGHLEVEL_FAULTS = {k: v for k, v in FAULTS.items() if not k.startswith("429")}
PATIENT = {"timeout_seconds": 0.5, "max_attempts": 16, "backoff_seconds": 0.02,
           "max_backoff_seconds": 0.2}
UNPACED = {"greenhouse": {"requests_per_window": 10_000},
           "keap": {"requests_per_second": 1000, "requests_per_minute": 60_000},
           "highlevel": {"requests_per_window": 10_000}}  # the sandbox's limits are off here


# HighLevel notes and tasks read one call per contact through the same HTTP layer: left out
# here, where every call may be faulted and each HighLevel 429 without Retry-After waits out a
# rate window (they took the test from 21 s to 254 s without reaching anything new)
# Every kind of paging once: the core entities (Greenhouse's Link cursors, Keap's page tokens,
# HighLevel's search cursors) and the new ones that page otherwise (HighLevel's conversation
# search by startAfterDate, the message export's nextCursor, Keap v2 notes' page token); the
# rest of the whole record pages like one of these
PAGING = {"highlevel/conversations", "highlevel/messages", "keap/notes"}
SPECS = [s for s in ALL_SPECS if s.children is None
         and (s in CORE_SPECS or s.key.to_user_string() in PAGING)]


@pytest.fixture
def faulty(sandbox_world: World):
    # HighLevel sends no Retry-After: its 429 carries the window's length (10 s), which the
    # client waits out, each time (five of them on the messages' per-email reads made this test
    # take 100 s): here HighLevel suffers one 429 (its first call) and every other fault
    for source in ("greenhouse", "keap", "highlevel"):
        rates = HIGHLEVEL_FAULTS if source == "highlevel" else FAULTS
        sandbox_world.admin("PUT", "/faults", json={"source": source, "rates": rates,
                                                    "retry_after": 0.1, "slow_seconds": 1.0})
    sandbox_world.admin("POST", "/faults/queue", json={"source": "highlevel",
                                                       "faults": ["429_no_retry_after"]})
    yield sandbox_world
    sandbox_world.admin("POST", "/reset")


def test_faults_lose_and_duplicate_nothing(faulty: World, tmp_path):
    w = faulty
    day = w.day()
    # small pages: enough calls for every kind of fault to show up
    noisy = w.backup(day, SPECS, root=tmp_path / "noisy",
                     greenhouse={**PATIENT, **UNPACED["greenhouse"], "page_size": 25},
                     keap={**PATIENT, **UNPACED["keap"], "page_size": 25},
                     highlevel={**PATIENT, **UNPACED["highlevel"]})
    log = w.admin("GET", "/requests")["requests"]
    injected = defaultdict(int)
    for r in log:
        if r["fault"]:
            injected[r["fault"]] += 1
    assert set(injected) >= {"429", "429_no_retry_after", "slow", "drop", "malformed"}, injected
    assert any(r["fault"] == "429_no_retry_after" for r in log if r["source"] == "highlevel")
    w.admin("POST", "/reset")
    clean = w.backup(day, SPECS, root=tmp_path / "clean", **UNPACED)
    for key, m in clean.items():
        assert noisy[key]["content_fingerprint"] == m["content_fingerprint"], key
        assert noisy[key]["rows"] == m["rows"], key


def test_a_fault_past_the_retry_budget_fails_loudly_and_leaves_no_partition(
        sandbox_world: World, tmp_path):
    w = sandbox_world
    spec = next(s for s in ALL_SPECS if s.key.to_user_string() == "keap/contacts")
    w.admin("POST", "/faults/queue", json={"source": "keap", "faults": ["503"] * 10})
    try:
        with pytest.raises(ApiError, match="still failing after 3 attempts"):
            w.backup(w.day(), specs=[spec], root=tmp_path, keap={"max_attempts": 3,
                                                                  "backoff_seconds": 0.01})
    finally:
        w.admin("POST", "/reset")
    entity_dir = SnapshotStorage(root=str(tmp_path)).entity_dir("keap", "contacts")
    assert not entity_dir.exists() or not any(entity_dir.iterdir())


def _max_in_window(times: list[float], seconds: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - seconds:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_the_vendors_rate_limits_are_never_exceeded(sandbox_world: World, tmp_path):
    """Small pages make many calls; the sandbox enforces the real limits and its request log
    shows no window over them and no 429."""
    w = sandbox_world
    w.admin("PUT", "/ratelimits", json={"enabled": True})
    w.admin("POST", "/reset")
    try:
        wanted = {"greenhouse/candidates", "greenhouse/applications", "keap/contacts",
                  "highlevel/contacts"}
        specs = [s for s in ALL_SPECS if s.key.to_user_string() in wanted]
        # Keap's own pacing (0: the published limits less a margin), which the e2e clients
        # otherwise drop
        w.backup(w.day(), specs=specs, root=tmp_path, greenhouse={"page_size": 5},
                 keap={"page_size": 5, "requests_per_second": 0, "requests_per_minute": 0})
        log = w.admin("GET", "/requests")["requests"]
    finally:
        w.admin("PUT", "/ratelimits", json={"enabled": False})
    by_source = defaultdict(list)
    for r in log:
        by_source[r["source"]].append(r["t"])
    assert len(by_source["greenhouse"]) > 50 and len(by_source["keap"]) > 20
    assert _max_in_window(by_source["greenhouse"], 10.0) <= 50
    assert _max_in_window(by_source["keap"], 1.0) <= 10
    assert _max_in_window(by_source["keap"], 60.0) <= 240
    assert _max_in_window(by_source["highlevel"], 10.0) <= 100
    assert not [r for r in log if r["status"] == 429]

