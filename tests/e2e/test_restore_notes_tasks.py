"""Notes and tasks in a restore (Keap and HighLevel), against the served sandbox.

A day is backed up with the contacts' notes and tasks. Then, through the vendors' APIs: notes
and tasks are deleted, edited (text, completion, due time) and added, and a contact holding
notes and tasks is deleted (they go with it). The preview says per kind what comes back and
how (a note of the deleted contact goes to that contact's new id), apply brings it back, and
the notes and tasks read back over HTTP equal the backup's as of T (contacts mapped through the
ledger, ids aside). A re-run of the plan writes nothing and a new preview finds nothing to do;
a note edited again after the preview makes the apply refuse.
A note create whose reply was lost (an apply killed after Keap made the note) is adopted on the
re-run, never made twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.keap.extract import SPECS as KEAP
from assets.recovery.restore import RestoreRefused, Selection, preview
from assets.recovery.restore.apply import apply as apply_plan
from assets.recovery.restore.ledger import Ledger, ledger_relation
from assets.recovery.restore.plan import plan_dir
from orchestration.times import iso, parse_ts
from tests.e2e.conftest import CORE, World, backed_up_docs

SPECS = [s for s in (*KEAP, *HIGHLEVEL)
         if s.key.path[-1] in (*CORE[s.schema.source], "notes", "tasks")]
MODES = ["create-missing", "update-existing", "delete-new"]
CHILD_KEYS = ("create", "update_records", "delete")


def idmap(root: Path, source: str, entity: str) -> dict[str, str]:
    con = duckdb.connect()
    try:
        ledger_relation(con, root)
        return dict(con.execute("SELECT backup_id, live_id FROM restore_idmap WHERE source = ? "
                                "AND entity = ?", [source, entity]).fetchall())
    finally:
        con.close()


def child_writes(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v and k.split("_", 1)[0] in ("note", "task")
            and k.split("_", 1)[1] in CHILD_KEYS}


def when(value: Any) -> str | None:
    return iso(parse_ts(value)) if value else None


def view(source: str, entity: str, doc: dict[str, Any], contact: str) -> tuple:
    """What must come back of a note or task (ids aside), on which contact."""
    g = doc.get
    if (source, entity) == ("keap", "notes"):
        return (contact, g("title"), g("text"), g("type"), bool(g("pinned_at")))
    if (source, entity) == ("keap", "tasks"):
        return (contact, g("title"), g("description"), g("type"), g("priority"),
                bool(g("completed")), when(g("completion_time")) if g("completed") else None,
                when(g("due_time")), g("assigned_to_user_id"), bool(g("accepted")))
    if entity == "notes":
        return (contact, g("body"), g("title"), g("color"), bool(g("pinned")), g("userId"))
    return (contact, g("title"), g("body"), when(g("dueDate")), bool(g("completed")),
            g("assignedTo"))


def live_children(api: Any, source: str, entity: str) -> list[dict[str, Any]]:
    """Every note or task, read over HTTP (Keap: the account's listing; HighLevel: per
    contact, its only listing)."""
    if source == "keap":
        pages = api.note_pages() if entity == "notes" else api.task_pages()
        return [d for page in pages for d in page]
    ids = [d["id"] for page in api.contact_pages() for d in page]
    return [d for cid in ids for d in api.contact_children(cid, entity) or []]


def assert_children_match(w: World, api: Any, source: str, as_of: str) -> None:
    contacts = idmap(w.root, source, "contacts")
    parent = "contact_id" if source == "keap" else "contactId"
    for entity in ("notes", "tasks"):
        backup = backed_up_docs(w.root, source, entity, as_of).values()
        want = Counter(view(source, entity, d, contacts.get(d.get(parent), d.get(parent)))
                       for d in backup)
        have = Counter(view(source, entity, d, d.get(parent))
                       for d in live_children(api, source, entity))
        assert have == want, (source, entity, sum((want - have).values()),
                              sum((have - want).values()))


@pytest.fixture(scope="module")
def as_of(sandbox_world: World) -> str:
    return sandbox_world.backup_as_of(SPECS)


@pytest.fixture
def fast(sandbox_world: World) -> Iterator[dict[str, Any]]:
    """Unpaced clients for preview and apply (the sandbox has no rate limits here)."""
    clients = sandbox_world.clients()
    yield clients
    for c in clients.values():
        c.close()


def by_contact(docs: dict[str, dict], key: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i, d in sorted(docs.items()):
        out.setdefault(d.get(key), []).append(i)
    return out


def test_keap_notes_and_tasks_come_back(sandbox_world: World, as_of: str, fast) -> None:
    w, api = sandbox_world, fast["keap"]
    notes, tasks = w.sandbox_docs("keap", "notes"), w.sandbox_docs("keap", "tasks")
    n_of, t_of = by_contact(notes, "contact_id"), by_contact(tasks, "contact_id")
    # a contact with notes and tasks is deleted (they go with it); on another, two notes are
    # deleted, one edited and one added; a task deleted, one un-completed and moved in time
    gone = next(c for c in sorted(n_of) if len(n_of[c]) >= 1 and t_of.get(c))
    busy = next(c for c in sorted(n_of) if len(n_of[c]) >= 3 and c != gone)
    done = next(i for i, t in sorted(tasks.items()) if t["completed"]
                and t["contact_id"] not in (gone, busy))
    other = next(i for i, t in sorted(tasks.items())
                 if t["contact_id"] not in (gone, busy) and i != done)
    api.delete_contact(gone)
    for nid in n_of[busy][:2]:
        api.delete_note(busy, nid)
    edited = n_of[busy][2]
    api.update_note(busy, edited, {"user_id": "7", "text": "Wrong", "title": "Wrong"},
                    ["text", "title"])
    api.create_note(busy, {"user_id": "7", "title": "After T", "text": "new"})
    api.delete_task(other)
    api.update_task(done, {"completed": False, "due_time": "2030-01-01T00:00:00.000Z"},
                    ["completed", "due_time"])

    # without create-missing the deleted contact's notes cannot come back: said, and named
    held = preview(w.root, "keap", as_of, modes=["update-existing"], client=api)
    assert held.counts["notes_without_contact"] == len(n_of[gone])
    assert f"contact `{gone}` is gone" in held.markdown and "cannot come back" in held.markdown

    plan = preview(w.root, "keap", as_of, modes=MODES, client=api)
    c = plan.counts
    assert c["create"] == 1 and c["note_create"] == 2 + len(n_of[gone])
    assert c["task_create"] == 1 + len(t_of[gone])
    assert c["note_update_records"] == 1 and c["note_update_fields"] == 2
    assert c["task_update_records"] == 1 and c["note_delete"] == 1
    md = plan.markdown
    assert "### Notes and tasks" in md and "on the new id of a contact this plan recreates" in md
    assert f"recreated on the new id of contact {gone}" in md
    assert f"recreated on contact {busy}" in md
    assert "Wrong" not in md and notes[edited]["text"] not in md     # note texts are masked

    counts = apply_plan(w.root, plan.plan_id, client=api)
    assert counts["failed_permanent"] == counts["failed_retryable"] == 0, counts
    new_gone, recreated = idmap(w.root, "keap", "contacts")[gone], idmap(w.root, "keap", "notes")
    assert {d["contact_id"] for d in live_children(api, "keap", "notes")
            if d["id"] in recreated.values()} == {busy, new_gone}
    assert_children_match(w, api, "keap", as_of)

    # a re-run writes nothing, and a new preview finds nothing left to do
    assert apply_plan(w.root, plan.plan_id, client=api)["succeeded"] == 0
    assert child_writes(preview(w.root, "keap", as_of, modes=MODES, client=api).counts) == {}


def test_highlevel_notes_and_tasks_come_back(sandbox_world: World, as_of: str, fast) -> None:
    w, api = sandbox_world, fast["highlevel"]
    notes, tasks = w.sandbox_docs("highlevel", "notes"), w.sandbox_docs("highlevel", "tasks")
    n_of, t_of = by_contact(notes, "contactId"), by_contact(tasks, "contactId")
    gone = next(c for c in sorted(n_of) if t_of.get(c))
    note_on = next(c for c in sorted(n_of) if len(n_of[c]) >= 2 and c != gone)
    task = next(i for i, t in sorted(tasks.items()) if t["contactId"] != gone)
    api.delete_contact(gone)
    api.delete_child(note_on, "notes", n_of[note_on][0])
    api.update_child(note_on, "notes", n_of[note_on][1], {"body": "Wrong", "pinned": True})
    t = tasks[task]
    api.update_child(t["contactId"], "tasks", task, {"completed": not t["completed"],
                                                     "title": "Wrong"})
    # a note edited again after the preview (HighLevel notes have no update time: the apply
    # compares what it reads) makes the apply refuse, writing nothing
    stale = preview(w.root, "highlevel", as_of, client=api)
    api.update_child(note_on, "notes", n_of[note_on][1], {"body": "Wrong again"})
    with pytest.raises(RestoreRefused, match=f"notes {n_of[note_on][1]} \\(changed\\)"):
        apply_plan(w.root, stale.plan_id, client=api)
    assert idmap(w.root, "highlevel", "contacts") == {}
    plan = preview(w.root, "highlevel", as_of, client=api)
    c = plan.counts
    assert c["create"] == 1 and c["note_create"] == 1 + len(n_of[gone])
    assert c["task_create"] == len(t_of[gone])
    assert c["note_update_records"] == 1 and c["task_update_records"] == 1
    assert f"recreated on the new id of contact {gone}" in plan.markdown
    assert "delete-new never deletes tasks" in plan.markdown
    counts = apply_plan(w.root, plan.plan_id, client=api)
    assert counts["failed_permanent"] == counts["failed_retryable"] == 0, counts
    assert_children_match(w, api, "highlevel", as_of)
    assert apply_plan(w.root, plan.plan_id, client=api)["succeeded"] == 0
    assert child_writes(preview(w.root, "highlevel", as_of, client=api).counts) == {}


def test_a_note_create_whose_reply_was_lost_is_adopted(sandbox_world: World, as_of: str,
                                                       fast) -> None:
    """An apply killed after Keap made the note and before the ledger heard it: the re-run
    finds the note on its contact (same title and text, created since the preview), records
    it as the recreation, and makes no second one."""
    w, api = sandbox_world, fast["keap"]
    notes = w.sandbox_docs("keap", "notes")
    nid, note = next((i, n) for i, n in sorted(notes.items())
                     if i in backed_up_docs(w.root, "keap", "notes", as_of))
    api.delete_note(note["contact_id"], nid)
    plan = preview(w.root, "keap", as_of, client=api)
    assert plan.counts["note_create"] == 1
    con = duckdb.connect()
    (wid,), = con.execute("SELECT change_id FROM read_parquet(?) WHERE entity = 'notes'",
                          [str(plan_dir(w.root, plan.plan_id) / "changes.parquet")]).fetchall()
    con.close()
    killed = Ledger(w.root, plan.plan_id, "killed-run", "keap")
    killed.record_started([{"write_id": wid, "entity": "notes", "action": "create",
                            "backup_id": nid, "attempt": 1}])
    killed.close()
    lost = api.create_note(note["contact_id"], {        # the create that did land
        "user_id": note["assigned_to_user"]["id"], "title": note["title"],
        "text": note["text"], "type": note["type"]})
    counts = apply_plan(w.root, plan.plan_id, client=api)
    assert counts["failed_permanent"] == 0 and counts["succeeded"] == 1
    same = [d for d in live_children(api, "keap", "notes")
            if (d["contact_id"], d["title"], d["text"]) == (
                note["contact_id"], note["title"], note["text"])]
    assert [d["id"] for d in same] == [lost["id"]]                    # no second note
    assert idmap(w.root, "keap", "notes")[nid] == lost["id"]
    assert_children_match(w, api, "keap", as_of)
    assert child_writes(preview(w.root, "keap", as_of, client=api).counts) == {}


def test_fields_notes_restores_one_contacts_notes_and_nothing_else(sandbox_world: World,
                                                                   as_of: str, fast) -> None:
    """`--ids X --fields notes`: the contact's notes come back (read through its own listing),
    its edited job title and its tasks are left as they are."""
    w, api = sandbox_world, fast["keap"]
    notes, tasks = w.sandbox_docs("keap", "notes"), w.sandbox_docs("keap", "tasks")
    backed = backed_up_docs(w.root, "keap", "notes", as_of)
    t_of = by_contact(tasks, "contact_id")
    cid, nid = next((n["contact_id"], i) for i, n in sorted(notes.items())
                    if i in backed and t_of.get(n["contact_id"]))
    api.update_note(cid, nid, {"user_id": "7", "text": "Wrong"}, ["text"])
    api.update_contact(cid, {"job_title": "Wrong"})
    api.update_task(t_of[cid][0], {"title": "Wrong"}, ["title"])
    plan = preview(w.root, "keap", as_of, Selection(ids=[cid]), fields=["notes"], client=api)
    assert child_writes(plan.counts) == {"note_update_records": 1}
    assert "update_records" not in plan.counts and "task_update_records" not in plan.counts
    assert apply_plan(w.root, plan.plan_id, client=api)["succeeded"] == 1
    assert api.get_contact(cid, ["job_title"])["job_title"] == "Wrong"
    assert {n["id"]: n["text"] for n in api.contact_notes(cid)}[nid] == backed[nid]["text"]
    assert [t["title"] for t in api.contact_tasks(cid) if t["id"] == t_of[cid][0]] == ["Wrong"]
