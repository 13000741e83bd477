"""The HTTP edge shared by both APIs: client factory, outcome classification, retries.

Outcomes (architecture.md section 6):

    2xx                                   success, returned
    429, 503                              RetryLater + AIMD halves concurrency; Retry-After
                                          (seconds or HTTP date) closes the whole target for
                                          exactly that long (one shared "not before" time),
                                          at most ``retry_after_cap_s`` (default 300 s; a
                                          capped value is logged; negative or unreadable
                                          values count as absent)
    401 (after one token refresh), 408,   RetryLater with jittered exponential backoff
    425, 500, 502, 504, timeouts,
    connection errors
    anything else (400, 403, 404, 409,    returned to the caller, which knows whether a 404 is
    412, ...)                             "already deleted" or "update-only miss"; `rejection`
                                          turns it into a Rejected with the error body

`ApiClient.request` retries transient outcomes itself up to ``max_attempts`` and then raises
the last RetryLater, so a sink can back off at the level of its whole flush.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field

from connectors.common import metrics
from connectors.common.aimd import AIMDLimiter
from connectors.common.auth import ApiOrigin, BearerAuth, ClientCredentials, TokenProvider
from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import Rejected, RetryLater
from connectors.common.paging import ON_WIRE
from topics import may_hold_wide_integer

__all__ = [
    "ApiClient",
    "HttpConfig",
    "NotBefore",
    "answer_json",
    "backoff_delay",
    "classify",
    "classify_exception",
    "error_message",
    "parse_retry_after",
    "rejection",
]

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER_CAP_S = 300.0
THROTTLE_STATUSES = frozenset({429, 503})
# 401 here means "still refused after a fresh token" (BearerAuth already retried once): an
# identity outage or revoked consent. Waiting is right; dead-lettering every write is not.
TRANSIENT_STATUSES = frozenset({401, 408, 425, 429, 500, 502, 503, 504})


class HttpConfig(BaseModel):
    """Timeouts, retries and concurrency of one API client."""

    model_config = ConfigDict(frozen=True)

    timeout_s: float = Field(default=30.0, gt=0, description="Per-request timeout.")
    max_attempts: int = Field(default=6, ge=1, description="Tries per request before RetryLater surfaces.")
    backoff_base_s: float = Field(default=0.2, gt=0, description="First backoff step (doubles per try).")
    backoff_cap_s: float = Field(default=30.0, gt=0, description="Longest backoff step.")
    concurrency_initial: int = Field(default=4, ge=1, description="AIMD starting concurrency.")
    concurrency_max: int = Field(default=32, ge=1, description="AIMD ceiling (Dataverse allows 52/user).")
    max_connections: int = Field(default=64, ge=1, description="httpx connection pool size.")
    retry_after_cap_s: float = Field(default=DEFAULT_RETRY_AFTER_CAP_S, gt=0, allow_inf_nan=False,
                                     description="Longest Retry-After obeyed; longer ones are capped.")


def parse_retry_after(value: str | None, now: float, cap: float = DEFAULT_RETRY_AFTER_CAP_S) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), at most ``cap``;
    None if absent, negative or unreadable (then our own backoff applies).

    The cap keeps a hostile or broken answer (``inf``, ``1e400``, a date in the year 9999) from
    parking the connector for years without a word: the wait is bounded, and `classify` logs the
    capped value.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
            seconds = max(0.0, float(when.timestamp()) - now)
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, cap)


def answer_json(response: httpx.Response) -> Any:
    """An answer's JSON body exactly as the standard library reads it (``response.json()``);
    `ValueError` (or `RecursionError`) when it is not JSON.

    orjson reads the common body: a snapshot page of a thousand Finance rows took 1.9 ms with
    the standard library and 1.0 with orjson and the check below, a tenth of a page's work in an
    initial sync. Where the two readers differ, the standard library reads it:
    - integers beyond 64 bits: orjson makes them floats, so a row would flow with another value
      (the standard library keeps them exact, and the row becomes a dead letter: no event can
      carry it), so a body that may hold one (`topics.may_hold_wide_integer`: 19 digits in a
      row anywhere) is read by the standard library;
    - what orjson refuses and the standard library reads: NaN and infinities, lone surrogates
      (``\\ud800``: the row becomes a dead letter, never its whole page), another charset, a
      byte order mark."""
    body = response.content
    if may_hold_wide_integer(body):
        return response.json()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return response.json()


def error_message(response: httpx.Response) -> str:
    """The OData error message (``{"error": {"code", "message"}}``) or the raw body."""
    try:
        payload = response.json()
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        if isinstance(error, dict) and error.get("message"):
            code = error.get("code")
            return f"{code}: {error['message']}" if code else str(error["message"])
    except ValueError:
        pass
    return response.text[:2000]


def classify(response: httpx.Response, now: float, cap: float = DEFAULT_RETRY_AFTER_CAP_S) -> RetryLater | None:
    """RetryLater for transient statuses, None otherwise (the caller judges the rest).
    A Retry-After above ``cap`` is cut to it, with one warning naming both values."""
    status = response.status_code
    if status not in TRANSIENT_STATUSES:
        return None
    header = response.headers.get("Retry-After")
    retry_after = parse_retry_after(header, now, math.inf)
    if retry_after is not None and retry_after > cap:
        log.warning("HTTP %d: Retry-After %r capped to %.0f s (HttpConfig.retry_after_cap_s)",
                    status, (header or "")[:80], cap)
        retry_after = cap
    return RetryLater(f"HTTP {status}: {error_message(response)[:300]}", retry_after, status)


def classify_exception(exc: httpx.HTTPError) -> RetryLater:
    """Timeouts and connection errors are transient: the request may or may not have landed,
    and every write we send is an idempotent upsert/delete by key, so sending again is safe."""
    return RetryLater(f"{type(exc).__name__}: {exc}"[:300])


def rejection(response: httpx.Response, reason: str | None = None) -> Rejected:
    status = response.status_code
    return Rejected(reason or f"HTTP {status}", status=status, body=error_message(response),
                    error_class=f"Http{status}")


async def _reported(http: httpx.AsyncClient, on_wire: Callable[[], None], method: str, url: str,
                    kwargs: dict[str, object]) -> httpx.Response:
    """``http.request`` calling ``on_wire`` once: when httpx's ``trace`` extension says the
    request is written, or when the attempt ends (`connectors.common.paging`)."""
    reported = False

    def report() -> None:
        nonlocal reported
        if not reported:
            reported = True
            on_wire()

    async def trace(event: str, info: object) -> None:
        if event.endswith("send_request_body.complete"):
            report()

    extensions = {**kwargs.get("extensions", {}), "trace": trace}  # type: ignore[dict-item]
    try:
        return await http.request(method, url, **{**kwargs, "extensions": extensions})  # type: ignore[arg-type]
    finally:
        report()


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter in [half, full] of the step, so retries spread out."""
    step = min(cap, base * 2.0 ** attempt)
    return step * (0.5 + rng.random() / 2)


