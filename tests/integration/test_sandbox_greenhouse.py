"""The emulated Greenhouse Harvest v3 API over a real socket: what a Harvest client relies on.

Token flow, list shapes (each entity's records fit the published v3 item schema), cursor
pagination through the Link header, filters, deletions, and the rate limit.
"""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from sandbox import credentials, records
from sandbox.greenhouse.vendor import RATE_LIMIT, RATE_WINDOW_SECONDS
from sandbox.store import iso
from tests.conftest import SPECS, Sandbox
from tests.integration.contract import assert_conforms, load_schema

SCHEMAS = SPECS / "ats" / "greenhouse-harvest-v3-schemas"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# -- realistic v3 records --------------------------------------------------------------------

def _times(i: int) -> dict[str, str]:
    return {"created_at": iso(T0 - timedelta(days=30) + timedelta(hours=i)),
            "updated_at": iso(T0 + timedelta(minutes=i))}


def candidate(i: int) -> dict[str, Any]:
    return {
        "id": i, **_times(i), "first_name": f"Ada{i}", "last_name": "Lovelace",
        "preferred_name": None, "company": "Analytical Engines Ltd", "title": "Engineer",
        "last_activity_at": iso(T0 + timedelta(minutes=i)), "private": False, "can_email": True,
        "time_zone": "Eastern Time (US & Canada)", "tags": ["Python"], "linked_user_ids": [],
        "phone_numbers": [{"value": "+1 555 0100", "type": "mobile"}],
        "addresses": [{"value": "1 Main St, Springfield", "type": "home"}],
        "email_addresses": [{"value": f"ada{i}@example.com", "type": "personal"}],
        "website_addresses": [{"value": "https://ada.example.com", "type": "personal"}],
        "social_media_addresses": [{"value": "https://linkedin.com/in/ada"}],
        "custom_fields": {"desired_salary": {"name": "Desired salary", "type": "short_text",
                                             "value": "120000"}},
    }


def application(i: int, candidate_id: int = 1) -> dict[str, Any]:
    return {
        "id": i, **_times(i), "agency_note_id": None, "candidate_id": candidate_id,
        "coordinator_id": 11, "job_id": 7, "job_post_id": 70, "recruiter_id": 12,
        "referrer_id": None, "source_id": 3, "stage_id": 501, "stage_name": "Phone Screen",
        "status": "in_process", "needs_decision": False, "prospect": False, "rejected_at": None,
        "last_activity_at": iso(T0), "location_address": "Remote",
        "answers": [{"question": "Why us?", "answer": "Mission."}], "prospective_job_ids": [],
        "custom_fields": None,
    }


def job(i: int) -> dict[str, Any]:
    return {
        "id": i, **_times(i), "name": "Data Engineer", "requisition_id": f"REQ-{i}",
        "notes": None, "confidential": False, "status": "open", "opened_at": iso(T0),
        "closed_at": None, "is_template": False, "copied_from_id": None, "department_id": 4,
        "office_ids": [2], "custom_fields": None,
    }


def job_interview_stage(i: int) -> dict[str, Any]:
    return {"id": i, **_times(i), "job_id": 7, "sort_order": i % 5, "name": "Phone Screen",
            "active": True}


def application_stage(i: int) -> dict[str, Any]:
    return {"id": i, **_times(i), "application_id": 40, "job_interview_stage_id": 501,
            "entered_at": iso(T0), "exited_at": None, "days_in_stage": 3, "current": True}


def offer(i: int) -> dict[str, Any]:
    return {"id": i, **_times(i), "version": 1, "application_id": 40, "job_id": 7,
            "candidate_id": 1, "opening_id": None, "status": "Created", "starts_on": "2026-03-01",
            "sent_on": "2026-01-20", "resolved_at": None, "custom_fields": None}


def interview(i: int) -> dict[str, Any]:
    return {"id": i, **_times(i), "job_id": 7, "application_id": 40, "job_interview_id": 9,
            "starts_at": iso(T0 + timedelta(days=2)),
            "ends_at": iso(T0 + timedelta(days=2, hours=1)),
            "location": "Zoom", "status": "scheduled", "organizer_id": 11,
            "scheduled_at": iso(T0), "all_day_start_on": None, "all_day_end_on": None,
            "external_event_id": None, "video_conferencing_url": "https://zoom.example.com/j/1",
            "availability_received_at": None}


def rejection_reason(i: int) -> dict[str, Any]:
    return {"id": i, **_times(i), "name": "Lacking skill(s)",
            "type": {"id": 1, "key": "WE_REJECTED_THEM", "name": "We rejected them"}}


