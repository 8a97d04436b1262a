"""Two days of a deployment, end to end against the sandbox over sockets, with no person and no
demo: each night `daily_backup_schedule`'s own run request for the day that ended launches
`backup_job`, and the automation sensor's ticks (the daemon's evaluation of the assets'
automation conditions against the same real instance, orchestration/in_process.py) take the day
on through identity, the desired state and the changeset to the push, and refresh the catalog.
After each day the sandbox's Keap holds exactly what the mapping implies
(tests/e2e/sync_expected.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import duckdb
import pytest

from assets.sync.mapping import DEFAULT_PATH, Mapping, load_mapping
from orchestration.automation import TRIGGER_TAG, held_by
from orchestration.in_process import Automation
from orchestration.sensors import failed_run_alert_sensor, finished_run_alert_sensor
from sandbox import records
from tests.e2e.conftest import CORE, World, served_world
from tests.e2e.keap_state import field_labels, keap_docs, mismatches, tag_names
from tests.e2e.sync_expected import Expected, expected_contacts
from tests.integration.installs import alert_receiver, tick

PUSH = dg.AssetKey(["sync", "keap_push"])
CATALOG = dg.AssetKey(["backups", "catalog"])


def day_runs(runs: list[dg.ExecuteInProcessResult]) -> list[dg.ExecuteInProcessResult]:
    """The runs of a day's partition (identity, the sync); the catalog's refresh has none."""
    return [r for r in runs if r.dagster_run.tags.get("dagster/partition")]


def catalog_runs(runs: list[dg.ExecuteInProcessResult]) -> list[dg.ExecuteInProcessResult]:
    return [r for r in runs if not r.dagster_run.tags.get("dagster/partition")]


@dataclass
class Night:
    day: str
    nightly: dg.ExecuteInProcessResult
    automated: list[dg.ExecuteInProcessResult]
    expected: Expected
    keap_before: dict[str, dict[str, Any]]
    keap_after: dict[str, dict[str, Any]]
    tags: dict[str, str]
    labels: dict[str, str]
    push: dict[str, Any]
    keap_records_total: int     # backup/records_total of keap/contacts for the day
    keap_contacts_live: int     # contacts in the sandbox's Keap when it was backed up
    catalog_contacts: int       # keap.contacts in the saved catalog.duckdb after the night


def _core(asset: Any) -> bool:
    """Not a backup of the wider candidate record: this tests what runs when, through the
    nightly job, the automation and the push; every backup asset is materialized through Dagster
    in test_dagster_runs.py (the wider record tripled the nights here)."""
    source, *rest = next(iter(asset.keys)).path
    return source not in CORE or rest[0] in CORE[source]


def fast_vendors(defs: dg.Definitions, w: World) -> dg.Definitions:
    """The code location with the vendor clients' pacing raised: the sandbox here has no rate
    limits, and this tests what runs when, not the clients' pacing (test_sync_push_client.py
    does); the backups are the core entities' (`_core`)."""
    return dg.Definitions(
        assets=[a for a in defs.assets if _core(a)], asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules, sensors=defs.sensors, executor=defs.executor,
        resources=w.resources())


@dataclass
class HeldNight:
    """Night 3: a Greenhouse record breaks a blocking check, then is fixed and re-backed up."""

    day: str
    automated_while_broken: list[dg.ExecuteInProcessResult]
    held_by: list[str]
    keap_before: dict[str, dict[str, Any]]
    keap_while_held: dict[str, dict[str, Any]]
    push_partition_while_held: str | None
    rerun: dg.ExecuteInProcessResult
    released: list[dg.ExecuteInProcessResult]
    held_by_after: list[str]
    expected: Expected
    keap_after: dict[str, dict[str, Any]]
    tags: dict[str, str]
    labels: dict[str, str]
    alerts: list[dict]          # what the alert channel received during the night
    alert_errors: list[str]
    person_values: list[str]    # the broken candidate's names and addresses


