"""The HTTP layer under every vendor client, written once.

- Pacing: a client-side sliding-window limiter per API keeps us under the vendor's published
  limits (several windows at once, e.g. 10/s and 240/min), and the vendor's own rate-limit
  headers pause us when the server says the window is spent.
- Retries: 429, 5xx, timeouts, dropped connections and malformed JSON bodies are retried with
  capped, jittered exponential backoff. `Retry-After` is honoured, but never below a floor, so a
  `Retry-After: 0` cannot become a hot loop; the whole budget is bounded in attempts and seconds.
- Writes that are not idempotent are retried only when the request cannot have reached the
  server (connect errors, 429, 503): a timeout after sending could have been applied.
- Every attempt is counted (`calls`), for the manifests and the "minimum calls" checks.

Vendor clients only describe their endpoints, auth and pagination (see resources/).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import orjson

if TYPE_CHECKING:
    from orchestration.rate_budget import SharedBudget

log = logging.getLogger("talentvault.http")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# statuses that prove the server did not apply the request, so even a create can be resent
NOT_APPLIED_STATUS = frozenset({429, 503})


class ApiError(Exception):
    """A request that failed for good: a non-retryable status, or the retry budget ran out."""

    def __init__(self, message: str, *, method: str, url: str, status: int | None = None,
                 body: str | None = None, attempts: int = 1):
        super().__init__(message)
        self.method, self.url, self.status, self.body, self.attempts = (
            method, url, status, body, attempts)

    @property
    def retryable(self) -> bool:
        """True when trying again later may succeed (rate limit, outage, timeouts)."""
        return self.status is None or self.status in RETRYABLE_STATUS


class MalformedResponseError(ApiError):
    """The server kept answering with a body that is not the JSON it promised."""


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay: float = 0.25        # first backoff, seconds
    max_delay: float = 30.0         # cap of one wait
    min_retry_after: float = 0.2    # floor under Retry-After (0 must not mean "immediately")
    max_total_seconds: float = 300.0  # budget for one request across all attempts

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff for the given (1-based) failed attempt."""
        return rng.uniform(self.base_delay / 2, min(self.max_delay,
                                                    self.base_delay * 2 ** (attempt - 1)))


@dataclass
class Pacer:
    """Client-side sliding windows: `acquire()` blocks until one more call fits in all of them.

    Thread-safe, so a bounded pool of workers shares one budget and never exceeds it.
    """

    windows: list[tuple[int, float]]            # (max calls, seconds)
    safety: float = 0.05                        # seconds of slack for clock skew and latency
    # every process using the same credential: one budget (orchestration/rate_budget.py)
    shared: SharedBudget | None = None
    _log: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _paused_until: float = 0.0

    def acquire(self) -> float:
        """Wait for a slot; returns seconds waited."""
        if not self.windows:
            return 0.0
        if self.shared is not None:
            return self.shared.acquire(self.windows, self.safety)
        waited = 0.0
        horizon = max(s for _, s in self.windows) + self.safety
        while True:
            with self._lock:
                now = time.monotonic()
                while self._log and self._log[0] <= now - horizon:
                    self._log.popleft()
                wait = max(0.0, self._paused_until - now)
                for limit, seconds in self.windows:
                    inside = [t for t in self._log if t > now - seconds - self.safety]
                    if len(inside) >= limit:
                        wait = max(wait, inside[-limit] + seconds + self.safety - now)
                if wait <= 0:
                    self._log.append(now)
                    return waited
            time.sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """The server said the window is spent: nobody calls for `seconds`."""
        if self.shared is not None:
            self.shared.pause(seconds)
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


AuthHook = Callable[[bool], Mapping[str, str]]
"""Returns auth headers; called with True after a 401 to force a token refresh."""


