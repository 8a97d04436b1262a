"""Crash safety of restore apply: the apply runs in a child process that is SIGKILLed mid-way,
then the same plan is applied again in-process. The live system ends equal to the backup as of
T (the drill's independent oracle), no contact exists twice (contacts per e-mail as in the
backup), and every planned write is in the restore ledger exactly once as succeeded. A write
the killed run had sent without recording the answer has a `started` row; the re-run finishes
it once: a create is looked up and adopted instead of made twice, a write whose effect the
fresh diff shows is recorded as succeeded with the note "confirmed".

How the child dies: `external` — the test SIGKILLs it once the ledger holds 8 succeeded writes
(whatever is in flight is lost); `lost_create` / `lost_update` — it SIGKILLs itself right after
the vendor answered the Nth create / update, before the outcome reached the ledger (the worst
moment, made deterministic); `started_tag` — it SIGKILLs itself in Keap's tag phase, right after
the `started` rows of the Nth tag batch were fsynced, before that batch is sent (the batch
before it was sent and recorded). The HighLevel `lost_create` case recreates contacts with
neither email nor phone, which HighLevel's duplicate rule cannot find again: the re-run adopts
the contact the lost create made by name and time added instead of creating it twice. The
`lost_notes_create` case dies after Keap made the Nth note of a recreated contact (notes and
tasks are written after every contact write): the re-run finds that note on the contact's new
id by its title and text and adopts it. After every case the notes and tasks equal the
backup's (on the contacts' new ids, none twice).

Each case restores every contact, except `keap-lost_create-ids`: a restore limited to the
contacts it deleted (`--ids`), which reads only those records live, so the re-run cannot find
the contact the lost create made in its live read and must look it up by e-mail through the API.
The Keap cases include contacts backed up with whitespace around their address (Keap stores it
trimmed): the re-run and a second preview must still find nothing left to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from assets.catalog.views import open_catalog
from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from assets.recovery.restore import Selection, preview
from assets.recovery.restore.apply import apply as apply_plan
from assets.recovery.restore.ledger import ledger_dir, ledger_relation
from assets.recovery.restore.plan import plan_dir
from assets.recovery.restore.runner import write_id
from orchestration.resources import HighLevelResource, KeapResource
from orchestration.times import iso
from tests.e2e.conftest import World, backed_up_docs, served_world
from tests.e2e.test_restore_drill import (
    CHANGE_KEYS,
    assert_highlevel_matches,
    assert_keap_matches,
)
from tests.e2e.test_restore_notes_tasks import assert_children_match

REPO = Path(__file__).resolve().parents[2]
MODES = ["create-missing", "update-existing", "delete-new"]
# the sandbox runs without rate limits: pace the clients faster than the vendors' published
# limits so the test stays short (the child uses the same)
FAST = {"keap": {"requests_per_second": 60, "requests_per_minute": 3000},
        "highlevel": {"requests_per_window": 600}}
# the child: imports (slow: ~5 s), then reads the plan id from stdin and applies it; in mode
# `lost_<action>` it dies (SIGKILL, no cleanup) when the vendor has answered the Nth write of
# that action (create, update; `lost_notes_create`: of a note), before the outcome is written
# to the ledger
CHILD = """
import json, os, signal, sys
from pathlib import Path
from assets.recovery.restore import ledger as restore_ledger
from assets.recovery.restore.apply import apply
from orchestration.resources import HighLevelResource, KeapResource

root, mode, nth, run_id, source = sys.argv[1:3] + [int(sys.argv[3])] + sys.argv[4:6]
resource = {"keap": KeapResource, "highlevel": HighLevelResource}[source]
client = resource(**json.loads(sys.argv[6])).open()
if mode.startswith("lost_"):
    record, seen = restore_ledger.Ledger.record, []
    entity, _, action = mode.removeprefix("lost_").rpartition("_")
    def dying_record(self, **row):
        if (row["action"] == action and entity in ("", row["entity"])
                and row["status"] == "succeeded"):
            seen.append(row["write_id"])
            if len(seen) == nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return record(self, **row)
    restore_ledger.Ledger.record = dying_record
if mode == "started_tag":
    started, batches = restore_ledger.Ledger.record_started, []
    def dying_started(self, writes):
        started(self, writes)
        if any(w["action"] in ("tag_add", "tag_remove") for w in writes):
            batches.append(len(writes))
            if len(batches) == nth:
                os.kill(os.getpid(), signal.SIGKILL)
    restore_ledger.Ledger.record_started = dying_started
