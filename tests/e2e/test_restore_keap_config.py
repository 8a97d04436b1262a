"""Keap configuration in a restore: tag categories, tags and contact custom fields, against the
served sandbox.

A day of the Keap contacts and their configuration is backed up; then a tag category is deleted
with every tag in it, and a dropdown custom field with its values, the way Keap deletes them
(the tags leave their contacts, the values leave theirs). The preview at the backup's time names
the category, then its tags, then the field, in that order; apply recreates them in that order
before any contact write, and every contact ends with its tags (in the recreated category) and
its value on the recreated field (sandbox truth). A re-run writes nothing. Then a category create
whose reply was lost: the re-run finds it by name, makes no second one, records the write once.
"""

from __future__ import annotations

import json

import pytest

from assets.keap.extract import SPECS as KEAP
from assets.recovery.restore import Selection, preview
from assets.recovery.restore.apply import apply as apply_plan
from orchestration.resources import KeapResource
from orchestration.times import iso
from sandbox import records
from tests.e2e.conftest import World
from tests.e2e.restore_support import (
    ledger_rows,
    lost_create_started,
    written,
)

# what a Keap restore reads (contacts and their configuration)
CONFIG_SPECS = [s for s in KEAP if s.key.path[-1] in (
    "contacts", "tags", "tag_categories", "custom_fields")]
def delete_config(w: World, category_name: str, field_label: str | None = None) -> dict:
    """Delete a category, its tags and (optionally) a custom field in the sandbox as Keap does:
    the tags leave their contacts, the field's values leave theirs. Returns what was there."""
    category = next(c for c in w.sandbox_docs("keap", "tag_categories").values()
                    if c["name"] == category_name)
    tags = {i: t for i, t in w.sandbox_docs("keap", "tags").items()
            if (t.get("category") or {}).get("id") == category["id"]}
    field = next((f for f in w.sandbox_docs("keap", "custom_fields").values()
                  if f["label"] == field_label), None)
    contacts = w.sandbox_docs("keap", "contacts")
    holders = {cid: sorted(set(d.get("tag_ids") or []) & set(tags))
               for cid, d in contacts.items() if set(d.get("tag_ids") or []) & set(tags)}
    values = {cid: v["content"] for cid, d in contacts.items()
              for v in d.get("custom_fields") or [] if field and v["id"] == field["id"]
              and v["content"] not in (None, "")}
    at = iso(w.store.stamp())
    for cid in set(holders) | set(values):
        doc = contacts[cid]
        doc["tag_ids"] = [t for t in doc.get("tag_ids") or [] if t not in tags]
        doc["custom_fields"] = [v for v in doc.get("custom_fields") or []
                                if not field or v["id"] != field["id"]]
        doc["update_time"] = iso(w.store.stamp())
        records.save(w.store, "keap", "contacts", doc)
    for tid in tags:
        w.store.delete("keap", "tags", tid, at=at)
    w.store.delete("keap", "tag_categories", category["id"], at=at)
    if field:
        w.store.delete("keap", "custom_fields", field["id"], at=at)
    return {"category": category, "tags": tags, "field": field, "holders": holders,
            "values": values}


def live_category(w: World, name: str) -> dict:
    (found,) = [c for c in w.sandbox_docs("keap", "tag_categories").values() if c["name"] == name]
    return found


def assert_restored(w: World, gone: dict) -> dict[str, str]:
    """The category, its tags (in it) and the field exist once each again, and every contact
    holds its tags and value on them. Returns backup tag id -> live tag id."""
    category = live_category(w, gone["category"]["name"])
    assert category["id"] != gone["category"]["id"]
    live_tags = {t["name"]: t for t in w.sandbox_docs("keap", "tags").values()}
    new_tag = {}
    for tid, tag in gone["tags"].items():
        live = live_tags[tag["name"]]
        assert live["category"]["id"] == category["id"]        # in the recreated category
        assert live.get("description") == tag.get("description")
        new_tag[tid] = live["id"]
    assert len([t for t in w.sandbox_docs("keap", "tags").values()
                if t.get("category", {}).get("id") == category["id"]]) == len(gone["tags"])
    contacts = w.sandbox_docs("keap", "contacts")
    for cid, had in gone["holders"].items():
        assert {new_tag[t] for t in had} <= set(contacts[cid]["tag_ids"])
    if gone["field"]:
        (field,) = [f for f in w.sandbox_docs("keap", "custom_fields").values()
                    if f["label"] == gone["field"]["label"]]
        assert field["field_type"] == gone["field"]["field_type"]
        assert [o["label"] for o in field["options"]] == [
            o["label"] for o in gone["field"]["options"]]
        for cid, value in gone["values"].items():
            assert {v["id"]: v["content"] for v in contacts[cid]["custom_fields"]
                    }.get(field["id"]) == value
    return new_tag


