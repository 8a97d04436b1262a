"""Values Keap would refuse are caught when the changeset is built, not dead-lettered after a
wasted call: the real changeset (crafted Keap backup and desired state, real SQL) pushed to the
sandbox over real sockets, whose contact validation follows the Keap spec (length limits,
email syntax)."""

from __future__ import annotations

import json
from pathlib import Path

from assets.catalog.views import open_catalog
from assets.sync import preview
from assets.sync.push import run_push
from sandbox import records
from tests.conftest import Sandbox
from tests.e2e.sync_push_support import client, ledger_rows, writes
from tests.unit.sync_changeset_world import World, contact, profile

LONG_NAME = "Maximiliana-Alexandrina Featherstonehaugh"   # 41 characters
LONG_EMAIL = "a" * 70 + "@example.com"                      # 82 characters: over EMAIL1's 75


def test_values_keap_refuses_are_rejected_before_sending(sandbox: Sandbox,
                                                         tmp_path: Path) -> None:
    sandbox.rate_limits(False)
    w = World(tmp_path)
    w.contacts = [
        # a human typed a bad address into Keap (EMAIL2)
        contact(5, ["ann@example.com", "ann@@example"]),
        contact(6, ["cy@example.com"], given="Cy"),
    ]
    records.save_many(sandbox.store, "keap", "contacts", [
        dict(c, email_addresses=[{k: v for k, v in e.items() if k != "is_opt_in"}
                                 for e in c["email_addresses"]]) for c in w.contacts])
    w.profiles = [
        # matched on a secondary address; its primary email would go in EMAIL3, next to the bad one
        profile(1, "ann.lee@work.example", emails=["ann.lee@work.example", "ann@example.com"],
                fields={"job_title": "Engineer"}),
        profile(2, "cy@example.com", fields={"given_name": LONG_NAME, "job_title": "CTO"}),
        profile(3, LONG_EMAIL, fields={"given_name": "Long"}),          # cannot be created
        profile(4, "dee@example.com", fields={"given_name": "Dee", "family_name": LONG_NAME}),
    ]
    w.backup_keap()
    w.write_desired()
    rows = w.changeset()

    by_profile = {r["profile_id"]: r for r in rows}
    assert sorted(by_profile) == [1, 2, 4]  # nothing at all for profile 3
    assert json.loads(by_profile[1]["body"]) == {"job_title": "Engineer"}
    assert "email not sent" in by_profile[1]["conflict"]
    assert json.loads(by_profile[2]["body"]) == {"job_title": "CTO"}
    assert by_profile[2]["fields"] == ["job_title"]
    assert "family_name" not in json.loads(by_profile[4]["body"])

    with client(sandbox) as c:
        result = run_push(c, tmp_path, w.day, "push-1")
    # before the check: four 400s, four dead letters, and the valid fields never written
    assert (result.sent, result.succeeded, result.failed) == (3, 3, 0)
    assert len(writes(sandbox)) == 3
    kept = {c["id"]: c for c in sandbox.records("keap", "contacts")}
    assert kept["5"]["job_title"] == "Engineer"
    assert [e["email"] for e in kept["5"]["email_addresses"]] == ["ann@example.com",
                                                                  "ann@@example"]
    assert kept["6"]["job_title"] == "CTO" and kept["6"]["given_name"] == "Cy"
    dee = next(c for c in kept.values()
               if any(e["email"] == "dee@example.com" for e in c["email_addresses"]))
    assert dee["given_name"] == "Dee" and not dee.get("family_name")
    assert not [c for c in kept.values()
                if any(e["email"] == LONG_EMAIL for e in c["email_addresses"])]
    assert not [r for r in ledger_rows(tmp_path) if r["status"] != "succeeded"]

    # the reject list: in SQL, in the preview, in the changeset's counts
    con = open_catalog(tmp_path)
    rejects = con.execute("""SELECT profile_id, contact_id, action, field, keap_field, length,
                                    max_length, scope, reason
                             FROM sync.keap_rejects ORDER BY profile_id""").fetchall()
    assert [r[:8] for r in rejects] == [
        (1, "5", "update", "email", "EMAIL2", 12, 100, "field"),
        (2, "6", "update", "given_name", "given_name", 41, 40, "field"),
        (3, None, "create", "email", "EMAIL1", 82, 75, "contact"),
        (4, None, "create", "family_name", "family_name", 41, 40, "field"),
    ]
    reasons = {r[0]: r[8] for r in rejects}
    assert "Keap contact 5 holds an address Keap refuses in EMAIL2" in reasons[1]
    assert "fix or remove that address in Keap" in reasons[1]
    assert reasons[2].startswith("profile 2: given_name is 41 characters, Keap allows 40")
    assert "shorten it in Greenhouse" in reasons[2]
    assert "contact is not created" in reasons[3] and "Greenhouse" in reasons[3]
    assert "left out of the new contact" in reasons[4]
    for reason in reasons.values():  # ids, names and numbers only: never a value
        assert "@" not in reason and LONG_NAME not in reason
    p = preview.load(tmp_path, w.day)
    assert p.counts["rejected"] == 4 and [r[0] for r in p.rejects] == [3, 1, 2, 4]
    md = preview.markdown(p)
    assert "4 change(s) not sent: Keap would refuse them" in md and "| 3 | (new) |" in md
    counts = json.loads((tmp_path / "sync" / "keap_changeset" / f"snapshot_date={w.day}" /
                         "_manifest.json").read_text())["counts"]
    assert (counts["rejected"], counts["rejected_contacts"]) == (4, 1)