plan_id = sys.stdin.readline().strip()
apply(Path(root), plan_id, run_id=run_id, concurrency=2, client=client)
print("finished")
"""


def wal_rows(root: Path) -> list[dict[str, Any]]:
    rows = []
    for p in (ledger_dir(root) / "_wal").glob("*.jsonl"):
        rows += [json.loads(line) for line in p.read_text().splitlines() if line.endswith("}")]
    return rows


def start_child(w: World, source: str, mode: str, kill_after: int, run_id: str
                ) -> subprocess.Popen:
    """The apply's child process, started early so that its imports overlap the preview."""
    return subprocess.Popen([sys.executable, "-c", CHILD, str(w.root), mode, str(kill_after),
                             run_id, source, json.dumps(FAST[source])], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def apply_until_killed(w: World, proc: subprocess.Popen, plan_id: str, mode: str,
                       kill_after: int, run_id: str) -> list[dict]:
    """Let the child apply the plan and SIGKILL it mid-way; returns the ledger rows it left."""
    assert proc.stdin is not None
    proc.stdin.write(plan_id + "\n")
    proc.stdin.flush()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if mode == "external" and sum(
                    r["status"] == "succeeded" for r in wal_rows(w.root)) >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
            if proc.poll() is not None:
                break
            time.sleep(0.005)
        else:
            raise AssertionError("the apply wrote too few ledger rows in 60 s")
    finally:
        proc.wait(timeout=30)
    out, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, (out, err[-3000:])
    left = wal_rows(w.root)
    assert left and not (ledger_dir(w.root) / f"run_id={run_id}").exists()  # not compacted
    return left


# HighLevel contacts with neither email nor phone (names only: nothing personal), made before
# the backup; the `lost_create` case deletes them
NAME_ONLY = [{"firstName": "Nomail", "lastName": f"Restore{i}", "companyName": "Crash Test Co"}
             for i in range(3)] + [{"firstName": "Nomail"}]


def padded(doc: dict[str, Any]) -> bool:
    """A Keap contact backed up with whitespace around an address (Keap would trim it)."""
    return any(e.get("email", "") != e.get("email", "").strip()
               for e in doc.get("email_addresses") or [])


def damage(w: World, source: str, mode: str, scope: str = "all",
           backed_up: frozenset[str] = frozenset()) -> list[str]:
    """Keap: 30 contacts deleted, 10 edited badly, tags stripped (scope `ids`: 8 contacts
    deleted, 2 of them with a padded address, all still under their backed-up id; returns
    their ids). HighLevel: contacts with
    opportunities deleted, a few edited (`lost_create`: the contacts without email/phone
    deleted)."""
    c = w.clients(**FAST)
    try:
        keap, hl = c["keap"], c["highlevel"]
        if source == "keap" and scope == "ids":
            docs = sorted(((i, d) for i, d in w.sandbox_docs("keap", "contacts").items()
                           if i in backed_up), key=lambda kv: -int(kv[0]))
            chosen = ([i for i, d in docs if padded(d)][:2]
                      + [i for i, d in docs if d.get("email_addresses") and not padded(d)][:6])
            assert len(chosen) == 8
            for cid in chosen:
                keap.delete_contact(cid)
            return chosen
        if source == "highlevel" and mode == "lost_create":
            for cid, d in w.sandbox_docs("highlevel", "contacts").items():
                if not (d.get("email") or d.get("phone")):
                    hl.delete_contact(cid)
            return []
        if source == "highlevel":
            opps = w.sandbox_docs("highlevel", "opportunities")
            with_opp = sorted({o["contactId"] for o in opps.values()})
            for cid in with_opp[:6]:
                hl.delete_contact(cid)
            for cid in with_opp[6:10]:
                hl.update_contact(cid, {"companyName": "Wrong Co"})
            return []
        # one contact backed up with a padded address among the deleted: it comes back trimmed
        docs = w.sandbox_docs("keap", "contacts")
        ids = sorted(docs, key=int)
        pad = [i for i in ids if padded(docs[i])][:1]
        ids = pad + [i for i in ids if i not in pad]
        for cid in ids[:30]:
            keap.delete_contact(cid)
        for cid in ids[30:40]:
            keap.update_contact(cid, {"given_name": "Import", "job_title": "??"})
        docs = w.sandbox_docs("keap", "contacts")
        for cid, d in [(i, d) for i, d in docs.items() if d.get("tag_ids")][:3]:
            keap.remove_tags(d["tag_ids"][0], [cid])
        return ids[:30]
    finally:
        for client in c.values():
            client.close()


# (source, how the apply dies, after how many succeeded writes / answered creates, selection:
# every contact, or only the damaged ones by id)
# (the world has few padded Keap addresses: the `ids` case, first, takes 2, the others 1 each)
CASES = [("keap", "lost_create", 3, "ids"), ("keap", "external", 8, "all"),
         ("keap", "lost_create", 5, "all"), ("keap", "started_tag", 2, "all"),
         ("keap", "lost_notes_create", 3, "all"),
         ("highlevel", "lost_update", 2, "all"), ("highlevel", "lost_create", 2, "all")]


def case_name(source: str, mode: str, scope: str) -> str:
    return f"{source}-{mode}" + ("-ids" if scope == "ids" else "")


@pytest.fixture(scope="module")
def crash_world(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[World, dict[str, subprocess.Popen]]]:
    """A small world, Keap and HighLevel backed up once (Greenhouse is not needed here), and
    every case's child process, started first: their imports (~5 s) overlap the backup."""
    with served_world(tmp_path_factory.mktemp("crash"), candidates=150, seed=7) as w:
        procs = {case_name(source, mode, scope): start_child(
                     w, source, mode, n, f"crash-{case_name(source, mode, scope)}")
                 for source, mode, n, scope in CASES}
        try:
            day = w.day()        # before the writes below move the sandbox clock past midnight
            hl = client("highlevel")
            try:
                for body in NAME_ONLY:
                    hl.create_contact(body)
            finally:
                hl.close()
            w.admin("POST", "/clock", json={"advance_seconds": 1})  # T comes after them
            w.backup(day, specs=[*KEAP, *HIGHLEVEL])
            yield w, procs
        finally:
            for proc in procs.values():
                if proc.poll() is None:      # a case that failed before its child was used
                    proc.kill()
                proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def as_of(crash_world) -> str:
    w, _ = crash_world
    t = iso(w.store.now() - timedelta(milliseconds=1))
    w.admin("POST", "/clock", json={"advance_seconds": 600})
    return t


def client(source: str) -> Any:
    resource = {"keap": KeapResource, "highlevel": HighLevelResource}[source]
    return resource(**FAST[source]).open()


def contacts_per_email(docs: Any, source: str) -> Counter:
    """Contacts per primary address (trimmed: Keap trims an address on write)."""
    if source == "keap":
        keys = [(d.get("email_addresses") or [{}])[0].get("email", "").strip().lower()
                for d in docs]
    else:
        keys = [(d.get("email") or "").strip().lower() for d in docs]
    return Counter(k for k in keys if k)


def ledger_of(root: Path, plan_id: str) -> list[tuple]:
    """(write_id, status, run_id, error) of every ledger row of the plan."""
    con = open_catalog(root)
    try:
        ledger_relation(con, root)
        return con.execute("SELECT write_id, status, run_id, error FROM restore_ledger "
                           "WHERE plan_id = ? ORDER BY \"at\"", [plan_id]).fetchall()
    finally:
        con.close()


def planned_writes(root: Path, plan_id: str, entities: tuple[str, ...] = ()) -> set[str]:
    """The write ids the plan's changes become (restore/keap.py / highlevel.py /
    children_apply.py): one per create, delete and tag change, one per updated record, two per
    `replace` (only of `entities` when given)."""
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT change_id, action, backup_id, live_id, entity "
                           "FROM read_parquet(?)",
                           [str(plan_dir(root, plan_id) / "changes.parquet")]).fetchall()
    finally:
        con.close()
    out, updates = set(), defaultdict(list)
    for change_id, action, backup_id, live_id, entity in rows:
        if entities and entity not in entities:
            continue
        if action == "update":
            updates[(entity, backup_id, live_id)].append(change_id)
        elif action == "replace":
            out |= {write_id(change_id, "delete"), write_id(change_id, "create")}
        else:
            out.add(change_id)
    return out | {write_id("update", *sorted(ids)) for ids in updates.values()}


