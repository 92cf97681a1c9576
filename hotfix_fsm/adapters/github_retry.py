"""The HTTP policy under the GitHub client: rate limits, retries, conditional requests.

Why this sits *under* ghapi instead of inside it: ghapi 2.x sends every request through a
``fasttransport`` over an ``httpx2.Client`` and raises on any non-2xx status, including
``304 Not Modified``; it keeps the last response headers in one shared attribute and sleeps
a fixed 0.5 s/1 s itself on connection errors. So the typed ghapi operations
(``api.pulls.create``, ``api.actions.create_workflow_dispatch`` …) stay as they are, and the
client hands ghapi a persistent ``httpx2.Client`` whose transport is :class:`PolicyTransport`
(httpx's public extension point). Every request, whichever operation sent it, then gets:

* **Conditional GETs** — a cached ``ETag`` is sent as ``If-None-Match``; a ``304`` is answered
  to ghapi as the cached ``200`` body (a 304 does not count against GitHub's rate limit).
* **Primary rate limit** — ``x-ratelimit-remaining: 0`` → wait until ``x-ratelimit-reset``,
  both when an answer is a 403/429 and before sending when the last answer said 0 is left.
* **Secondary rate limit** — honour ``retry-after``; without it back off exponentially from
  ``secondary_base`` seconds (GitHub documents "at least one minute"; tests make it small).
* **Writes one at a time** — POST/PATCH/PUT/DELETE are serialised per API host.
* **Transient failures** — 5xx, timeouts, dropped and refused connections are retried with
  capped exponential backoff and jitter, up to ``max_retries``. A write is retried after an
  *ambiguous* failure (the request may have reached GitHub) only when the caller declared
  that a duplicate is detectable (:func:`duplicate_detectable`); otherwise the failure is
  returned so the caller can look at the world (for example, find a workflow run by its
  correlation id) instead of sending a second dispatch. Refused connections and rate-limit
  answers are always safe to retry: GitHub did nothing.

Every wait goes through the injected ``sleep`` (the phases pass the lease-aware
``ctx.wait``), never through a fixed sleep. Before every attempt of a write the lease fence
(``core.fence``) is asked whether this driver still holds the hotfix. Waits longer than
``max_wait`` are not slept at all: the answer goes back to the caller, which reports a
``TransientError`` with ``retry_after``.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx2

from hotfix_fsm.core.fence import confirm_before_effect
from hotfix_fsm.core.retry import backoff
from hotfix_fsm.log import get_logger

log = get_logger("hotfix_fsm.github")

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_AMBIGUOUS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
_write_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_duplicate_detectable: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hotfix_fsm_github_duplicate_detectable", default=False
)


_best_effort: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hotfix_fsm_github_best_effort", default=False
)


@contextlib.contextmanager
def best_effort() -> Iterator[None]:
    """Send requests inside the block once, without retries or rate-limit waits.

    For reads whose answer is only nice to have (the jobs of a run, for the live line): a
    failure goes straight back to the caller, which carries on without it, instead of
    holding up the wait it describes with backoff.
    """
    token = _best_effort.set(True)
    try:
        yield
    finally:
        _best_effort.reset(token)


@contextlib.contextmanager
def duplicate_detectable() -> Iterator[None]:
    """Mark writes inside the block as safe to resend after an ambiguous failure.

    True for writes whose repetition GitHub refuses visibly (a second PR for the same head
    is a 422, a second merge a 405, deleting a deleted ref a 422) or changes nothing (adding
    labels); false for a workflow dispatch, which would start a second run.
    """
    token = _duplicate_detectable.set(True)
    try:
        yield
    finally:
        _duplicate_detectable.reset(token)


def write_lock(host: str) -> threading.Lock:
    """The process-wide lock that keeps writes to one API host sequential."""
    with _locks_guard:
        return _write_locks.setdefault(host, threading.Lock())


@dataclass
class RetryPolicy:
    """Retry and wait limits (``max_retries``/``max_backoff`` come from ``[github]``)."""

    max_retries: int = 8
    max_backoff: float = 60.0
    backoff_base: float = 1.0
    secondary_base: float = 60.0
    max_wait: float = 900.0  # longer waits go back to the caller as retry_after

    def backoff(self, attempt: int) -> float:
        """The one backoff rule (``core.retry``) for the ``attempt``-th retry (1-based)."""
        return backoff(attempt, base=self.backoff_base, cap=self.max_backoff)

    def secondary_wait(self, retry_after: str | None, strikes: int) -> float:
        """``retry-after`` seconds when given, else exponential from ``secondary_base``."""
        if retry_after:
            with contextlib.suppress(ValueError):
                return max(0.0, float(retry_after))
        return min(self.max_wait, self.secondary_base * float(2 ** max(0, strikes - 1)))


@dataclass
class _Cached:
    etag: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Stats:
    """What the transport did, for benchmarks and tests."""

    requests: int = 0
    not_modified: int = 0
    retries: int = 0
    waits: list[tuple[str, float]] = field(default_factory=list)


def is_primary_limit(status: int, headers: httpx2.Headers) -> bool:
    return status in (403, 429) and headers.get("x-ratelimit-remaining") == "0"


def is_secondary_limit(status: int, headers: httpx2.Headers, text: str) -> bool:
    if status not in (403, 429):
        return False
    return "retry-after" in headers or "secondary rate limit" in text.lower() or status == 429


class PolicyTransport(httpx2.BaseTransport):
    """An ``httpx2`` transport applying GitHub's rate-limit, retry and caching rules."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float] = time.time,
        inner: httpx2.BaseTransport | None = None,
        cache_size: int = 256,
        stats: Stats | None = None,
    ) -> None:
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.inner = inner or httpx2.HTTPTransport()
        self.stats = stats if stats is not None else Stats()
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._cache_size = cache_size
        self._state_lock = threading.Lock()
        self._exhausted_until = 0.0  # epoch seconds: the primary budget is 0 until then

    def close(self) -> None:
        self.inner.close()

    # -- the loop ------------------------------------------------------------------------

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method in WRITE_METHODS:
            with write_lock(request.url.host):
                return self._send(request)
        return self._send(request)

    def _send(self, request: httpx2.Request) -> httpx2.Response:
        write = request.method in WRITE_METHODS
        resend_ok = not write or _duplicate_detectable.get()
        once = _best_effort.get()
        retries = 0 if once else self.policy.max_retries
        attempt = 0
        secondary_strikes = 0
        while True:
            if not once:
                self._wait_for_budget(request)
            cached = self._conditional(request)
            if write:
                # Every attempt of a write — the first and each retry — is an effect: the
                # driver confirms it still holds the hotfix before sending (a no-op
                # outside a driver). A woken, fenced-off driver raises LeaseLost here.
                confirm_before_effect()
            try:
                response = self._once(request)
            except _NOT_SENT as exc:
                # Refused or never connected: GitHub did nothing, any method may go again.
                attempt += 1
                if attempt > retries:
                    raise
                self._pause(request, f"connection failed ({type(exc).__name__})", attempt)
                continue
            except _AMBIGUOUS as exc:
                attempt += 1
                if not resend_ok or attempt > retries:
                    raise
                self._pause(request, f"no answer ({type(exc).__name__})", attempt)
                continue
            status, headers = response.status_code, response.headers
            self._note_budget(headers)
            if status == 304 and cached is not None:
                with self._state_lock:
                    self.stats.not_modified += 1
                return self._replay(request, cached, response)
            if status == 200 and request.method == "GET" and headers.get("etag"):
                self._remember(request, response)
            if is_primary_limit(status, headers):
                wait = self._until_reset(headers)
                if attempt >= retries or wait > self.policy.max_wait:
                    return response
                attempt += 1
                self._wait(request, "primary rate limit", wait)
                with self._state_lock:
                    self._exhausted_until = 0.0  # waited for this reset already
                continue
            if is_secondary_limit(status, headers, _text(response)):
                secondary_strikes += 1
                wait = self.policy.secondary_wait(headers.get("retry-after"), secondary_strikes)
                if attempt >= retries or wait > self.policy.max_wait:
                    return response
                attempt += 1
                self._wait(request, "secondary rate limit", wait)
                continue
            if status in RETRY_STATUSES and resend_ok and attempt < retries:
                attempt += 1
                retry_after = headers.get("retry-after")
                if retry_after and retry_after.isdigit():
                    self._wait(request, f"HTTP {status}", float(retry_after))
                else:
                    self._pause(request, f"HTTP {status}", attempt)
                continue
            return response

    def _once(self, request: httpx2.Request) -> httpx2.Response:
        """Send once and buffer the raw body, so the response can be replayed or cached."""
        with self._state_lock:
            self.stats.requests += 1
        response = self.inner.handle_request(request)
        try:
            raw = b"".join(response.iter_raw())
        finally:
            response.close()
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=httpx2.ByteStream(raw),
            request=request,
            extensions=response.extensions,
        )

    # -- rate limits ---------------------------------------------------------------------

    def _note_budget(self, headers: httpx2.Headers) -> None:
        resource = headers.get("x-ratelimit-resource", "core")
        if resource != "core" or "x-ratelimit-remaining" not in headers:
            return
        with self._state_lock:
            if headers.get("x-ratelimit-remaining") == "0":
                self._exhausted_until = _float(headers.get("x-ratelimit-reset"), 0.0)
            else:
                self._exhausted_until = 0.0

    def _until_reset(self, headers: httpx2.Headers) -> float:
        reset = _float(headers.get("x-ratelimit-reset"), 0.0)
        # One extra second covers clock skew and the reset second itself.
        return max(1.0, reset - self.clock() + 1.0) if reset else self.policy.secondary_base

    def _wait_for_budget(self, request: httpx2.Request) -> None:
        with self._state_lock:
            until = self._exhausted_until
        wait = until - self.clock() + 1.0 if until else 0.0
        if 0 < wait <= self.policy.max_wait:
            self._wait(request, "primary rate limit (budget exhausted)", wait)
        with self._state_lock:
            if self._exhausted_until == until:
                self._exhausted_until = 0.0

    # -- waits ---------------------------------------------------------------------------

    def _pause(self, request: httpx2.Request, why: str, attempt: int) -> None:
        self._wait(request, why, self.policy.backoff(attempt))

    def _wait(self, request: httpx2.Request, why: str, seconds: float) -> None:
        with self._state_lock:
            self.stats.retries += 1
            self.stats.waits.append((why, seconds))
        log.info(
            "github_retry",
            method=request.method,
            path=request.url.path,
            reason=why,
            wait=round(seconds, 2),
        )
        self.sleep(seconds)

    # -- conditional requests ------------------------------------------------------------

    @staticmethod
    def _key(request: httpx2.Request) -> str:
        return f"{request.method} {request.url}"

    def _conditional(self, request: httpx2.Request) -> _Cached | None:
        if request.method != "GET":
            return None
        with self._state_lock:
            cached = self._cache.get(self._key(request))
        if cached is not None:
            request.headers["If-None-Match"] = cached.etag
        return cached

    def _remember(self, request: httpx2.Request, response: httpx2.Response) -> None:
        entry = _Cached(response.headers["etag"], response.headers.raw, _raw(response))
        with self._state_lock:
            self._cache[self._key(request)] = entry
            self._cache.move_to_end(self._key(request))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    @staticmethod
    def _replay(
        request: httpx2.Request, cached: _Cached, fresh: httpx2.Response
    ) -> httpx2.Response:
        headers = httpx2.Headers(cached.headers)
        for name in ("x-ratelimit-remaining", "x-ratelimit-reset", "x-ratelimit-used"):
            if name in fresh.headers:
                headers[name] = fresh.headers[name]
        return httpx2.Response(
            200, headers=headers, stream=httpx2.ByteStream(cached.body), request=request
        )


def _raw(response: httpx2.Response) -> bytes:
    stream = response.stream
    if not isinstance(stream, httpx2.ByteStream):  # every response here is built by _once
        raise TypeError(f"unexpected response stream {type(stream).__name__}")
    return b"".join(stream)


def _text(response: httpx2.Response) -> str:
    """The decoded body of a buffered response (without consuming its stream)."""
    probe = httpx2.Response(
        response.status_code, headers=response.headers, stream=httpx2.ByteStream(_raw(response))
    )
    try:
        return probe.read().decode("utf-8", "replace")
    except httpx2.DecodingError:
        return ""


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default
