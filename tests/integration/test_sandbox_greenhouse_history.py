"""The rest of the Greenhouse candidate record in the emulated Harvest v3 API (issue 17), over a
real socket: scorecards, notes, attachments, applied candidate tags and their reference data
(candidate tags, custom fields, close reasons, job posts) fit the vendored v3 item schemas in a
generated world after days of life; they page, filter and refuse like every v3 list; an
attachment's url downloads its file, and a download can be made to fail."""

from __future__ import annotations

import httpx
import pytest

from sandbox.greenhouse.lists import ENTITIES
from sandbox.world import generate as world
from sandbox.world import life
from sandbox.world.ats_history import file_bytes
from tests.conftest import Sandbox
from tests.integration.contract import assert_conforms, load_schema
from tests.integration.test_sandbox_greenhouse import SCHEMAS, Harvest, ids_of

HISTORY = ("scorecards", "notes", "attachments", "applied_candidate_tags", "candidate_tags",
           "custom_fields", "close_reasons", "job_posts")


@pytest.fixture
def harvest(sandbox: Sandbox) -> Harvest:
    world.generate(sandbox.data_dir, candidates=120, seed=5)
    life.tick(sandbox.store, days=2)
    return Harvest(sandbox)


def test_every_history_entity_is_served_and_fits_its_v3_schema(harvest: Harvest) -> None:
    assert set(HISTORY) <= set(ENTITIES)
    for entity in HISTORY:
        docs = [d for page in harvest.walk(entity, {"per_page": 200}) for d in page.json()]
        assert docs, f"the world has no {entity}"
        schema = load_schema(SCHEMAS / f"{entity}.json")
        for doc in docs:
            assert_conforms(doc, schema, f"{entity} {doc['id']}")
        assert [d["id"] for d in docs] == sorted((d["id"] for d in docs), reverse=True)


def test_the_record_hangs_together(harvest: Harvest) -> None:
    walk = {e: [d for p in harvest.walk(e, {"per_page": 500}) for d in p.json()]
            for e in ("candidates", "applications", "notes", "scorecards", "attachments",
                      "applied_candidate_tags", "candidate_tags", "jobs", "job_posts")}
    candidates = {d["id"]: d for d in walk["candidates"]}
    applications = {d["id"] for d in walk["applications"]}
    tags = {d["id"]: d["name"] for d in walk["candidate_tags"]}
    assert {n["candidate_id"] for n in walk["notes"]} <= set(candidates)
    assert {s["application_id"] for s in walk["scorecards"]} <= applications
    assert {a["application_id"] for a in walk["attachments"]} <= applications
    for applied in walk["applied_candidate_tags"]:
        assert tags[applied["candidate_tag_id"]] in candidates[applied["candidate_id"]]["tags"]
    assert {p["job_id"] for p in walk["job_posts"]} == {j["id"] for j in walk["jobs"]}
    # some notes quote the candidate's own address or phone: what an erasure must reach
    quoting = [n for n in walk["notes"] if any(
        e["value"] in (n["body"] or "") or e["value"] == n["email_to"]
        for e in candidates[n["candidate_id"]]["email_addresses"])]
    assert quoting
    assert "complete" in {s["status"] for s in walk["scorecards"]}


def test_history_lists_filter_like_every_v3_list(harvest: Harvest) -> None:
    notes = [d for p in harvest.walk("notes", {"per_page": 500}) for d in p.json()]
    cid = notes[0]["candidate_id"]
    own = ids_of(harvest.walk("notes", {"candidate_id": str(cid), "per_page": 1}))
    assert own == sorted((n["id"] for n in notes if n["candidate_id"] == cid), reverse=True)
    cards = [d for p in harvest.walk("scorecards", {"per_page": 500}) for d in p.json()]
    since = sorted(c["updated_at"] for c in cards)[-5]
    recent = ids_of(harvest.walk("scorecards", {"updated_at": f"gte|{since}", "per_page": 2}))
    assert recent == sorted((c["id"] for c in cards if c["updated_at"] >= since), reverse=True)
    refused = harvest.get("/v3/candidate_tags", {"candidate_id": "1"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "candidate_id"


def test_an_attachment_url_downloads_its_file_and_a_lost_one_fails(harvest: Harvest) -> None:
    first, second = harvest.get("/v3/attachments", {"per_page": 2}).json()
    url = httpx.URL(first["url"])
    assert url.host == httpx.URL(harvest.sandbox.base_url).host   # the serving origin
    r = httpx.get(first["url"])   # a pre-signed link: no bearer token
    assert r.status_code == 200
    assert r.content == file_bytes(first) and r.content.startswith(b"%PDF")
    assert harvest.get(f"/v3/attachments/{first['id']}").json()["url"] == first["url"]
    harvest.sandbox.admin("PUT", "/files/greenhouse/lost", json={"ids": [first["id"]]})
    lost = httpx.get(first["url"])
    assert lost.status_code == 404
    assert b"<Code>NoSuchKey</Code>" in lost.content
    assert httpx.get(second["url"]).status_code == 200
    # every file downloads, names in any script included
    for doc in [d for p in harvest.walk("attachments", {"per_page": 500}) for d in p.json()]:
        if doc["id"] != first["id"]:
            assert httpx.get(doc["url"]).content == file_bytes(doc), doc["id"]
    harvest.sandbox.admin("PUT", "/files/greenhouse/lost",
                          json={"ids": [second["id"]], "status": 500})
    assert httpx.get(second["url"]).status_code == 500
    bad = httpx.put(harvest.sandbox.url("/_sandbox/files/greenhouse/lost"),
                    json={"ids": [1], "status": 418})
    assert bad.status_code == 400