def names_without_keys(docs: Any) -> Counter:
    """HighLevel contacts with neither email nor phone, counted per (first, last) name."""
    return Counter(((d.get("firstName") or "").lower(), (d.get("lastName") or "").lower())
                   for d in docs if not (d.get("email") or d.get("phone")))


def plan_rows(root: Path, plan_id: str) -> list[tuple]:
    """(change_id, action, backup_id, live_id, tag) of the plan's changes of contacts."""
    con = duckdb.connect()
    try:
        return con.execute("SELECT change_id, action, backup_id, live_id, tag "
                           "FROM read_parquet(?) WHERE entity = 'contacts'",
                           [str(plan_dir(root, plan_id) / "changes.parquet")]).fetchall()
    finally:
        con.close()


def tag_phase_killed(root: Path, plan_id: str, killed: list[dict], in_flight: set[str]
                     ) -> None:
    """The precondition of `started_tag`: every contact create and update of the plan had
    succeeded (phases run in order, each waits for its writes; notes and tasks come after the
    tags), at least one tag write had succeeded (the first batch) and the writes left in
    flight are all tag writes."""
    done = {r["write_id"] for r in killed if r["status"] == "succeeded"}
    changes = plan_rows(root, plan_id)
    assert any(action == "create" for _, action, *_ in changes)
    tag_changes = {c for c, action, *_ in changes if action.startswith("tag_")}
    assert planned_writes(root, plan_id, ("contacts",)) - tag_changes <= done
    actions = {r["write_id"]: r["action"] for r in killed}
    assert in_flight and {actions[i] for i in in_flight} <= {"tag_add", "tag_remove"}
    assert any(actions[i] == "tag_add" for i in done)