def rejection_detail(i: int) -> dict[str, Any]:
    return {"id": i, **_times(i), "application_id": 40, "rejected_by_id": 11,
            "rejection_note_id": None, "rejection_reason_id": 2, "rejected_at": iso(T0),
            "question_custom_fields": None}


def user(i: int) -> dict[str, Any]:
    return {"id": i, **_times(i), "first_name": "Grace", "last_name": "Hopper",
            "primary_email": f"grace{i}@example.com", "job_title": "Recruiter",
            "agency_id": None, "name": "Grace Hopper", "deactivated": False, "site_admin": False,
            "employee_id": None, "linked_candidate_ids": [], "office_ids": [2],
            "department_ids": [4], "interviewer_tags": [{"id": 1, "name": "Technical"}],
            "emails": [f"grace{i}@example.com"], "custom_fields": None}


FACTORIES: dict[str, Callable[[int], dict[str, Any]]] = {
    "candidates": candidate, "applications": application, "jobs": job,
    "job_interview_stages": job_interview_stage, "application_stages": application_stage,
    "offers": offer, "interviews": interview, "rejection_reasons": rejection_reason,
    "rejection_details": rejection_detail, "users": user,
}


# -- a minimal Harvest v3 client -------------------------------------------------------------

def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def request_token(sandbox: Sandbox, secret: str = credentials.GREENHOUSE_CLIENT_SECRET,
                  **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "sub": str(credentials.GREENHOUSE_USER_ID)}
    return httpx.post(sandbox.url("/greenhouse/auth/token"), data={**data, **form},
                      headers={"Authorization": basic(credentials.GREENHOUSE_CLIENT_ID, secret)})


class Harvest:
    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=sandbox.url("/greenhouse"), timeout=30)
        self.login()

    def login(self) -> None:
        r = request_token(self.sandbox)
        assert r.status_code == 200, r.text
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def get(self, path: str, params: Any = None) -> httpx.Response:
        return self.http.get(path, params=params)

    def walk(self, entity: str, params: Any = None) -> list[httpx.Response]:
        """Every page of a list, following rel="next" exactly as the docs say."""
        pages = [self.get(f"/v3/{entity}", params)]
        while "next" in pages[-1].links:
            assert pages[-1].status_code == 200, pages[-1].text
            pages.append(self.http.get(pages[-1].links["next"]["url"]))
        assert pages[-1].status_code == 200, pages[-1].text
        return pages


def ids_of(pages: list[httpx.Response]) -> list[int]:
    return [doc["id"] for page in pages for doc in page.json()]


@pytest.fixture
def harvest(sandbox: Sandbox) -> Harvest:
    return Harvest(sandbox)


def put(sandbox: Sandbox, entity: str, docs: list[dict[str, Any]]) -> None:
    records.save_many(sandbox.store, "greenhouse", entity, docs)


# -- token flow ------------------------------------------------------------------------------

def test_token_endpoint_issues_bearer_tokens_for_the_sandbox_client(sandbox: Sandbox) -> None:
    r = request_token(sandbox)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert 3500 <= body["expires_in"] <= 3600
    assert body["access_token"].count(".") == 2  # a JWT, as v3 issues


@pytest.mark.parametrize(("secret", "form", "status", "error"), [
    ("wrong-secret", {}, 401, "invalid_client"),
    (credentials.GREENHOUSE_CLIENT_SECRET, {"grant_type": "password"}, 400,
     "unsupported_grant_type"),
    (credentials.GREENHOUSE_CLIENT_SECRET, {"sub": ""}, 400, "invalid_request"),
    (credentials.GREENHOUSE_CLIENT_SECRET, {"sub": "grace"}, 400, "invalid_request"),
])
def test_token_endpoint_refuses_bad_requests(sandbox: Sandbox, secret: str, form: dict,
                                             status: int, error: str) -> None:
    r = request_token(sandbox, secret, **form)
    assert r.status_code == status
    assert r.json()["error"] == error
    assert r.json()["error_description"]


def test_api_calls_need_a_valid_bearer_token(sandbox: Sandbox) -> None:
    url = sandbox.url("/greenhouse/v3/candidates")
    missing = httpx.get(url)
    assert missing.status_code == 401
    assert "Bearer" in missing.json()["message"]
    unknown = httpx.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401
    assert "invalid" in unknown.json()["message"].lower()
    v1_style = httpx.get(url, headers={"Authorization": basic("some-v1-api-key", "")})
    assert v1_style.status_code == 401


