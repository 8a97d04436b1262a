"""The Keap sync over ten (in CI: three) simulated days, end to end against the sandbox over
sockets.

Each day: `sandbox tick` (a day of recruiting life, including humans editing Keap), then one real
Dagster run of the day's backups, identity, desired state, changeset and push. After each push
the sandbox's Keap is compared with an independent model of what the mapping implies
(tests/e2e/sync_expected.py: plain Python over the sandbox's own ATS records):
  - one contact per person (never a new duplicate for an email),
  - the fields the ATS owns hold the model's values, the managed tags are exactly the model's,
  - what humans put in Keap survives: their emails, phones, custom field values and tags,
  - a re-run with no ATS change makes zero write calls (the sandbox request log).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import httpx
import pytest

from assets.greenhouse.extract import greenhouse_assets
from assets.identity.assets import identity_profiles
from assets.keap.extract import keap_assets
from assets.sync.changeset import keap_changeset
from assets.sync.desired import keap_desired
from assets.sync.mapping import DEFAULT_PATH, load_mapping
from assets.sync.mapping.reads import ENTITIES_READ
from assets.sync.push import keap_push
from tests.e2e.conftest import CORE, World, served_world
from tests.e2e.keap_state import emails, field_labels, keap_docs, mismatches, tag_names
from tests.e2e.sync_expected import Expected, expected_contacts

DAYS = 10
# custom fields the mapping writes (every other one is a human's and must survive)
OURS = set(load_mapping(DEFAULT_PATH).custom_fields())
SYNC = [keap_desired, keap_changeset, keap_push]
# the backups the sync reads (identity and desired state), not the whole candidate record
READ = {*ENTITIES_READ, *CORE["keap"]}
ASSETS = [*(a for a in (*greenhouse_assets, *keap_assets) if a.key.path[-1] in READ),
          identity_profiles, *SYNC]


@dataclass
class Day:
    day: str
    expected: Expected
    keap_before: dict[str, dict[str, Any]]
    keap_after: dict[str, dict[str, Any]]
    tag_names: dict[str, str]
    field_labels: dict[str, str]
    push: dict[str, Any]


@dataclass
class Run:
    world: World
    days: list[Day] = field(default_factory=list)
    rerun_writes: list[dict[str, Any]] = field(default_factory=list)


def _writes(w: World, since: int) -> list[dict[str, Any]]:
    r = httpx.get(f"{w.base_url}/_sandbox/requests", params={"source": "keap", "since": since},
                  timeout=60)
    return [e for e in r.json()["requests"] if e["method"] != "GET"]


def _seq(w: World) -> int:
    return httpx.get(f"{w.base_url}/_sandbox/requests", params={"since": 10**12},
                     timeout=60).json()["seq"]


# CI runs three days; the ten-day sequence of the issue runs with the slow tests
# (`uv run pytest -m slow tests/e2e/test_sync_days.py`, about 5 minutes)
@pytest.fixture(scope="module", params=[
    pytest.param(3, id="3-days"), pytest.param(DAYS, id="10-days", marks=pytest.mark.slow)])
def run(request: pytest.FixtureRequest,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    days = request.param
    with served_world(tmp_path_factory.mktemp("sync_days"), candidates=120, seed=11) as w:
        yield _days(w, days)


def _days(w: World, days: int) -> Run:
    store = w.store
    mapping = load_mapping(DEFAULT_PATH)
    instance = dg.DagsterInstance.ephemeral()
    out = Run(w)
    for i in range(days):
        if i:
            w.tick(1)
        day = w.day().isoformat()
        before = keap_docs(store)
        result = dg.materialize(ASSETS, partition_key=day, resources=w.resources(),
                                instance=instance, raise_on_error=False)
        assert result.success, f"day {day}: the run failed"
        push = instance.get_latest_materialization_event(dg.AssetKey(["sync", "keap_push"]))
        out.days.append(Day(
            day, expected_contacts(store, mapping), before, keap_docs(store),
            tag_names(store), field_labels(store),
            {k: v.value for k, v in push.asset_materialization.metadata.items()}))
    # the same day again, nothing changed in the ATS: the sync must not write
    seq = _seq(w)
    again = dg.materialize(SYNC, partition_key=out.days[-1].day,
                           resources=w.resources(), instance=instance)
    assert again.success
    out.rerun_writes = _writes(w, seq)
    return out


def test_every_day_keap_holds_what_the_mapping_implies(run: Run):
    assert len(run.days) in (3, DAYS)
    for d in run.days:
        wrong, created = mismatches(d.expected, d.keap_before, d.keap_after, d.tag_names,
                                    d.field_labels)
        assert wrong == [], (d.day, wrong[:5])
        assert d.push["succeeded"] >= created or created == 0


def test_what_humans_put_in_keap_survives(run: Run):
    for d in run.days:
        for cid, old in d.keap_before.items():
            new = d.keap_after.get(cid)
            assert new is not None, (d.day, cid, "a contact the sync must never delete")
            assert emails(old) <= emails(new), (d.day, cid)
            old_phones = {p.get("number") for p in old.get("phone_numbers") or []}
            assert old_phones <= {p.get("number") for p in new.get("phone_numbers") or []}, cid
            human_tags = {t for t in old.get("tag_ids") or []
                          if d.tag_names.get(t) not in d.expected.managed_tags}
            assert human_tags <= set(new.get("tag_ids") or []), (d.day, cid)
            kept = {str(f["id"]): f.get("content") for f in old.get("custom_fields") or []
                    if d.field_labels.get(str(f["id"])) not in OURS}
            now = {str(f["id"]): f.get("content") for f in new.get("custom_fields") or []}
            assert all(now.get(k) == v for k, v in kept.items()), (d.day, cid)


def test_the_sync_did_real_work_every_day(run: Run):
    first = run.days[0].push
    assert first["succeeded"] > 0 and first["failed"] == 0
    # later days carry the day's ATS changes only: far fewer writes than the first sync
    for d in run.days[1:]:
        assert d.push["failed"] == 0, d.day
        assert d.push["succeeded"] < first["succeeded"], d.day
    assert sum(d.push["succeeded"] for d in run.days[1:]) > 0


def test_a_rerun_without_ats_changes_writes_nothing(run: Run):
    assert run.rerun_writes == []