def tags_restored_once(w: World, plan_id: str, as_of: str, rows: list[tuple]) -> None:
    """Every contact the plan restored (recreated, or its tags changed) has exactly the tags it
    had at T, and each of the plan's tag writes (the tags of every recreated contact, and each
    tag change of a kept contact) succeeded exactly once, under one write id."""
    backup = backed_up_docs(w.root, "keap", "contacts", as_of)
    live = w.sandbox_docs("keap", "contacts")
    con = open_catalog(w.root)
    try:
        ledger_relation(con, w.root)
        new_ids = dict(con.execute(
            "SELECT backup_id, live_id FROM restore_ledger WHERE plan_id = ? AND action = "
            "'create' AND status = 'succeeded' AND entity = 'contacts'", [plan_id]).fetchall())
        tag_rows = con.execute(
            "SELECT write_id, action, live_id, tag FROM restore_ledger WHERE plan_id = ? "
            "AND action IN ('tag_add', 'tag_remove') AND status = 'succeeded'",
            [plan_id]).fetchall()
    finally:
        con.close()
    changes = plan_rows(w.root, plan_id)
    created = {b for _, action, b, _, _ in changes if action == "create"}
    assert created <= set(new_ids)
    twins = {b: new_ids[b] for b in created} | {
        b: live_id for _, action, b, live_id, _ in changes if action.startswith("tag_")}
    for backup_id, live_id in twins.items():
        assert sorted(map(str, live[live_id].get("tag_ids") or [])) == sorted(
            map(str, backup[backup_id].get("tag_ids") or [])), (backup_id, live_id)
    expected = {write_id("create-tag", b, str(t)) for b in created
                for t in backup[b].get("tag_ids") or []}
    expected |= {c for c, action, *_ in changes if action.startswith("tag_")}
    assert expected and expected <= {wid for wid, status, _, _ in rows if status == "succeeded"}
    per_tag = Counter((action, live_id, tag) for _, action, live_id, tag in tag_rows)
    assert set(per_tag.values()) == {1}, [k for k, n in per_tag.items() if n > 1]
    assert {wid for wid, *_ in tag_rows} == expected


@pytest.mark.parametrize(("source", "mode", "kill_after", "scope"), CASES,
                         ids=[case_name(s, m, sc) for s, m, _, sc in CASES])