@dataclass
class Deployment:
    nights: list[Night]
    held: HeldNight


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from orchestration.definitions import defs

    mapping = load_mapping(DEFAULT_PATH)
    with served_world(tmp_path_factory.mktemp("runs_by_itself"), candidates=25, seed=5) as w, \
            dg.DagsterInstance.ephemeral() as instance:
        automation = Automation(fast_vendors(defs, w), instance)
        automation.tick(w.store.now())  # the sensor was already ticking before the first night
        out = []
        for i in range(2):
            if i:
                w.tick(1)
            day, before = w.day().isoformat(), keap_docs(w.store)
            live = w.store.count("keap", "contacts")
            nightly = automation.nightly(day)
            contacts = instance.get_latest_materialization_event(
                dg.AssetKey(["keap", "contacts"])).asset_materialization
            automated = automation.settle(w.store.now())
            push = instance.get_latest_materialization_event(PUSH).asset_materialization
            out.append(Night(day, nightly, automated, expected_contacts(w.store, mapping),
                             before, keap_docs(w.store), tag_names(w.store),
                             field_labels(w.store),
                             {k: v.value for k, v in push.metadata.items()}
                             | {"partition": push.partition},
                             contacts.metadata["backup/records_total"].value, live,
                             _catalog_contacts(w)))
        yield Deployment(out, held_night(w, automation, instance, mapping))