class HttpClient:
    """httpx.Client + pacing + retries + call counting, for one vendor API."""

    def __init__(self, base_url: str, *, name: str, auth: AuthHook | None = None,
                 headers: Mapping[str, str] | None = None, pacer: Pacer | None = None,
                 retry: RetryPolicy | None = None, timeout: float = 30.0,
                 rate_headers: Callable[[httpx.Response], float | None] | None = None,
                 is_auth_expired: Callable[[httpx.Response], bool] | None = None,
                 max_connections: int = 8, seed: int | None = None,
                 transport: httpx.BaseTransport | None = None):
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.pacer = pacer or Pacer([])
        self.retry = retry or RetryPolicy()
        self.rate_headers = rate_headers
        self.is_auth_expired = is_auth_expired or (lambda r: r.status_code == 401)
        self.client = httpx.Client(
            base_url=self.base_url, headers=dict(headers or {}),
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=max_connections,
                                max_keepalive_connections=max_connections),
            transport=transport,
        )
        self.calls = 0
        self.retries = 0
        self.rate_limited = 0  # 429 replies seen (the pacing should keep this at 0)
        self._rng = random.Random(seed)
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self.client.close()
        if self.pacer.shared is not None:
            self.pacer.shared.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one request loop -------------------------------------------------------------------
    def request(self, method: str, url: str, *, params: Any = None, json_body: Any = None,
                data: Any = None, headers: Mapping[str, str] | None = None,
                idempotent: bool | None = None, expect_json: bool = True,
                authenticate: bool = True, auth: Any = None,
                ok: Callable[[int], bool] = lambda s: 200 <= s < 300) -> httpx.Response:
        """Send one logical request, retrying what is safe to retry. Returns the response
        (with `.json()` already validated when expect_json) or raises ApiError."""
        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
        started = time.monotonic()
        attempt = 0
        refreshed = False
        last_problem = ""
        while True:
            attempt += 1
            self.pacer.acquire()
            hdrs = dict(headers or {})
            if self.auth and authenticate:
                hdrs.update(self.auth(False))
            with self._count_lock:
                self.calls += 1
                if attempt > 1:
                    self.retries += 1
            wait: float | None = None
            try:
                resp = self.client.request(method, url, params=params, json=json_body,
                                           data=data, headers=hdrs,
                                           **({"auth": auth} if auth else {}))
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
                last_problem = f"{type(e).__name__}: {e}"
            except httpx.TransportError as e:
                # timeouts / dropped connections after the request left: it may have been applied
                last_problem = f"{type(e).__name__}: {e}"
                if not idempotent:
                    raise ApiError(f"{self.name}: {method} {url} got no complete reply "
                                   f"({last_problem}); not resent because it may have been "
                                   "applied", method=method, url=url, attempts=attempt) from e
            else:
                self._observe_rate_headers(resp)
                status = resp.status_code
                if ok(status):
                    if not expect_json or not resp.content:
                        return resp
                    try:
                        # parsed once here; callers read `parsed_json(resp)` instead of re-parsing
                        resp.talentvault_json = loads(resp.content)
                        return resp
                    except (json.JSONDecodeError, UnicodeDecodeError) as e:
                        last_problem = f"malformed JSON body ({len(resp.content)} bytes): {e}"
                        if not idempotent:
                            raise MalformedResponseError(
                                f"{self.name}: {method} {url} answered {status} with "
                                f"{last_problem}", method=method, url=url, status=status,
                                body=resp.text[:500], attempts=attempt) from e
                        if attempt >= self.retry.max_attempts:
                            raise MalformedResponseError(
                                f"{self.name}: {method} {url} kept answering {last_problem} "
                                f"after {attempt} attempts", method=method, url=url,
                                status=status, body=resp.text[:500], attempts=attempt) from e
                elif (status == 401 and self.auth and authenticate and not refreshed
                      and self.is_auth_expired(resp)):
                    refreshed = True
                    self.auth(True)
                    attempt -= 1  # a token refresh is not a failed attempt
                    continue
                elif status in RETRYABLE_STATUS and (idempotent or status in NOT_APPLIED_STATUS):
                    last_problem = f"HTTP {status}"
                    wait = self._retry_after(resp)
                    if status == 429:
                        with self._count_lock:
                            self.rate_limited += 1
                    if status == 429 and wait is not None:
                        self.pacer.pause(wait)
                else:
                    raise ApiError(
                        f"{self.name}: {method} {url} failed with HTTP {status}: "
                        f"{resp.text[:300]}", method=method, url=url, status=status,
                        body=resp.text[:2000], attempts=attempt)
            # a failed attempt: wait, or give up
            elapsed = time.monotonic() - started
            delay = self.retry.backoff(attempt, self._rng)
            delay = min(delay, self.retry.max_delay)
            if wait is not None:  # the server's word wins over our backoff, even past the cap
                delay = max(delay if wait == 0 else 0.0, wait, self.retry.min_retry_after)
            if attempt >= self.retry.max_attempts or elapsed + delay > self.retry.max_total_seconds:
                raise ApiError(
                    f"{self.name}: {method} {url} still failing after {attempt} attempts "
                    f"in {elapsed:.1f}s (last: {last_problem})", method=method, url=url,
                    status=_status_of(last_problem), attempts=attempt)
            log.info("%s: %s %s attempt %d failed (%s); retrying in %.2fs",
                     self.name, method, _path(url), attempt, last_problem, delay)
            time.sleep(delay)

    def get_json(self, url: str, **kw: Any) -> Any:
        return parsed_json(self.request("GET", url, **kw))

    # -- rate-limit headers ---------------------------------------------------------------------
    def _observe_rate_headers(self, resp: httpx.Response) -> None:
        if self.rate_headers is None:
            return
        pause = self.rate_headers(resp)
        if pause and pause > 0:
            self.pacer.pause(pause)

    @staticmethod
    def _retry_after(resp: httpx.Response) -> float | None:
        value = resp.headers.get("retry-after")
        if value is None:
            return None
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def loads(body: bytes) -> Any:
    """A JSON body: orjson (several times faster than `json`); what orjson refuses but `json`
    reads (lone surrogate escapes, NaN, a non-UTF-8 charset) goes through `json`, so both
    read the same documents. Bytes that are not UTF-8 inside a string (a message body a carrier
    passed on in another encoding) do not sink the page: they are read as lone surrogates,
    which the partition writer replaces and reports (`repaired_text` in the manifest)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        try:
            text = body.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            text = body.decode("utf-8", "surrogateescape")
        return json.loads(text)


def parsed_json(resp: httpx.Response) -> Any:
    """The body of a response from `HttpClient.request`, parsed once."""
    cached = getattr(resp, "talentvault_json", None)
    return cached if cached is not None else resp.json()


def _status_of(problem: str) -> int | None:
    if problem.startswith("HTTP "):
        return int(problem.split()[1])
    return None


def _path(url: str) -> str:
    return url.split("?", 1)[0]


# -- pagination helpers --------------------------------------------------------------------------
def next_link(resp: httpx.Response) -> str | None:
    """The rel="next" URL of an RFC 8288 `Link` header (Greenhouse), or None."""
    link = resp.links.get("next")
    return link.get("url") if link else None


def paginate_link_header(client: HttpClient, path: str,
                         params: Any) -> Iterator[list[dict[str, Any]]]:
    """Greenhouse v3: a bare JSON array per page; follow `Link: <…>; rel="next"` whose URL must
    be used as-is (its cursor is the only query parameter allowed). `params` may be a mapping
    or a list of pairs (for repeated parameters such as two `updated_at` bounds)."""
    resp = client.request("GET", path, params=params)
    while True:
        yield parsed_json(resp)
        url = next_link(resp)
        if not url:
            return
        resp = client.request("GET", url)


def paginate_page_token(client: HttpClient, path: str, params: Mapping[str, Any], *,
                        items_key: str) -> Iterator[list[dict[str, Any]]]:
    """Keap v2: `page_token` in, `next_page_token` out; empty or missing token ends the list."""
    query = dict(params)
    while True:
        body = client.get_json(path, params=query)
        yield body.get(items_key) or []
        token = body.get("next_page_token")
        if not token:
            return
        query = {**query, "page_token": token}


def concurrent_pages(sources: list[Iterator[list[dict[str, Any]]]], workers: int,
                     max_buffered: int = 8) -> Iterator[list[dict[str, Any]]]:
    """Drain several page iterators (e.g. id-range slices of one listing) with at most
    `workers` threads, yielding pages in arrival order in the caller's thread. The threads share
    the client's pacer, so concurrency never goes above the rate limit; a bounded queue keeps
    memory flat when the consumer is slower than the API. The first error stops every worker
    and is raised here."""
    import queue
    from concurrent.futures import ThreadPoolExecutor

    done = object()
    pages: queue.Queue = queue.Queue(maxsize=max_buffered)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        """Put into the queue unless the consumer has stopped (never block forever)."""
        while not stop.is_set():
            try:
                pages.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def drain(source: Iterator[list[dict[str, Any]]]) -> None:
        try:
            for page in source:
                if not hand_over(page):
                    return
        except BaseException as e:  # handed to the consumer, who raises it
            hand_over(e)
        finally:
            hand_over(done)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for source in sources:
            pool.submit(drain, source)
        remaining = len(sources)
        try:
            while remaining:
                item = pages.get()
                if item is done:
                    remaining -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stop.set()  # workers see it within 0.2 s and leave without blocking