def test_expired_token_is_refused_until_the_client_fetches_a_new_one(harvest: Harvest) -> None:
    assert harvest.get("/v3/candidates").status_code == 200
    assert harvest.sandbox.admin("POST", "/tokens/expire")["expired"] >= 1
    expired = harvest.get("/v3/candidates")
    assert expired.status_code == 401
    assert "expired" in expired.json()["message"].lower()
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    harvest.login()
    assert harvest.get("/v3/candidates").status_code == 200


def test_injected_expired_token_fault_looks_like_a_real_expiry(harvest: Harvest) -> None:
    harvest.sandbox.queue_faults("greenhouse", ["expired_token"])
    r = harvest.get("/v3/jobs")
    assert r.status_code == 401
    assert "expired" in r.json()["message"].lower()
    assert harvest.get("/v3/jobs").status_code == 200


# -- shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("entity", sorted(FACTORIES))
def test_list_records_fit_the_published_v3_schema(sandbox: Sandbox, harvest: Harvest,
                                                  entity: str) -> None:
    put(sandbox, entity, [FACTORIES[entity](i) for i in (3, 1, 2)])
    r = harvest.get(f"/v3/{entity}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body, list)  # a bare array, no envelope
    assert [d["id"] for d in body] == [3, 2, 1]  # id descending
    schema = load_schema(SCHEMAS / f"{entity}.json")
    for doc in body:
        assert_conforms(doc, schema, f"{entity} {doc['id']}")


def test_get_one_record_and_404_for_a_missing_one(sandbox: Sandbox, harvest: Harvest) -> None:
    put(sandbox, "jobs", [job(5)])
    assert harvest.get("/v3/jobs/5").json() == job(5)
    missing = harvest.get("/v3/jobs/6")
    assert missing.status_code == 404
    assert "6" in missing.json()["message"]
    assert harvest.get("/v3/widgets").status_code == 404


def test_deleted_candidate_vanishes_from_lists_and_lookups(sandbox: Sandbox,
                                                           harvest: Harvest) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 6)])
    assert sandbox.store.delete("greenhouse", "candidates", 3, at=T0, merged_into=4)
    assert ids_of(harvest.walk("candidates", {"per_page": 2})) == [5, 4, 2, 1]
    assert harvest.get("/v3/candidates/3").status_code == 404
    assert harvest.get("/v3/candidates", {"ids": "3"}).json() == []


# -- pagination ------------------------------------------------------------------------------

PER_PAGE = 5


@pytest.mark.parametrize("n", [0, 1, PER_PAGE - 1, PER_PAGE, PER_PAGE + 1, 7 * PER_PAGE + 3])
def test_pages_return_each_record_exactly_once(sandbox: Sandbox, harvest: Harvest,
                                               n: int) -> None:
    put(sandbox, "applications", [application(i) for i in range(1, n + 1)])
    pages = harvest.walk("applications", {"per_page": PER_PAGE})
    assert ids_of(pages) == list(range(n, 0, -1))
    assert len(pages) == max(1, math.ceil(n / PER_PAGE))  # no empty trailing page
    assert all(len(p.json()) == PER_PAGE for p in pages[:-1])
    assert "next" not in pages[-1].links


def test_next_link_carries_only_an_opaque_cursor(sandbox: Sandbox, harvest: Harvest) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 4)])
    first = harvest.get("/v3/candidates", {"per_page": 1, "updated_at": f"gte|{iso(T0)}"})
    url = httpx.URL(first.links["next"]["url"])
    assert url.path == "/greenhouse/v3/candidates"
    assert list(url.params.keys()) == ["cursor"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", url.params["cursor"])  # URL-safe base64
    assert re.search(r'<[^>]+>; rel="next"', first.headers["Link"])


@pytest.mark.parametrize("extra", [{"per_page": "2"}, {"updated_at": "gte|2026-01-01T00:00:00Z"}])
def test_cursor_with_any_other_parameter_is_refused(sandbox: Sandbox, harvest: Harvest,
                                                    extra: dict[str, str]) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 4)])
    cursor = httpx.URL(harvest.get("/v3/candidates", {"per_page": 1}).links["next"]["url"])
    r = harvest.get("/v3/candidates", {**dict(cursor.params), **extra})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "cursor"
    assert "only" in r.json()["message"]