def _catalog_contacts(w: World) -> int:
    con = duckdb.connect(str(w.root / "catalog.duckdb"), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM keap.contacts").fetchone()[0]
    finally:
        con.close()


def _push_partition(instance: dg.DagsterInstance) -> str | None:
    event = instance.get_latest_materialization_event(PUSH)
    return event.asset_materialization.partition if event else None


def held_night(w: World, automation: Automation, instance: dg.DagsterInstance,
               mapping: Mapping) -> HeldNight:
    w.tick(1)
    day = w.day().isoformat()
    # a candidate record of the day that lost its creation time: a blocking check of
    # greenhouse/candidates (required fields) fails in tonight's backup
    doc = next(iter(w.sandbox_docs("greenhouse", "candidates").values()))
    records.save(w.store, "greenhouse", "candidates",
                 {**doc, "created_at": None, "updated_at": f"{day}T23:00:00.000Z"})
    before = keap_docs(w.store)
    sensors = (failed_run_alert_sensor, finished_run_alert_sensor)
    # the run sensors were ticking before tonight (a first tick starts at the present)
    cursors = {s.name: tick(s, instance, None)[1] for s in sensors}
    with alert_receiver() as (url, received), pytest.MonkeyPatch.context() as env:
        env.setenv("TALENTVAULT_ALERT_URLS", url)
        automation.nightly(day)
        broken = automation.settle(w.store.now())
        errors = [e for s in sensors for e in tick(s, instance, cursors[s.name])[0]]
    held, keap_held = held_by(automation.defs, instance, day), keap_docs(w.store)
    pushed_while_held = _push_partition(instance)
    # fixed in Greenhouse, and Greenhouse backed up again for that day (what a person does
    # from the UI: re-run the source's backup job)
    records.save(w.store, "greenhouse", "candidates",
                 {**doc, "updated_at": f"{day}T23:30:00.000Z"})
    rerun = automation.launch(dg.RunRequest(partition_key=day), job_name="greenhouse_backup_job")
    released = automation.settle(w.store.now())
    return HeldNight(day, broken, held, before, keap_held, pushed_while_held, rerun, released,
                     held_by(automation.defs, instance, day), expected_contacts(w.store, mapping),
                     keap_docs(w.store), tag_names(w.store), field_labels(w.store),
                     list(received), errors, _person_values(doc))


def _person_values(doc: dict[str, Any]) -> list[str]:
    values = [doc.get("first_name"), doc.get("last_name")]
    values += [e.get("value") for e in doc.get("email_addresses") or []]
    values += [p.get("value") for p in doc.get("phone_numbers") or []]
    return [v for v in values if isinstance(v, str) and len(v) > 2]


@pytest.fixture(scope="module")
def nights(deployment: Deployment) -> list[Night]:
    return deployment.nights


def test_each_night_the_schedule_backs_up_the_day_that_ended(nights: list[Night]):
    assert nights[0].day < nights[1].day
    for n in nights:
        assert n.nightly.success, n.day
        assert n.nightly.dagster_run.job_name == "backup_job"
        assert n.nightly.dagster_run.tags["dagster/partition"] == n.day


def test_backups_record_the_size_of_the_whole_backup(nights: list[Night]):
    for n in nights:
        assert n.keap_records_total == n.keap_contacts_live, n.day
    # day 2 is an incremental: its rows are the day's changes, the total is the whole backup
    assert nights[1].keap_records_total >= nights[0].keap_records_total


def test_the_automation_takes_the_day_to_the_push_by_itself(nights: list[Night]):
    for n in nights:
        # one run for that day, asked for by the automation sensor (not by a person)
        [run] = day_runs(n.automated)
        assert run.success, n.day
        assert run.dagster_run.tags[TRIGGER_TAG] == "automation"
        assert run.dagster_run.tags["dagster/partition"] == n.day
        keys = {k.to_user_string() for k in run.dagster_run.asset_selection}
        assert {"identity/candidate_profiles", "sync/keap_desired", "sync/keap_changeset",
                "sync/keap_push"} <= keys
        assert n.push["partition"] == n.day
        assert n.push["failed"] == 0


def test_the_automation_refreshes_the_catalog_after_each_backup_day(nights: list[Night]):
    for n in nights:
        # one run of the catalog alone (unpartitioned: it covers every day), without the
        # verify check, which runs on its own schedule
        [run] = catalog_runs(n.automated)
        assert run.success, n.day
        assert run.dagster_run.tags[TRIGGER_TAG] == "automation"
        assert {e.asset_key for e in run.get_asset_materialization_events()} == {CATALOG}
        assert run.get_asset_check_evaluations() == []
        # the saved catalog reads the night's backup
        assert n.catalog_contacts == n.keap_contacts_live, n.day


def test_after_each_day_keap_holds_exactly_what_the_mapping_implies(nights: list[Night]):
    for n in nights:
        wrong, created = mismatches(n.expected, n.keap_before, n.keap_after, n.tags, n.labels)
        assert wrong == [], (n.day, wrong[:5])
        assert n.push["succeeded"] >= created
    assert nights[0].push["succeeded"] > 0


def test_a_failed_blocking_check_holds_the_push_until_the_data_is_fixed(deployment: Deployment):
    h = deployment.held
    # the night's backup landed, its check failed: the automation launched nothing for the day
    # (the catalog, over every day, is refreshed: it holds views, not the held data's fate)
    assert day_runs(h.automated_while_broken) == []
    assert [r.success for r in catalog_runs(h.automated_while_broken)] == [True]
    assert h.held_by == ["greenhouse/candidates:required_fields_present"]
    assert h.push_partition_while_held == deployment.nights[-1].day  # not this day
    assert h.keap_while_held == h.keap_before  # not one write
    # fixed and re-backed up: the same automation releases the day, and Keap is right again
    assert h.rerun.success and h.held_by_after == []
    [run] = day_runs(h.released)
    assert run.success and run.dagster_run.tags["dagster/partition"] == h.day
    assert PUSH in run.dagster_run.asset_selection
    wrong, _ = mismatches(h.expected, h.keap_before, h.keap_after, h.tags, h.labels)
    assert wrong == [], wrong[:5]


def test_the_held_push_reaches_the_alert_channel_with_ids_not_people(deployment: Deployment):
    h = deployment.held
    assert h.alert_errors == []
    held = [m for m in h.alerts if "Keap push held" in m["title"]]
    assert len(held) == 1, [m["title"] for m in h.alerts]
    body = held[0]["message"]
    assert h.day in held[0]["title"]
    assert "greenhouse/candidates required_fields_present failed" in body
    assert "/runs/" in body  # a link to the run that found it
    assert h.person_values, "the broken record has names or addresses to look for"
    for m in h.alerts:
        text = f"{m['title']} {m['message']}".lower()
        assert not [v for v in h.person_values if v.lower() in text]
