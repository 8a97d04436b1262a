"""A restore never brings back a person who was erased: back up, erase one Keap contact's
person, delete them and others in Keap (a disaster), preview and apply a full restore; everyone
comes back except the erased person."""

from __future__ import annotations

from datetime import timedelta

from assets.identity.emails import reference_email
from assets.recovery.erasure import forget
from assets.recovery.restore import preview
from assets.recovery.restore.apply import apply as apply_plan
from orchestration.resources import KeapResource
from orchestration.times import iso
from tests.e2e.conftest import World


def _emails(doc: dict) -> set[str]:
    return {e for e in (reference_email(x.get("email")) for x in
                        doc.get("email_addresses") or []) if e}


def test_a_restore_does_not_bring_back_an_erased_person(sandbox_world: World):
    w = sandbox_world
    w.backup(w.day())
    as_of = iso(w.store.now() - timedelta(milliseconds=1))
    w.admin("POST", "/clock", json={"advance_seconds": 600})
    docs = w.sandbox_docs("keap", "contacts")
    # people with one email each, held by no other contact: unambiguous to count afterwards
    owners: dict[str, list[str]] = {}
    for cid, d in docs.items():
        for e in _emails(d):
            owners.setdefault(e, []).append(cid)
    single = sorted((cid for cid, d in docs.items()
                     if len(_emails(d)) == 1 and len(owners[next(iter(_emails(d)))]) == 1),
                    key=int)
    erased, others = single[0], single[1:6]
    erased_email = next(iter(_emails(docs[erased])))

    report = forget(w.root, email=erased_email)
    assert report.rows_removed > 0

    keap = KeapResource().open()
    try:
        for cid in [erased, *others]:  # the disaster: all six deleted in Keap
            keap.delete_contact(cid)
        plan = preview(w.root, "keap", as_of)
        assert plan.counts["create"] == len(others)  # the erased person is not in the plan
        apply_plan(w.root, plan.plan_id)
    finally:
        keap.close()

    live = w.sandbox_docs("keap", "contacts")
    live_emails = set().union(*(_emails(d) for d in live.values()))
    for cid in others:
        assert next(iter(_emails(docs[cid]))) in live_emails, cid  # recreated
    assert erased_email not in live_emails  # the erased person stays gone
    again = preview(w.root, "keap", as_of)
    assert again.counts.get("create", 0) == 0