def test_foreign_or_forged_cursors_are_refused(sandbox: Sandbox, harvest: Harvest) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 4)])
    put(sandbox, "jobs", [job(i) for i in range(1, 4)])
    cursor = httpx.URL(harvest.get("/v3/jobs", {"per_page": 1}).links["next"]["url"])
    own = httpx.URL(harvest.get("/v3/candidates", {"per_page": 1}).links["next"]["url"])
    decoded = json.loads(base64.urlsafe_b64decode(own.params["cursor"] + "=="))
    forged = {**decoded, "id_filters": {"id') IS NOT NULL OR ('1": [1]}}
    for bad in (cursor.params["cursor"], "not-a-cursor",
                base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()):
        r = harvest.get("/v3/candidates", {"cursor": bad})
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == "cursor"


def test_cursor_pages_keep_the_filters_of_the_first_request(sandbox: Sandbox,
                                                            harvest: Harvest) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 31)])
    window = {"updated_at": [f"gte|{iso(T0 + timedelta(minutes=5))}",
                             f"lte|{iso(T0 + timedelta(minutes=24))}"], "per_page": 3}
    assert ids_of(harvest.walk("candidates", window)) == list(range(24, 4, -1))


def test_per_page_defaults_to_100_and_accepts_1_to_500(sandbox: Sandbox,
                                                       harvest: Harvest) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 502)])
    default = harvest.get("/v3/candidates")
    assert len(default.json()) == 100 and "next" in default.links
    assert len(harvest.get("/v3/candidates", {"per_page": 500}).json()) == 500
    assert len(harvest.get("/v3/candidates", {"per_page": 1}).json()) == 1


@pytest.mark.parametrize("value", ["0", "501", "-3", "ten", ""])
def test_per_page_out_of_bounds_is_refused(harvest: Harvest, value: str) -> None:
    r = harvest.get("/v3/candidates", {"per_page": value})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["per_page"]
    assert "per_page" in r.json()["message"]


# -- filters ---------------------------------------------------------------------------------

def _at(minutes: int) -> str:
    return iso(T0 + timedelta(minutes=minutes))


@pytest.mark.parametrize(("params", "expected"), [
    ({"updated_at": f"gte|{_at(3)}"}, range(10, 2, -1)),
    ({"updated_at": f"gt|{_at(3)}"}, range(10, 3, -1)),
    ({"updated_at": f"lte|{_at(6)}"}, range(6, 0, -1)),
    ({"updated_at": f"lt|{_at(6)}"}, range(5, 0, -1)),
    ({"updated_at": [f"gte|{_at(3)}", f"lte|{_at(6)}"]}, range(6, 2, -1)),
    ({"updated_at": f"gte|{_at(11)}"}, []),
    # the same instant written in another UTC offset
    ({"updated_at": "gte|" + (T0 + timedelta(minutes=3)).astimezone(
        timezone(timedelta(hours=2))).isoformat()}, range(10, 2, -1)),
    # a bound finer than the stored milliseconds still splits exactly
    ({"updated_at": f"gte|{(T0 + timedelta(minutes=3, microseconds=1)).isoformat()}"},
     range(10, 3, -1)),
    ({"updated_at": f"lte|{(T0 + timedelta(minutes=3, microseconds=1)).isoformat()}"},
     range(3, 0, -1)),
])
def test_updated_at_filters_are_exact_at_their_bounds(sandbox: Sandbox, harvest: Harvest,
                                                      params: dict, expected: range) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 11)])
    assert ids_of(harvest.walk("candidates", {**params, "per_page": 4})) == list(expected)


def test_unencoded_plus_in_an_offset_is_read_as_plus(sandbox: Sandbox, harvest: Harvest) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 11)])
    r = harvest.http.get("/v3/candidates?updated_at=gte|2026-01-05T11:03:00+02:00")
    assert [d["id"] for d in r.json()] == list(range(10, 2, -1))


def test_created_at_filter(sandbox: Sandbox, harvest: Harvest) -> None:
    put(sandbox, "jobs", [job(i) for i in range(1, 8)])
    since = iso(T0 - timedelta(days=30) + timedelta(hours=4))
    assert ids_of(harvest.walk("jobs", {"created_at": f"gte|{since}"})) == [7, 6, 5, 4]


