"""An event stream, not a daily state (issue 17): a candidate is scheduled for an interview,
rejected and re-applies to another job within one day. The next day's sync records the three
events once, in the order they happened, with their source records (`sync.events`); Keap ends
with the tags the mapping implies for that sequence ("Interview Scheduled" is added on the
event, so the interview counts although the application it belonged to was rejected the same
day; the state tags follow the new application); the ledger links the tag write to the event
that caused it (`sync.ledger_events`); the same day again records nothing twice."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from assets.catalog.views import open_catalog
from assets.identity.build import build_identity
from assets.identity.config import IdentityConfig
from assets.sync.changeset import build_changeset
from assets.sync.desired import write_desired
from assets.sync.mapping import load_mapping
from assets.sync.push import run_push
from sandbox.world import ats, life_ats
from sandbox.world.clock import iso
from sandbox.world.day import OPEN_JOB, Day
from sandbox.world.people import Person
from tests.e2e.conftest import SYNC_SPECS, World, served_world
from tests.e2e.keap_state import by_email, field_labels, keap_docs, mismatches, tag_names
from tests.e2e.sync_expected import expected_contacts


def sync_day(w: World, run: str) -> str:
    day = w.day().isoformat()
    w.backup(date.fromisoformat(day), SYNC_SPECS, run_id=f"backup-{run}")
    build_identity(w.root, day, IdentityConfig(), f"identity-{run}").close()
    write_desired(w.root, day, load_mapping(), f"desired-{run}")
    build_changeset(w.root, day, f"changeset-{run}").close()
    client = w.clients()["keap"]
    try:
        run_push(client, w.root, day, f"push-{run}")
    finally:
        client.close()
    return day


def busy_day(w: World) -> tuple[dict, dict, dict]:
    """Within the next day: 10:00 an interview is scheduled for an application in process,
    12:00 the application is rejected, 15:00 the candidate applies to another open job. The
    world's clock then stands at the next midnight. Returns (candidate, first app, new app)."""
    store = w.store
    midnight = store.now()
    ctx = Day(store, random.Random(17), 100)
    apps = [r.doc for r in store.select(
        "greenhouse", "applications", "json_extract(doc, '$.status') = 'in_process' AND "
        "json_extract(doc, '$.stage_id') IS NOT NULL")]
    synced = set(by_email(keap_docs(store)))
    interviewed = {i["application_id"] for i in store.iter_docs("greenhouse", "interviews")
                   if i["status"] not in ("to_be_scheduled", "skipped")}
    for app in apps:
        cand = store.get("greenhouse", "candidates", app["candidate_id"])
        mails = {e["value"].strip().lower() for e in cand.get("email_addresses") or []}
        mine = [a["id"] for a in store.iter_docs("greenhouse", "applications")
                if a["candidate_id"] == cand["id"]]
        if mails & synced and mine == [app["id"]] and app["id"] not in interviewed:
            break
    else:
        pytest.fail("no synced candidate with one application in process, never interviewed")
    job = next(r.doc for r in store.select("greenhouse", "jobs", OPEN_JOB)
               if r.doc["id"] != app["job_id"])
    with store.transaction():
        ctx.begin(midnight + timedelta(hours=10), midnight + timedelta(hours=11))
        interview = ats.interview_doc(ctx.rng, ctx.gh_id("interviews"), app, app["stage_id"],
                                      ctx.at, ctx.at + timedelta(days=2), ctx.users()[0])
        interview["updated_at"] = iso(ctx.stamp())
        ctx.save("greenhouse", "interviews", interview)
        ctx.begin(midnight + timedelta(hours=12), midnight + timedelta(hours=13))
        life_ats._reject(ctx, app, ats.WE_REJECT)
        ctx.begin(midnight + timedelta(hours=15), midnight + timedelta(hours=16))
        person = Person(index=-1, first=cand["first_name"] or "", last=cand["last_name"] or "",
                        ascii_first="x", ascii_last="y", email=None, email_kind="none",
                        work_email=None)
        assert life_ats._apply(ctx, cand, person, job)
        store.set_now(midnight + timedelta(days=1))
    new = max((a for a in store.iter_docs("greenhouse", "applications")
               if a["candidate_id"] == cand["id"]), key=lambda a: a["id"])
    return cand, app, new


def test_three_events_in_one_day_fire_once_in_order_and_reach_keap(tmp_path: Path) -> None:
    mapping = load_mapping()
    assert mapping.on_event["interview_scheduled"] == ("Interview Scheduled",)
    with served_world(tmp_path, candidates=120, seed=31) as w:
        sync_day(w, "1")
        cand, first, new = busy_day(w)
        before = keap_docs(w.store)
        day = sync_day(w, "2")
        con = open_catalog(w.root)
        rows = con.execute("""
            SELECT event, application_id, source_entity, occurred_at FROM sync.events
            WHERE candidate_id = ? AND first_seen = ?::DATE""", [cand["id"], day]).fetchall()
        assert [(e, a, s) for e, a, s, _ in rows] == [
            ("interview_scheduled", first["id"], "interviews"),
            ("rejected", first["id"], "rejection_details"),
            ("new_application", new["id"], "applications")]
        assert [t.hour for *_, t in rows] == [10, 12, 15]
        # Keap holds what the mapping implies for the sequence (independent model)
        expected = expected_contacts(w.store, mapping)
        after = keap_docs(w.store)
        wrong, _ = mismatches(expected, before, after, tag_names(w.store),
                              field_labels(w.store))
        assert wrong == []
        profiles = _profiles(w, day, cand)
        [tags] = [c.tags for c in expected.contacts.values() if c.profile_id in profiles]
        assert {"Interview Scheduled", "Active Applicant", "Candidate"} <= tags
        assert not tags & {"Rejected", "Past Applicant", "Not a Fit"}
        # the tag write names the event that caused it
        linked = con.execute("""
            SELECT DISTINCT e.event, e.source_id FROM sync.ledger_events e
            WHERE e.tag = 'Interview Scheduled' AND e.changeset_date = ?::DATE
              AND e.status = 'succeeded' AND e.application_id = ?""", [day, first["id"]]
                             ).fetchall()
        assert linked == [("interview_scheduled", _interview_id(w, first))]
        con.close()
        # the same day again: no event is recorded twice
        sync_day(w, "2b")
        con = open_catalog(w.root)
        n, distinct = con.execute("SELECT count(*), count(DISTINCT event_id) FROM sync.events"
                                  ).fetchone()
        assert n == distinct
        assert con.execute("SELECT count(*) FROM sync.events WHERE candidate_id = ? AND "
                           "first_seen = ?::DATE", [cand["id"], day]).fetchone()[0] == 3


def _profiles(w: World, day: str, cand: dict) -> set[int]:
    con = open_catalog(w.root)
    try:
        return {r[0] for r in con.execute(
            "SELECT DISTINCT profile_id FROM sync.events WHERE candidate_id = ? AND "
            "first_seen = ?::DATE", [cand["id"], day]).fetchall()}
    finally:
        con.close()


def _interview_id(w: World, app: dict) -> int:
    return max(int(i["id"]) for i in w.store.iter_docs("greenhouse", "interviews")
               if i["application_id"] == app["id"])
