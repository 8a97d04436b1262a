"""HighLevel location tags and custom values in a restore, against the served sandbox.

A day backed up (contacts, configuration, tags, custom values); then, through the API, a
location tag some contacts carry is deleted (it leaves those contacts too, as in HighLevel), a
custom value is deleted and another one edited. The preview at the backup's time names the tag
and the custom values; apply recreates the tag and the deleted value (POST) and puts the edited
value back (PUT) before any contact is written, and the contacts get the tag back; a re-run
plans nothing. A custom value whose create reply was lost is found by name on the re-run.
"""

from __future__ import annotations

import pytest

from assets.highlevel.extract import SPECS as HIGHLEVEL
from assets.recovery.restore import preview
from assets.recovery.restore.apply import apply as apply_plan
from orchestration.resources import HighLevelResource
from sandbox import credentials
from tests.e2e.conftest import World
from tests.e2e.restore_support import (
    ledger_rows,
    lost_create_applied,
    written,
)

SPECS = [s for s in HIGHLEVEL if s.key.path[-1] in (
    "contacts", "opportunities", "pipelines", "workflows", "custom_fields", "tags",
    "custom_values")]
LOCATION = f"/locations/{credentials.HIGHLEVEL_LOCATION_ID}"


def by_name(w: World, entity: str) -> dict[str, dict]:
    return {d["name"]: d for d in w.sandbox_docs("highlevel", entity).values()}


def carrying(w: World, tag: str) -> set[str]:
    return {i for i, c in w.sandbox_docs("highlevel", "contacts").items()
            if tag in (c.get("tags") or [])}


@pytest.fixture(scope="module")
def damaged(sandbox_world: World) -> dict:
    w = sandbox_world
    as_of = w.backup_as_of(SPECS)
    counts = {t: len(carrying(w, t)) for t in by_name(w, "tags")}
    tag = min((t for t, n in counts.items() if n), key=lambda t: (counts[t], t))
    holders = carrying(w, tag)
    values = sorted(by_name(w, "custom_values").values(), key=lambda v: v["name"])
    gone, edited = values[0], values[1]
    hl = HighLevelResource(requests_per_window=10_000).open()
    try:
        hl.http.request("DELETE", f"{LOCATION}/tags/{by_name(w, 'tags')[tag]['id']}",
                        idempotent=True)
        hl.http.request("DELETE", f"{LOCATION}/customValues/{gone['id']}", idempotent=True)
        hl.update_custom_value(edited["id"], {"name": edited["name"], "value": "changed"})
    finally:
        hl.close()
    assert tag not in by_name(w, "tags") and not carrying(w, tag)
    return {"as_of": as_of, "tag": tag, "holders": holders, "gone": gone, "edited": edited,
            "others": values[2:]}


def test_tag_and_custom_values_come_back_before_the_contacts(sandbox_world: World,
                                                             damaged: dict) -> None:
    w, d = sandbox_world, damaged
    plan = preview(w.root, "highlevel", d["as_of"])
    c = plan.counts
    assert (c["tag_create"], c["custom_value_create"], c["custom_value_update_records"]) == (
        1, 1, 1)
    assert c["update_records"] == len(d["holders"])       # the contacts lost the tag
    section = plan.markdown.split("### Location tags and custom values (HighLevel)")[1]
    for line in (f"| tag to recreate | {d['tag']} |",
                 f"| custom value to recreate | {d['gone']['name']} |",
                 f"| custom value to put back | {d['edited']['name']} |"):
        assert line in section

    applied = apply_plan(w.root, plan.plan_id)
    assert applied["failed_permanent"] == applied["failed_retryable"] == 0
    tags = [t for t in w.sandbox_docs("highlevel", "tags").values() if t["name"] == d["tag"]]
    assert len(tags) == 1
    assert carrying(w, d["tag"]) == d["holders"]
    values = by_name(w, "custom_values")
    assert values[d["gone"]["name"]]["value"] == d["gone"]["value"]
    assert values[d["gone"]["name"]]["id"] != d["gone"]["id"]       # recreated: a new id
    assert values[d["edited"]["name"]] == d["edited"]                # put back, same id
    for v in d["others"]:
        assert values[v["name"]] == v
    (location_done, first_contact_write), = ledger_rows(w.root, """
        SELECT max("at") FILTER (entity IN ('tags', 'custom_values') AND status = 'succeeded'),
               min("at") FILTER (entity = 'contacts')
        FROM restore_ledger WHERE plan_id = ?""", plan.plan_id)
    assert location_done < first_contact_write
    assert ledger_rows(w.root, "SELECT backup_id, live_id FROM restore_idmap WHERE entity = "
                       "'custom_values'") == [(d["gone"]["id"], values[d["gone"]["name"]]["id"])]

    rerun = apply_plan(w.root, plan.plan_id)             # the same plan again: nothing sent
    assert rerun["succeeded"] == 0 and rerun["changes_still_needed"] == 0
    assert written(preview(w.root, "highlevel", d["as_of"]).counts) == {}


def test_a_custom_value_create_whose_reply_was_lost_is_found_by_name(sandbox_world: World,
                                                                     damaged: dict) -> None:
    w, d = sandbox_world, damaged
    value = d["others"][0]
    hl = HighLevelResource(requests_per_window=10_000).open()
    try:
        hl.http.request("DELETE", f"{LOCATION}/customValues/{value['id']}", idempotent=True)
        plan = preview(w.root, "highlevel", d["as_of"])
        assert written(plan.counts) == {"custom_value_create": 1}
        lost_create_applied(w, plan.plan_id, "custom_values", value["id"], value["name"],
                            hl.create_custom_value)
    finally:
        hl.close()
    assert written(preview(w.root, "highlevel", d["as_of"]).counts) == {}