@pytest.mark.parametrize(("params", "field"), [
    ({"updated_at": "2026-01-01T00:00:00Z"}, "updated_at"),
    ({"updated_at": "since|2026-01-01T00:00:00Z"}, "updated_at"),
    ({"updated_at": "gte|yesterday"}, "updated_at"),
    ({"created_at": "lt|2026-13-01"}, "created_at"),
    ({"ids": "1,two"}, "ids"),
    ({"ids": ",".join(str(i) for i in range(1, 52))}, "ids"),
    ({"updated_after": "2026-01-01T00:00:00Z"}, "updated_after"),  # a v1 habit
    ({"status": "open"}, "status"),  # candidates have no status filter
])
def test_invalid_filters_are_refused_naming_the_parameter(harvest: Harvest, params: dict,
                                                          field: str) -> None:
    r = harvest.get("/v3/candidates", params)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == field
    assert field in r.json()["message"]


def test_ids_filter_takes_up_to_50_ids(sandbox: Sandbox, harvest: Harvest) -> None:
    put(sandbox, "candidates", [candidate(i) for i in range(1, 61)])
    fifty = ",".join(str(i) for i in range(1, 51))
    assert ids_of(harvest.walk("candidates", {"ids": fifty, "per_page": 20})) == list(
        range(50, 0, -1))
    assert ids_of(harvest.walk("candidates", {"ids": "7,3,99"})) == [7, 3]


def test_parent_and_status_filters(sandbox: Sandbox, harvest: Harvest) -> None:
    apps = [application(i, candidate_id=100 + i % 3) for i in range(1, 13)]
    for a in apps[:4]:
        a["status"] = "hired"
    put(sandbox, "applications", apps)
    by_one = harvest.walk("applications", {"candidate_id": "101", "per_page": 2})
    assert ids_of(by_one) == [10, 7, 4, 1]
    by_two = harvest.get("/v3/applications", {"candidate_ids": "101,102"}).json()
    assert [d["id"] for d in by_two] == [11, 10, 8, 7, 5, 4, 2, 1]
    hired = harvest.get("/v3/applications", {"status": "hired", "candidate_id": "101"}).json()
    assert [d["id"] for d in hired] == [4, 1]
    assert harvest.get("/v3/applications", {"status": "pending"}).status_code == 422


def test_updates_out_of_id_order_still_page_by_id_descending(sandbox: Sandbox,
                                                             harvest: Harvest) -> None:
    docs = [candidate(i) for i in range(1, 41)]
    for d in docs:
        d["updated_at"] = iso(T0 + timedelta(seconds=(d["id"] * 7919) % 40))
    put(sandbox, "candidates", docs)
    since = iso(T0 + timedelta(seconds=10))
    expected = sorted((d["id"] for d in docs if d["updated_at"] >= since), reverse=True)
    got = ids_of(harvest.walk("candidates", {"updated_at": f"gte|{since}", "per_page": 6}))
    assert got == expected


# -- rate limit ------------------------------------------------------------------------------

def test_every_reply_carries_rate_limit_headers(harvest: Harvest) -> None:
    first, second = harvest.get("/v3/jobs"), harvest.get("/v3/jobs")
    assert first.headers["X-RateLimit-Limit"] == str(RATE_LIMIT)
    assert int(second.headers["X-RateLimit-Remaining"]) == int(
        first.headers["X-RateLimit-Remaining"]) - 1
    reset = int(first.headers["X-RateLimit-Reset"])
    assert time.time() - 1 <= reset <= time.time() + RATE_WINDOW_SECONDS + 1


def test_a_burst_past_the_limit_gets_429_with_retry_after(harvest: Harvest) -> None:
    replies = [harvest.get("/v3/jobs") for _ in range(RATE_LIMIT + 1)]
    assert [r.status_code for r in replies[:RATE_LIMIT]] == [200] * RATE_LIMIT
    assert replies[RATE_LIMIT - 1].headers["X-RateLimit-Remaining"] == "0"
    refused = replies[RATE_LIMIT]
    assert refused.status_code == 429
    assert "rate limit" in refused.json()["message"].lower()
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= math.ceil(RATE_WINDOW_SECONDS)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Limit"] == str(RATE_LIMIT)
    reset = int(refused.headers["X-RateLimit-Reset"])
    assert abs(reset - (time.time() + int(retry_after))) <= 2


@pytest.mark.parametrize(("fault", "retry_after"), [
    ("429", "1"), ("429_retry_after_zero", "0"), ("429_no_retry_after", None)])
def test_injected_429s_keep_the_greenhouse_shape(harvest: Harvest, fault: str,
                                                 retry_after: str | None) -> None:
    harvest.sandbox.queue_faults("greenhouse", [fault])
    r = harvest.get("/v3/jobs")
    assert r.status_code == 429
    assert r.headers.get("Retry-After") == retry_after
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert "rate limit" in r.json()["message"].lower()