class NotBefore:
    """One shared 'no request before' time per target, set from Retry-After."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._until = 0.0

    def push(self, seconds: float) -> None:
        self._until = max(self._until, self._clock.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self._until - self._clock.monotonic())

    async def wait(self) -> None:
        while (left := self.remaining()) > 0:
            await self._clock.sleep(left)


class ApiClient:
    """An authenticated httpx client plus the target's throttling state.

    One per target API and process: the limiter and the not-before gate must be shared by
    every request to that target, or the Retry-After window would leak.
    """

    def __init__(self, http: httpx.AsyncClient, system: str, config: HttpConfig | None = None,
                 clock: Clock | None = None, rng: random.Random | None = None) -> None:
        self.http = http
        self.system = system
        self.config = config or HttpConfig()
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.limiter = AIMDLimiter(min(self.config.concurrency_initial, self.config.concurrency_max),
                                   1, self.config.concurrency_max)
        self.not_before = NotBefore(self.clock)

    @classmethod
    def build(cls, base_url: str, credentials: ClientCredentials, system: str,
              config: HttpConfig | None = None, transport: httpx.AsyncBaseTransport | None = None,
              clock: Clock | None = None, rng: random.Random | None = None) -> ApiClient:
        """Client rooted at ``base_url`` with a cached bearer token; ``transport`` is the test seam."""
        config = config or HttpConfig()
        limits = httpx.Limits(max_connections=config.max_connections)
        token_http = httpx.AsyncClient(transport=transport, timeout=config.timeout_s)
        provider = TokenProvider(credentials, token_http, clock)
        http = httpx.AsyncClient(base_url=base_url.rstrip("/") + "/", transport=transport,
                                 auth=BearerAuth(provider, ApiOrigin.of(base_url)), timeout=config.timeout_s, limits=limits,
                                 headers={"Accept": "application/json", "OData-MaxVersion": "4.0",
                                          "OData-Version": "4.0"})
        client = cls(http, system, config, clock, rng)
        client._token_http = token_http
        return client

    _token_http: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        await self.http.aclose()
        if self._token_http is not None:
            await self._token_http.aclose()

    async def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        """Send with retries on transient outcomes; returns any non-transient response."""
        last: RetryLater | None = None
        for attempt in range(self.config.max_attempts):
            await self.not_before.wait()
            async with self.limiter:
                # Again inside the slot: another request may have been throttled while this
                # one queued for it, and nothing may reach the target inside that window.
                await self.not_before.wait()
                on_wire = ON_WIRE.get()
                try:
                    if on_wire is None:
                        response = await self.http.request(method, url, **kwargs)  # type: ignore[arg-type]
                    else:
                        response = await _reported(self.http, on_wire, method, url, kwargs)
                except httpx.HTTPError as exc:
                    metrics.REQUESTS.labels(self.system, method, "error").inc()
                    last = classify_exception(exc)
                else:
                    metrics.REQUESTS.labels(self.system, method, str(response.status_code)).inc()
                    last = classify(response, self.clock.time(), self.config.retry_after_cap_s)
                    if last is None:
                        self.limiter.on_success()
                        metrics.CONCURRENCY.labels(self.system).set(self.limiter.limit)
                        return response
                    await response.aclose()
                # Still holding the slot: close the target's window and shrink concurrency
                # before anyone queued behind us can send.
                if last.retry_after is not None:
                    # Exactly the server's window, no jitter: it told us when it accepts again.
                    self.not_before.push(last.retry_after)
                if last.status in THROTTLE_STATUSES:
                    self.limiter.on_throttle()
                    metrics.THROTTLED.labels(self.system).inc()
                    metrics.CONCURRENCY.labels(self.system).set(self.limiter.limit)
            if attempt + 1 == self.config.max_attempts:
                break
            metrics.RETRIES.labels(self.system, str(last.status or "transport")).inc()
            if last.retry_after is None:
                await self.clock.sleep(backoff_delay(attempt, self.config.backoff_base_s,
                                                     self.config.backoff_cap_s, self.rng))
        assert last is not None
        raise last
