"""The retention policy on lists of partition days (no files): what is kept and why."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from assets.recovery.retention import (
    Policy,
    _assert_chains_kept,
    _ranges,
    months_back,
    plan_backup,
    plan_derived,
)


def days(start: str, n: int) -> list[str]:
    first = date.fromisoformat(start)
    return [(first + timedelta(days=i)).isoformat() for i in range(n)]


def weekly_fulls(start: str, n: int) -> dict[str, str]:
    """A full every Sunday (and on the first day), incrementals otherwise."""
    out = {}
    for i, d in enumerate(days(start, n)):
        out[d] = "full" if i == 0 or date.fromisoformat(d).weekday() == 6 else "incremental"
    return out


def base_ok(modes: dict[str, str], keep: set[str]) -> None:
    """Every kept incremental's chain reaches a kept full without a gap."""
    for d in keep:
        cur = d
        while modes[cur] == "incremental":
            cur = (date.fromisoformat(cur) - timedelta(days=1)).isoformat()
            assert cur in keep, f"{d} lost its base {cur}"


def test_window_is_extended_back_to_the_full_before_it():
    modes = weekly_fulls("2026-01-01", 200)      # 2026-01-01 .. 2026-07-19
    today = date(2026, 7, 19)
    keep, anchor, monthly = plan_backup(modes, Policy(days=35, months=13), today)
    cutoff = (today - timedelta(days=35)).isoformat()           # 2026-06-14, a Sunday (full)
    assert modes[cutoff] == "full"
    # the full of the cutoff day holds the end of that day, not its start: the chain before
    assert anchor == (date.fromisoformat(cutoff) - timedelta(days=7)).isoformat()
    assert modes[anchor] == "full" and anchor < cutoff
    assert {d for d in modes if d >= anchor} <= keep
    base_ok(modes, keep)
    # one full per month before the window: the first full of each month (June's, 06-07, is
    # the window's anchor, kept already)
    assert anchor == "2026-06-07"
    assert monthly == ["2026-01-01", "2026-02-01", "2026-03-01", "2026-04-05", "2026-05-03"]
    assert all(modes[d] == "full" for d in monthly)
    assert keep == {d for d in modes if d >= anchor} | set(monthly)


def test_months_limit_drops_older_monthly_fulls():
    modes = weekly_fulls("2025-01-01", 500)
    today = date.fromisoformat(max(modes))                      # 2026-05-15
    keep, anchor, monthly = plan_backup(modes, Policy(days=35, months=3), today)
    assert months_back(today, 3) == date(2026, 3, 1)
    # April's first full (04-05) anchors the window (cutoff 04-10); May's is inside it
    assert anchor == "2026-04-05"
    assert monthly == ["2026-03-01"]
    assert min(keep) == monthly[0] and "2026-02-01" not in keep


def test_no_full_before_the_window_keeps_everything():
    modes = {d: "incremental" for d in days("2026-01-01", 60)}
    modes["2026-01-01"] = "full"
    keep, anchor, _ = plan_backup(modes, Policy(days=35), date(2026, 3, 1))
    assert keep == set(modes) and anchor == "2026-01-01"


def test_stopped_backups_keep_their_last_chain():
    modes = weekly_fulls("2025-01-01", 100)
    keep, anchor, _ = plan_backup(modes, Policy(days=35, months=1), date(2026, 6, 1))
    last_full = max(d for d, m in modes.items() if m == "full")
    assert anchor == last_full and max(modes) in keep
    assert keep == {d for d in modes if d >= last_full}


def test_always_full_reference_entities_keep_the_window_and_monthlies():
    modes = {d: "full" for d in days("2026-01-01", 90)}
    today = date(2026, 3, 31)
    keep, anchor, monthly = plan_backup(modes, Policy(days=10, months=13), today)
    assert anchor == "2026-03-20"                               # the day before the cutoff
    assert monthly == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert len(keep) == 12 + 3


def test_guard_refuses_a_keep_set_that_breaks_a_chain():
    modes = {"2026-01-01": "full", "2026-01-02": "incremental", "2026-01-03": "incremental"}
    with pytest.raises(AssertionError, match="without its base 2026-01-02"):
        _assert_chains_kept(modes, {"2026-01-01", "2026-01-03"})


def test_derived_outputs_keep_the_window_and_their_newest():
    ds = days("2026-01-01", 50)
    assert plan_derived(ds, Policy(derived_days=35), date(2026, 2, 19)) == set(ds[14:])
    assert plan_derived(ds[:5], Policy(derived_days=35), date(2026, 12, 1)) == {ds[4]}


def test_policy_rejects_nonsense_and_ranges_read_well():
    with pytest.raises(ValueError, match="days"):
        Policy(days=0)
    assert _ranges(["2026-01-02", "2026-01-03", "2026-01-04", "2026-01-09"]) == \
        "2026-01-02..2026-01-04, 2026-01-09"
