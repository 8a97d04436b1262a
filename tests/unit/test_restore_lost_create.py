"""Finding the contact a killed restore created (reply lost): HighLevel contacts with neither
email nor phone (`_lost_create_by_name`) and Keap contacts by their address
(`_made_by_lost_reply` of restore/keap.py), over fake clients below the resource (the filters
are asserted; the e2e crash test runs both against the sandbox)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from assets.recovery.restore.highlevel import _lost_create_by_name
from assets.recovery.restore.keap import _made_by_lost_reply

SINCE = "2026-01-05T00:00:01.000Z"
RUNNER = SimpleNamespace(ledger=SimpleNamespace(plan_id="rp-test-1"))


class FakeSearch:
    """Answers `contacts_added_since` with fixed contacts; remembers what it was asked."""

    def __init__(self, contacts: list[dict[str, Any]]):
        self.contacts, self.asked = contacts, []

    def contacts_added_since(self, since: str, *, first_name: str | None,
                             last_name: str | None, limit: int) -> list[dict[str, Any]]:
        self.asked.append((since, first_name, last_name))
        return self.contacts


def find(contacts: list[dict], body: dict, taken: set[str] = frozenset()) -> str | None:
    client = FakeSearch(contacts)
    found = _lost_create_by_name(client, RUNNER, body, "w1", "b1", SINCE, set(taken))
    assert client.asked == [(SINCE, body.get("firstName"), body.get("lastName"))]
    return found


BODY = {"firstName": "Ada", "lastName": "Quill", "companyName": "X"}


def test_one_candidate_is_adopted() -> None:
    assert find([{"id": "c9", "firstName": "ada", "lastName": "QUILL"}], BODY) == "c9"


def test_none_means_create() -> None:
    assert find([], BODY) is None


def test_taken_other_name_or_keyed_contacts_are_not_candidates() -> None:
    contacts = [{"id": "c1", "firstName": "Ada", "lastName": "Quill"},           # taken
                {"id": "c2", "firstName": "Ada", "lastName": "Quill", "email": "a@x.io"},
                {"id": "c3", "firstName": "Ada", "lastName": "Quill", "phone": "+15550100"},
                {"id": "c4", "firstName": "Ada", "lastName": "Quilt"},           # other name
                {"id": "c5", "firstName": "Ada", "lastName": "Quill"}]
    assert find(contacts, BODY, taken={"c1"}) == "c5"


def test_missing_last_name_matches_only_contacts_without_one() -> None:
    contacts = [{"id": "c1", "firstName": "Ada", "lastName": "Quill"}, {"id": "c2",
                                                                        "firstName": "Ada"}]
    assert find(contacts, {"firstName": "Ada"}) == "c2"


def test_two_candidates_stop_with_the_plan_row_and_the_fix() -> None:
    contacts = [{"id": "c7", "firstName": "Ada", "lastName": "Quill"},
                {"id": "c8", "firstName": "Ada", "lastName": "Quill"}]
    with pytest.raises(ValueError) as e:
        find(contacts, BODY)
    text = str(e.value)
    assert "w1" in text and "b1" in text and "rp-test-1" in text and "c7, c8" in text
    assert "restore apply rp-test-1" in text
    assert "Ada" not in text and "Quill" not in text     # no personal values


class FakeKeapHttp:
    """Answers GET /rest/v2/contacts with fixed contacts (one page); remembers the params."""

    def __init__(self, contacts: list[dict[str, Any]]):
        self.contacts, self.asked = contacts, []

    def get_json(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((path, dict(params)))
        return {"contacts": self.contacts, "next_page_token": ""}


def keap_find(contacts: list[dict], taken: set[str] = frozenset()) -> str | None:
    http = FakeKeapHttp(contacts)
    body = {"email_addresses": [{"field": "EMAIL1", "email": "Ada.Q@x.org"},
                                {"field": "EMAIL2", "email": "b@x.org"}]}
    found = _made_by_lost_reply(SimpleNamespace(http=http), body, set(taken), SINCE)
    assert [(p, q["filter"]) for p, q in http.asked] == [
        ("/rest/v2/contacts", "email==Ada.Q@x.org")]
    return found


def keap(cid: str, address: str, created: str = "2026-01-05T00:00:02.000Z",
         primary: str | None = None) -> dict[str, Any]:
    """A contact holding `address` (as EMAIL2 when another `primary` address is EMAIL1)."""
    emails = [{"field": "EMAIL1", "email": primary}] if primary else []
    return {"id": cid, "create_time": created, "email_addresses": emails + [
        {"field": "EMAIL2" if primary else "EMAIL1", "email": address}]}


def test_keap_lost_create_is_found_by_address_through_the_api() -> None:
    assert keap_find([keap("41", " ada.q@X.org ")]) == "41"
    assert keap_find([]) is None


def test_keap_lost_create_skips_matched_older_and_secondary_address_contacts() -> None:
    contacts = [keap("40", "Ada.Q@x.org"),                                 # matched / adopted
                keap("41", "Ada.Q@x.org", created="2026-01-04T23:00:00.000Z"),  # before preview
                keap("42", "Ada.Q@x.org", primary="c@x.org"),             # not its primary
                keap("43", "Ada.Q@x.org"), keap("9", "Ada.Q@x.org")]
    assert keap_find(contacts, taken={"40"}) == "43"                       # the newest
    assert keap_find(contacts, taken={"40", "43", "9"}) is None
