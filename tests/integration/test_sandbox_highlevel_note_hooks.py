"""HighLevel notes and tasks in the sandbox's life and webhooks: a day of life adds, edits,
completes and deletes them (a generated world starts with some), and each change reaches a
registered HighLevel webhook as HighLevel announces it: NoteCreate / NoteUpdate / NoteDelete,
TaskCreate / TaskComplete / TaskDelete, with the fields its webhook docs list."""

from __future__ import annotations

from sandbox.world import life
from tests.integration.test_sandbox_webhooks import (  # noqa: F401  (fixtures)
    Hooked,
    Receiver,
    _docs,
    _ids,
    _tombs,
    receiver,
    sandbox,
    served,
)

ENVELOPE = {"timestamp", "webhookId"}   # what the sandbox's delivery adds to every event
NOTE_FIELDS = {"type", "locationId", "id", "body", "contactId", "dateAdded"} | ENVELOPE
TASK_FIELDS = {"type", "locationId", "id", "assignedTo", "body", "contactId", "title",
               "dateAdded", "dueDate"} | ENVELOPE


def test_notes_and_tasks_changes_reach_the_highlevel_hook(sandbox: Hooked,  # noqa: F811
                                                          receiver: Receiver) -> None:  # noqa: F811
    store = sandbox.store
    sandbox.admin("PUT", "/webhooks/highlevel", json={"url": receiver.url + "/hl"})
    receiver.clear()
    notes_old, tasks_old = _docs(store, "highlevel", "notes"), _docs(store, "highlevel", "tasks")
    assert notes_old and tasks_old            # a generated world starts with some
    gone_before = {e: _tombs(store, "highlevel", e) for e in ("notes", "tasks", "contacts")}
    summary = life.tick(store, days=2)
    sandbox.flush()
    notes_new, tasks_new = _docs(store, "highlevel", "notes"), _docs(store, "highlevel", "tasks")
    gone = {e: _tombs(store, "highlevel", e) - ids for e, ids in gone_before.items()}
    for kind in ("highlevel_notes_added", "highlevel_notes_edited", "highlevel_notes_deleted",
                 "highlevel_tasks_added", "highlevel_tasks_completed",
                 "highlevel_tasks_deleted"):
        assert summary["total"].get(kind, 0) >= 2, kind   # at least once a day

    hl = receiver.on("/hl")
    # the notes and tasks a deleted contact took along are not announced
    cascaded = {e: {i for i in gone[e] if (notes_old | tasks_old).get(i, {}).get("contactId")
                    in gone["contacts"]} for e in ("notes", "tasks")}
    assert _ids(hl, "type", "NoteCreate") == (notes_new.keys() | gone["notes"]) - notes_old.keys()
    assert _ids(hl, "type", "NoteDelete") == gone["notes"] - cascaded["notes"]
    edited = {i for i in notes_old.keys() & notes_new.keys() if notes_old[i] != notes_new[i]}
    assert edited and edited <= _ids(hl, "type", "NoteUpdate")
    assert _ids(hl, "type", "TaskCreate") == (tasks_new.keys() | gone["tasks"]) - tasks_old.keys()
    assert _ids(hl, "type", "TaskDelete") == gone["tasks"] - cascaded["tasks"]
    # life creates tasks open: every task completed now and not at the start was completed
    completed = {i for i, t in tasks_new.items()
                 if t["completed"] and not tasks_old.get(i, {}).get("completed")}
    assert completed and completed <= _ids(hl, "type", "TaskComplete")
    # the payloads carry what HighLevel's docs list, and the note's text as written
    for g in hl:
        if g.body["type"].startswith("Note"):
            assert set(g.body) <= NOTE_FIELDS and g.body["contactId"], g.body
        elif g.body["type"].startswith("Task"):
            assert set(g.body) <= TASK_FIELDS and g.body["contactId"], g.body
    created = next(g.body for g in hl if g.body["type"] == "NoteCreate")
    assert created["body"] == notes_new[created["id"]]["body"]
