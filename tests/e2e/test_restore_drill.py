"""Disaster drill: back up the sandbox for several days, damage Keap and HighLevel through their
APIs (mass delete, bulk bad edit, tags, opportunities), preview, apply, and prove the live state
equals the backup as of the chosen time, record for record. The oracle below is independent of
the restore's own SQL: it matches records by e-mail address and compares plain projections of
the vendors' documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from assets.recovery.restore import preview
from assets.recovery.restore.apply import apply as apply_plan
from orchestration.times import iso
from tests.e2e.conftest import CRM_SPECS, World, backed_up_docs

ALL_MODES = ["create-missing", "update-existing", "delete-new"]
CHANGE_KEYS = ("create", "update_records", "update_fields", "delete", "tag_add", "tag_remove",
               "opportunity_create", "opportunity_update_records", "opportunity_replace",
               "opportunity_delete")


def keap_stored_email(address: str) -> str:
    """An address as Keap stores it: Keap trims the whitespace around an address on write and
    keeps everything else (case, inner characters). A backed-up address with spaces around it
    can only come back trimmed, so the oracle compares addresses in this form and nothing
    looser: a changed case, character or inner space is still a difference (see
    `test_oracle_trims_keap_addresses_and_still_sees_real_differences`)."""
    return address.strip()


def keap_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "names": [doc.get(k) or None for k in ("given_name", "family_name", "middle_name")],
        "job_title": doc.get("job_title") or None, "owner_id": doc.get("owner_id"),
        "emails": sorted((e["field"], keap_stored_email(e["email"]))
                         for e in doc.get("email_addresses") or []
                         if keap_stored_email(e.get("email") or "")),
        "phones": sorted((p["field"], p["number"]) for p in doc.get("phone_numbers") or []),
        "tags": sorted(str(t) for t in doc.get("tag_ids") or []),
        "custom": {str(c["id"]): c["content"] for c in doc.get("custom_fields") or []
                   if c.get("content") not in (None, "")},
    }


def hl_key(doc: dict[str, Any]) -> str:
    return (doc.get("email") or "").lower() or doc.get("phone") or f"id:{doc['id']}"


def hl_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) or None for k in ("firstName", "lastName", "email", "phone",
                                             "companyName", "source", "assignedTo", "country")
            } | {"tags": sorted(t.lower() for t in doc.get("tags") or []),
                 "custom": {c["id"]: c.get("value") for c in doc.get("customFields") or []
                            if c.get("value") not in (None, "")}}


def opp_view(doc: dict[str, Any], contact_key: str) -> tuple:
    return (contact_key, doc["pipelineId"], doc["name"], doc["pipelineStageId"], doc["status"],
            float(doc.get("monetaryValue") or 0), doc.get("assignedTo"))


def same_records(backup: list[dict], live: list[dict], what: str) -> None:
    """Equal as multisets (a CRM may hold two records of one person; ids of recreated records
    are new, so records are compared by content)."""
    b, lv = sorted(map(repr, backup)), sorted(map(repr, live))
    missing = [x for x in b if x not in lv]
    extra = [x for x in lv if x not in b]
    assert len(b) == len(lv) and not missing and not extra, (
        f"{what}: {len(b)} backed up, {len(lv)} live; {len(missing)} backed-up records have no "
        f"live equal, {len(extra)} live records are not in the backup")


def assert_keap_matches(w: World, as_of: str) -> None:
    backup = backed_up_docs(w.root, "keap", "contacts", as_of).values()
    live = w.sandbox_docs("keap", "contacts").values()
    same_records([keap_view(d) for d in backup], [keap_view(d) for d in live], "Keap contacts")


def assert_highlevel_matches(w: World, as_of: str) -> None:
    backup_docs = backed_up_docs(w.root, "highlevel", "contacts", as_of)
    live_docs = w.sandbox_docs("highlevel", "contacts")
    same_records([hl_view(d) for d in backup_docs.values()],
                 [hl_view(d) for d in live_docs.values()], "HighLevel contacts")
    # opportunities, attached to the same person (by key), not necessarily the same ids
    b_key = {i: hl_key(d) for i, d in backup_docs.items()}
    l_key = {i: hl_key(d) for i, d in live_docs.items()}
    b_opps = [opp_view(o, b_key.get(o["contactId"], "?")) for o in backed_up_docs(
        w.root, "highlevel", "opportunities", as_of).values()]
    l_opps = [opp_view(o, l_key.get(o["contactId"], "?"))
              for o in w.sandbox_docs("highlevel", "opportunities").values()]
    same_records(b_opps, l_opps, "HighLevel opportunities")


def damage(w: World) -> dict[str, int]:
    """What a bad day looks like, done through the vendors' APIs."""
    c = w.clients()
    keap, hl = c["keap"], c["highlevel"]
    try:
        k_ids = sorted(w.sandbox_docs("keap", "contacts"), key=int)
        for cid in k_ids[:15]:                                     # mass delete
            keap.delete_contact(cid)
        for cid in k_ids[15:30]:                                   # bulk bad edit
            keap.update_contact(cid, {"given_name": "Import", "job_title": "??",
                                      "phone_numbers": []})
        docs = w.sandbox_docs("keap", "contacts")
        tagged = [(cid, d["tag_ids"][0]) for cid, d in docs.items() if d.get("tag_ids")][:5]
        for cid, tag in tagged:                                    # a tag stripped
            keap.remove_tags(tag, [cid])
        keap.apply_tags(tagged[0][1], [k_ids[40], k_ids[41]])      # a tag wrongly applied
        keap.create_contact({"given_name": "New", "email_addresses": [
            {"field": "EMAIL1", "email": "after.the.backup@example.com"}]})
        h_ids = sorted(w.sandbox_docs("highlevel", "contacts"))
        opps = w.sandbox_docs("highlevel", "opportunities")
        with_opp = sorted({o["contactId"] for o in opps.values()} & set(h_ids))
        without = [i for i in h_ids if i not in with_opp]
        gone = with_opp[:4] + without[:2]
        for cid in gone:
            hl.delete_contact(cid)
        for cid in without[2:8]:
            hl.update_contact(cid, {"companyName": "Wrong Co", "tags": ["imported"]})
        remaining = [o for o in opps.values() if o["contactId"] not in gone]
        for o in remaining[:2]:
            hl.delete_opportunity(o["id"])
        for o in remaining[2:5]:
            hl.update_opportunity(o["id"], {"status": "abandoned", "monetaryValue": 1})
        new = hl.create_contact({"firstName": "New", "email": "after.backup@example.org"})
        pipeline = next(iter(w.sandbox_docs("highlevel", "pipelines").values()))
        hl.create_opportunity({"name": "New deal", "pipelineId": pipeline["id"],
                               "status": "open", "contactId": new["id"]})
        return {"keap_deleted": 15, "hl_deleted": len(gone)}
    finally:
        for client in c.values():
            client.close()


