"""The first partition of an install: configured, else the first day backed up, else yesterday;
and every backup asset backfills one day per run."""

from __future__ import annotations

from datetime import date

import pytest

from orchestration.first_day import FIRST_DAY_ENV, first_day


def test_the_configured_first_day_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(FIRST_DAY_ENV, "2024-03-01")
    (tmp_path / "keap" / "contacts" / "snapshot_date=2026-01-04").mkdir(parents=True)
    assert first_day(tmp_path) == "2024-03-01"


def test_a_configured_day_that_is_not_a_date_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(FIRST_DAY_ENV, "03/01/2024")
    with pytest.raises(ValueError, match=r"TALENTVAULT_FIRST_DAY='03/01/2024' is not a date.*"
                                         r"YYYY-MM-DD"):
        first_day(tmp_path)


def test_else_the_earliest_day_backed_up(tmp_path, monkeypatch):
    monkeypatch.delenv(FIRST_DAY_ENV, raising=False)
    for source, entity, day in [("keap", "contacts", "2026-01-07"),
                                ("greenhouse", "candidates", "2026-01-05"),
                                ("greenhouse", "jobs", "2026-01-06")]:
        (tmp_path / source / entity / f"snapshot_date={day}").mkdir(parents=True)
    # not a backup: identity and sync partitions, and an interrupted write's leftovers
    (tmp_path / "identity" / "candidate_profiles" / "snapshot_date=2025-01-01").mkdir(parents=True)
    (tmp_path / "keap" / "tags" / ".staging-snapshot_date=2025-01-01").mkdir(parents=True)
    assert first_day(tmp_path, today=date(2026, 12, 3)) == "2026-01-05"


def test_a_fresh_install_starts_with_yesterday(tmp_path, monkeypatch):
    monkeypatch.delenv(FIRST_DAY_ENV, raising=False)
    assert first_day(tmp_path, today=date(2026, 12, 3)) == "2026-12-02"


def test_backups_backfill_one_day_per_run():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.group_name in ("greenhouse", "keap", "highlevel", "backups") and \
                node.partitions_def is not None:
            assert node.backfill_policy is not None, key
            assert node.backfill_policy.max_partitions_per_run == 1, key
