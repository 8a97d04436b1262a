"""Finding a HighLevel contact a killed restore created (reply lost) when it has neither email
nor phone: `_lost_create_by_name` over a fake client (below the resource: the search call's
filters are asserted; the e2e crash test runs it against the sandbox)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from assets.backups.restore_highlevel import _lost_create_by_name

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
