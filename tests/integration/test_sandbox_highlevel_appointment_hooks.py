"""HighLevel appointments in the sandbox's life and webhooks: days of life book, reschedule,
cancel, mark and delete appointments (a generated world starts with calendars and some), and each
change reaches a registered HighLevel webhook as HighLevel announces it: AppointmentCreate /
AppointmentUpdate / AppointmentDelete with the appointment nested under `appointment`; the
receiver keeps the appointment's id and its contact."""

from __future__ import annotations

from orchestration.webhooks.events import highlevel_events
from sandbox.world import life
from tests.integration.test_sandbox_webhooks import (  # noqa: F401  (fixtures)
    Hooked,
    Receiver,
    _docs,
    _tombs,
    receiver,
    sandbox,
    served,
)

ENVELOPE = {"type", "locationId", "appointment", "timestamp", "webhookId"}
APPOINTMENT_FIELDS = {"id", "address", "title", "calendarId", "contactId", "groupId",
                      "appointmentStatus", "assignedUserId", "users", "notes", "source",
                      "startTime", "endTime", "dateAdded", "dateUpdated"}


def _appointment_ids(hooks: list, kind: str) -> set[str]:
    return {g.body["appointment"]["id"] for g in hooks if g.body["type"] == kind}


def test_appointment_changes_reach_the_highlevel_hook(sandbox: Hooked,  # noqa: F811
                                                      receiver: Receiver) -> None:  # noqa: F811
    store = sandbox.store
    sandbox.admin("PUT", "/webhooks/highlevel", json={"url": receiver.url + "/hl"})
    receiver.clear()
    old = _docs(store, "highlevel", "appointments")
    assert old and len(_docs(store, "highlevel", "calendars")) == 3
    gone_before = {e: _tombs(store, "highlevel", e) for e in ("appointments", "contacts")}
    summary = life.tick(store, days=2)
    sandbox.flush()
    new = _docs(store, "highlevel", "appointments")
    gone = {e: _tombs(store, "highlevel", e) - ids for e, ids in gone_before.items()}
    for kind in ("highlevel_appointments_booked", "highlevel_appointments_rescheduled",
                 "highlevel_appointments_cancelled", "highlevel_appointments_marked",
                 "highlevel_appointments_deleted"):
        assert summary["total"].get(kind, 0) >= 2, kind   # at least once a day

    hl = [g for g in receiver.on("/hl") if g.body["type"].startswith("Appointment")]
    # the appointments a deleted contact took along are not announced
    cascaded = {i for i in gone["appointments"]
                if old.get(i, {}).get("contactId") in gone["contacts"]}
    assert _appointment_ids(hl, "AppointmentCreate") == (
        new.keys() | gone["appointments"]) - old.keys()
    assert _appointment_ids(hl, "AppointmentDelete") == gone["appointments"] - cascaded
    changed = {i for i in old.keys() & new.keys() if old[i] != new[i]}
    assert changed and changed <= _appointment_ids(hl, "AppointmentUpdate")
    for g in hl:
        assert set(g.body) <= ENVELOPE, g.body
        assert set(g.body["appointment"]) <= APPOINTMENT_FIELDS, g.body
        # the receiver's inbox row: the appointment, and its contact as the related record
        [event] = highlevel_events(g.body)
        assert (event.object_type, event.object_id, event.related_id) == (
            "appointment", g.body["appointment"]["id"], g.body["appointment"]["contactId"])
        assert event.op == ("delete" if g.body["type"] == "AppointmentDelete" else "upsert")
    made = next(g.body["appointment"] for g in hl if g.body["type"] == "AppointmentCreate"
                and g.body["appointment"]["id"] in new)
    assert made == {k: v for k, v in new[made["id"]].items() if k in APPOINTMENT_FIELDS}