@pytest.fixture(scope="module")
def as_of(sandbox_world: World) -> str:
    return sandbox_world.backup_as_of(CONFIG_SPECS)


def test_category_tags_and_field_recreated_in_order(sandbox_world: World, as_of: str) -> None:
    w = sandbox_world
    gone = delete_config(w, "Lead Source", "Candidate Source")
    assert len(gone["tags"]) >= 3 and len(gone["holders"]) >= 5 and len(gone["values"]) >= 5
    plan = preview(w.root, "keap", as_of)
    c = plan.counts
    assert (c["tag_category_create"], c["tag_create"], c["custom_field_create"]) == (
        1, len(gone["tags"]), 1)
    assert c["update_records"] == len(gone["values"])      # the values; tags are tag_add
    assert c["tag_add"] == sum(len(t) for t in gone["holders"].values())
    md = plan.markdown[plan.markdown.index("### Configuration (Keap)"):]
    names = [gone["category"]["name"],
             *sorted(t["name"] for t in gone["tags"].values()), gone["field"]["label"]]
    places = [md.index(f"| {n} |") for n in names]
    assert places == sorted(places)                        # categories, tags, then fields
    doc = (w.root / "restore" / "plans" / plan.plan_id / "configuration.md").read_text()
    assert f"`{gone['field']['field_name']}`" in doc        # what the API cannot set

    applied = apply_plan(w.root, plan.plan_id)
    assert applied["failed_permanent"] == applied["failed_retryable"] == 0
    assert_restored(w, gone)
    order = ledger_rows(w.root, """
        SELECT entity, min("at"), max("at") FROM restore_ledger
        WHERE plan_id = ? AND status = 'succeeded' GROUP BY entity""", plan.plan_id)
    spans = {e: (lo, hi) for e, lo, hi in order}
    chain = ["tag_categories", "tags", "custom_fields", "contacts"]
    for before, after in zip(chain, chain[1:], strict=False):
        assert spans[before][1] < spans[after][0], (before, after)

    rerun = apply_plan(w.root, plan.plan_id)               # the same plan again: nothing sent
    assert rerun["succeeded"] == 0 and rerun["changes_still_needed"] == 0
    again = preview(w.root, "keap", as_of)
    assert written(again.counts) == {}
    assert "Configuration (Keap)" not in again.markdown


def test_a_category_create_whose_reply_was_lost_is_found_by_name(sandbox_world: World,
                                                                 as_of: str) -> None:
    """An apply killed after Keap made the category and before the ledger heard it: the re-run
    finds it by name, makes no second one, puts the tags in it, records the write once."""
    w = sandbox_world
    gone = delete_config(w, "Newsletter")
    assert gone["tags"] and gone["holders"]
    # a granular restore recreates only the tags its contacts carry, with their category
    holder, tags = sorted(gone["holders"].items())[0]
    one = preview(w.root, "keap", as_of, selection=Selection(ids=[holder])).counts
    assert (one["tag_category_create"], one["tag_create"]) == (1, len(tags)) < (
        1, len(gone["tags"]))
    other = next(c for c in sorted(w.sandbox_docs("keap", "contacts"))
                 if c not in gone["holders"])
    assert "tag_create" not in preview(w.root, "keap", as_of, selection=Selection(ids=[other])
                                       ).counts
    plan = preview(w.root, "keap", as_of)
    assert plan.counts["tag_category_create"] == 1
    wid, body = lost_create_started(w.root, plan.plan_id, "keap", "tag_categories",
                                    gone["category"]["id"])
    keap = KeapResource(requests_per_second=1_000, requests_per_minute=60_000).open()
    try:                                                   # the create that did land
        lost = keap.create_tag_category(json.loads(body)["name"])
    finally:
        keap.close()
    counts = apply_plan(w.root, plan.plan_id)
    assert counts["confirmed_after_crash"] == 1 and counts["failed_permanent"] == 0
    assert live_category(w, gone["category"]["name"])["id"] == lost["id"]   # no second one
    assert_restored(w, gone)
    assert ledger_rows(w.root, "SELECT count(*) FROM restore_ledger WHERE write_id = ? AND "
                       "status = 'succeeded'", wid) == [(1,)]
    assert written(preview(w.root, "keap", as_of).counts) == {}
