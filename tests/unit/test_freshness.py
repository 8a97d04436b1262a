"""Freshness per source from the run history: a source is as fresh as its stalest entity, and
one never backed up is unknown; the RPO is configurable and checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from orchestration.freshness import RPO_ENV, backup_freshness, rpo


def test_a_source_is_as_fresh_as_its_stalest_entity(monkeypatch):
    from assets.greenhouse.extract import SPECS as GREENHOUSE
    from assets.keap.extract import SPECS as KEAP

    monkeypatch.setenv(RPO_ENV, "2")
    with dg.DagsterInstance.ephemeral() as instance:
        for spec in (*GREENHOUSE, *KEAP[1:]):  # keap/contacts never backed up
            instance.report_runless_asset_event(dg.AssetMaterialization(
                spec.key, partition="2026-01-10",
                metadata={"window_to": "2026-01-11T00:00:00.000Z"}))
        states = {f.source: f for f in backup_freshness(instance)}
        later = {f.source: f for f in backup_freshness(
            instance, now=datetime.now(UTC) + timedelta(hours=3))}
    assert states["greenhouse"].state == "PASS"
    assert states["greenhouse"].last_whole_day == "2026-01-10"
    assert states["greenhouse"].rpo_hours == 2
    assert later["greenhouse"].state == "FAIL" and later["greenhouse"].age_hours >= 3
    assert states["keap"].state == "UNKNOWN"
    assert states["keap"].never_backed_up == [KEAP[0].key.to_user_string()]
    assert states["highlevel"].state == "UNKNOWN" and states["highlevel"].last_backup_at is None


def test_the_rpo_is_26_hours_unless_configured(monkeypatch):
    monkeypatch.delenv(RPO_ENV, raising=False)
    assert rpo() == timedelta(hours=26)
    monkeypatch.setenv(RPO_ENV, "soon")
    with pytest.raises(ValueError, match="TALENTVAULT_RPO_HOURS='soon' is not a number of hours"):
        rpo()