def test_sigkill_mid_apply_then_rerun(crash_world, as_of: str, source: str, mode: str,
                                      kill_after: int, scope: str) -> None:
    (w, children), api = crash_world, client(source)
    name = case_name(source, mode, scope)
    crash, rerun = f"crash-{name}", f"rerun-{name}"
    child = children[name]
    damaged = damage(w, source, mode, scope,
                     frozenset(backed_up_docs(w.root, source, "contacts", as_of)))
    selection = Selection(ids=damaged) if scope == "ids" else None
    plan = preview(w.root, source, as_of, selection, modes=MODES, client=api)
    least = (len(NAME_ONLY) if (source, mode) == ("highlevel", "lost_create")
             else 8 if scope == "ids" else {"keap": 30, "highlevel": 6}[source])
    assert plan.counts["create"] >= least
    if scope == "ids":            # the live read held only the selected (deleted) contacts
        assert plan.counts["live_read"] == 0 and plan.counts["create"] == len(damaged)

    killed = apply_until_killed(w, child, plan.plan_id, mode, kill_after, crash)
    done_before = {r["write_id"] for r in killed if r["status"] == "succeeded"}
    in_flight = {r["write_id"] for r in killed if r["status"] == "started"} - {
        r["write_id"] for r in killed if r["status"] != "started"}
    # the kill landed mid-way: some writes recorded or sent (with concurrent writers, not
    # necessarily all of those answered before the kill); the rest is checked after the re-run
    assert done_before or in_flight
    if mode.startswith("lost_"):  # the write the vendor made but the ledger never heard of
        assert in_flight
    if mode == "started_tag":     # the kill landed inside the tag phase (see tag_phase_killed)
        tag_phase_killed(w.root, plan.plan_id, killed, in_flight)

    counts = apply_plan(w.root, plan.plan_id, run_id=rerun, client=api)
    assert counts["failed_retryable"] == counts["failed_permanent"] == 0, counts
    # the killed run's WAL was compacted by the re-run; nothing is left in the WAL folder
    assert (ledger_dir(w.root) / f"run_id={crash}" / "part-00000.parquet").exists()
    assert not list((ledger_dir(w.root) / "_wal").glob("*.jsonl"))

    if source == "keap":
        assert_keap_matches(w, as_of)
    else:
        assert_highlevel_matches(w, as_of)
    # the notes and tasks of the deleted contacts are back on their new ids, none twice
    assert_children_match(w, api, source, as_of)
    # nothing created twice: as many contacts per e-mail as the backup had (Keap accounts
    # hold duplicates from before)
    backed_up = backed_up_docs(w.root, source, "contacts", as_of).values()
    live = w.sandbox_docs(source, "contacts").values()
    assert contacts_per_email(live, source) == contacts_per_email(backed_up, source)
    if source == "highlevel":     # contacts without email/phone: as many per name as backed up
        assert names_without_keys(live) == names_without_keys(backed_up)
        assert names_without_keys(backed_up)[("nomail", "restore0")] == 1
    for scoped in (selection, None):   # nothing left to do, in the plan's scope and overall
        again = preview(w.root, source, as_of, scoped, modes=MODES, client=api)
        assert not {k: v for k, v in again.counts.items() if k in CHANGE_KEYS and v}, (
            again.counts)

    rows = ledger_of(w.root, plan.plan_id)
    succeeded = Counter(wid for wid, status, _, _ in rows if status == "succeeded")
    assert set(succeeded.values()) == {1}, [wid for wid, n in succeeded.items() if n > 1]
    assert planned_writes(w.root, plan.plan_id) <= set(succeeded)
    assert {status for _, status, _, _ in rows} == {"started", "succeeded"}
    # what the killed run recorded as done was not sent again
    assert not {wid for wid, status, run, _ in rows if status == "succeeded" and run == rerun
                } & done_before
    # every write ever started (those in flight at the kill too) ended succeeded
    assert {wid for wid, status, _, _ in rows if status == "started"} <= set(succeeded)
    confirmed = {wid for wid, status, _, error in rows
                 if status == "succeeded" and (error or "").startswith("confirmed")}
    assert confirmed <= in_flight and len(confirmed) == counts["confirmed_after_crash"]
    if mode == "lost_update":     # the update had landed: recorded, not sent again
        assert confirmed
    if source == "keap":
        tags_restored_once(w, plan.plan_id, as_of, rows)
    # a finished plan applied again changes nothing
    assert apply_plan(w.root, plan.plan_id, client=api)["succeeded"] == 0
    w.admin("POST", "/clock", json={"advance_seconds": 60})
