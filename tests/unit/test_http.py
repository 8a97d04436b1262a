"""The shared HTTP layer: retries, Retry-After, pacing, write safety (one function each)."""

from __future__ import annotations

import time

import httpx
import pytest

from orchestration.http import (
    ApiError,
    HttpClient,
    MalformedResponseError,
    Pacer,
    RetryPolicy,
    paginate_link_header,
)

FAST = RetryPolicy(max_attempts=5, base_delay=0.01, max_delay=0.05, min_retry_after=0.05,
                   max_total_seconds=5)


def client_for(replies: list, **kw) -> tuple[HttpClient, list[httpx.Request]]:
    """A client whose transport answers with `replies` in order (a status, (status, headers,
    body) or an exception to raise)."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        reply = replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, int):
            return httpx.Response(reply, json={"ok": reply})
        status, headers, body = reply
        return httpx.Response(status, headers=headers, content=body)

    kw.setdefault("retry", FAST)
    return HttpClient("http://api.test", name="test", transport=httpx.MockTransport(handle),
                      seed=1, **kw), seen


def test_retries_5xx_then_succeeds_and_counts_calls():
    c, seen = client_for([500, 502, 200])
    assert c.get_json("/x") == {"ok": 200}
    assert len(seen) == 3 and c.calls == 3 and c.retries == 2


def test_retry_after_zero_is_not_a_hot_loop():
    c, seen = client_for([(429, {"Retry-After": "0"}, b"{}")] * 3 + [200])
    t0 = time.monotonic()
    c.get_json("/x")
    # three waits of at least the 0.05 s floor
    assert time.monotonic() - t0 >= 0.15
    assert len(seen) == 4


def test_retry_after_seconds_is_honoured_beyond_backoff_cap():
    c, _ = client_for([(429, {"Retry-After": "0.3"}, b"{}"), 200])
    t0 = time.monotonic()
    c.get_json("/x")
    assert time.monotonic() - t0 >= 0.3


def test_gives_up_after_budget_naming_the_request():
    c, seen = client_for([503] * 10)
    with pytest.raises(ApiError, match=r"GET /contacts still failing after 5 attempts.*HTTP 503"):
        c.get_json("/contacts")
    assert len(seen) == 5


def test_client_errors_are_not_retried():
    c, seen = client_for([(400, {}, b'{"message": "bad email"}')])
    with pytest.raises(ApiError) as e:
        c.get_json("/x")
    assert e.value.status == 400 and "bad email" in str(e.value) and len(seen) == 1
    assert not e.value.retryable


def test_malformed_json_is_retried_then_reported():
    c, seen = client_for([(200, {"content-type": "application/json"}, b'{"data": [')] * 5)
    with pytest.raises(MalformedResponseError, match="GET /x kept answering malformed JSON"):
        c.get_json("/x")
    assert len(seen) == 5


def test_dropped_connection_retried_for_reads_not_for_creates():
    c, seen = client_for([httpx.RemoteProtocolError("peer closed"), 200])
    assert c.get_json("/x") == {"ok": 200}
    c2, seen2 = client_for([httpx.ReadTimeout("slow"), 200])
    with pytest.raises(ApiError, match="not resent because it may have been applied"):
        c2.request("POST", "/contacts", json_body={})
    assert len(seen2) == 1


def test_create_is_resent_after_429_and_connect_errors():
    c, seen = client_for([(429, {}, b""), httpx.ConnectError("refused"), 201])
    assert c.request("POST", "/contacts", json_body={}).status_code == 201
    assert len(seen) == 3


def test_401_refreshes_token_once():
    calls = []

    def auth(force: bool) -> dict[str, str]:
        calls.append(force)
        return {"Authorization": f"Bearer t{len(calls)}"}

    c, seen = client_for([401, 200], auth=auth)
    c.get_json("/x")
    assert True in calls and seen[-1].headers["Authorization"] != seen[0].headers["Authorization"]
    c3, _ = client_for([401, 401], auth=auth)
    with pytest.raises(ApiError):
        c3.get_json("/x")


def test_pacer_never_exceeds_any_window():
    p = Pacer([(5, 0.2), (8, 0.5)], safety=0.0)
    stamps = []
    for _ in range(12):
        p.acquire()
        stamps.append(time.monotonic())
    for t in stamps:
        assert sum(1 for u in stamps if t - 0.2 < u <= t) <= 5
        assert sum(1 for u in stamps if t - 0.5 < u <= t) <= 8


def test_link_header_pagination_follows_next_url_verbatim():
    pages = [
        (200, {"Link": '<http://api.test/v3/c?cursor=abc>; rel="next"'}, b'[{"id": 1}]'),
        (200, {}, b'[{"id": 2}]'),
    ]
    c, seen = client_for(pages)
    got = [r["id"] for page in paginate_link_header(c, "/v3/c", {"per_page": 1}) for r in page]
    assert got == [1, 2]
    assert str(seen[1].url) == "http://api.test/v3/c?cursor=abc"


def test_concurrent_pages_yields_every_page_once_and_raises_the_first_error():
    from orchestration.http import concurrent_pages

    sources = [iter([[{"id": i * 10 + j}] for j in range(5)]) for i in range(4)]
    got = sorted(r["id"] for page in concurrent_pages(sources, workers=2) for r in page)
    assert got == sorted(i * 10 + j for i in range(4) for j in range(5))

    def broken():
        yield [{"id": 1}]
        raise ApiError("boom", method="GET", url="/x")

    with pytest.raises(ApiError, match="boom"):
        list(concurrent_pages([broken(), iter([[{"id": 2}]] * 50)], workers=2, max_buffered=2))