@pytest.fixture(scope="module")
def drill(sandbox_world: World) -> dict[str, Any]:
    w = sandbox_world
    w.backup(w.day(), CRM_SPECS)
    for _ in range(3):
        w.tick(1)
        w.backup(w.day(), CRM_SPECS)
    as_of = iso(w.store.now() - timedelta(milliseconds=1))
    w.admin("POST", "/clock", json={"advance_seconds": 3600})
    return {"as_of": as_of, **damage(w)}


@pytest.mark.parametrize("source", ["keap", "highlevel"])
def test_disaster_drill_restores_the_backup_exactly(sandbox_world: World, drill, source):
    w, as_of = sandbox_world, drill["as_of"]
    before = {e: w.sandbox_docs(source, e) for e in ("contacts", "opportunities")}
    plan = preview(w.root, source, as_of, modes=ALL_MODES)
    # the preview wrote nothing
    assert {e: w.sandbox_docs(source, e) for e in before} == before
    deleted = drill[f"{'keap' if source == 'keap' else 'hl'}_deleted"]
    assert plan.counts["create"] == deleted
    assert plan.counts["delete"] == 1
    assert plan.counts["update_records"] >= 6
    if source == "highlevel":
        assert plan.counts["opportunity_replace"] >= 1          # children of recreated contacts
        assert plan.counts["opportunity_create"] == 2
        assert plan.counts["opportunity_update_records"] == 3
        assert plan.counts["opportunity_delete"] == 1
    else:
        assert plan.counts["tag_add"] >= 5 and plan.counts["tag_remove"] >= 2
    assert "«masked»" in plan.markdown and "@" not in plan.markdown
    counts = apply_plan(w.root, plan.plan_id)
    assert counts["failed_retryable"] == counts["failed_permanent"] == 0
    if source == "keap":
        assert_keap_matches(w, as_of)
    else:
        assert_highlevel_matches(w, as_of)
    again = preview(w.root, source, as_of, modes=ALL_MODES)
    assert not {k: v for k, v in again.counts.items() if k in CHANGE_KEYS and v}, again.counts
    # re-applying the finished plan changes nothing
    assert apply_plan(w.root, plan.plan_id)["succeeded"] == 0


def test_audit_trail_and_ledger_name_the_plans(sandbox_world: World, drill):
    from assets.catalog.views import open_catalog

    con = open_catalog(sandbox_world.root)
    rows = con.execute("SELECT action, count(*), count(plan_id) FROM audit.events WHERE "
                       "action LIKE 'restore%' GROUP BY ALL ORDER BY 1").fetchall()
    assert [r[0] for r in rows] == ["restore_apply", "restore_preview"]
    assert all(n == with_plan for _, n, with_plan in rows)
    raw = b"".join(p.read_bytes() for p in (sandbox_world.root / "restore").rglob("*")
                   if p.is_file())
    assert b"after.the.backup@example.com" not in raw and b"@example" not in raw


def test_oracle_trims_keap_addresses_and_still_sees_real_differences():
    def contact(address: str) -> dict[str, Any]:
        return {"given_name": "A", "email_addresses": [{"field": "EMAIL1", "email": address}]}

    backed_up = [contact("\t Ada.Q@x.org  ")]
    same_records([keap_view(d) for d in backed_up], [keap_view(contact("Ada.Q@x.org"))], "Keap")
    for other in ("ada.q@x.org", "Ada.Q@x.org.uk", "Ada. Q@x.org", "Ada.Q@x.org\u200b"):
        with pytest.raises(AssertionError, match="no live equal"):
            same_records([keap_view(d) for d in backed_up], [keap_view(contact(other))], "Keap")
