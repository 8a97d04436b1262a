"""Every backup asset declares its freshness: the RPO, 26 hours unless configured."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from orchestration.storage.backup_state import RPO_VAR


def _policies(defs: dg.Definitions) -> dict[str, dg.FreshnessPolicy | None]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string(): graph.get(k).freshness_policy for k in graph.get_all_asset_keys()
            if graph.get(k).group_name in ("greenhouse", "keap", "highlevel")}


def test_every_backup_asset_declares_the_rpo():
    from orchestration.definitions import defs

    policies = _policies(defs)
    assert len(policies) == 44
    for key, policy in policies.items():
        assert policy is not None, key
        assert policy.fail_window.to_timedelta() == timedelta(hours=26), key


def test_the_rpo_is_configurable(monkeypatch):
    from orchestration import freshness

    monkeypatch.setenv(RPO_VAR, "30")
    assert freshness.backup_freshness_policy().fail_window.to_timedelta() == timedelta(hours=30)
