from __future__ import annotations

import random

import httpx
import pytest

from connectors.common.aimd import AIMDLimiter
from connectors.common.clock import FakeClock
from connectors.common.errors import RetryLater
from connectors.common.http import backoff_delay, classify, parse_retry_after, rejection
from tests.unit.connectors.fakes import FakeApi, api_client

pytestmark = pytest.mark.unit

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("status", "transient"), [
    (200, False), (204, False), (400, False), (401, True), (403, False), (404, False),
    (409, False), (412, False), (408, True), (429, True), (500, True), (502, True), (503, True),
    (504, True),
])
def test_outcome_classification(status: int, transient: bool) -> None:
    outcome = classify(httpx.Response(status, json={"error": {"code": "0x1", "message": "m"}}), NOW)
    assert (outcome is not None) is transient
    if outcome is not None:
        assert isinstance(outcome, RetryLater) and outcome.status == status


def test_rejection_carries_status_and_odata_error_body() -> None:
    response = httpx.Response(400, json={"error": {"code": "0x80048d19", "message": "bad field"}})
    rejected = rejection(response)
    assert (rejected.status, rejected.body, rejected.error_class) == (400, "0x80048d19: bad field", "Http400")


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 0 ", 0.0), ("1.5", 1.5), (None, None), ("", None), ("soon", None),
    ("Tue, 14 Nov 2023 22:13:30 GMT", 10.0),  # NOW is 22:13:20 GMT
    ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # in the past: go now
])
def test_retry_after_parsing(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_429_with_retry_after_is_classified_with_its_window() -> None:
    outcome = classify(httpx.Response(429, headers={"Retry-After": "3"}), NOW)
    assert outcome is not None and outcome.retry_after == 3.0


async def test_retry_after_obeyed_exactly_and_shared_by_the_target() -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.monotonic())
        if len(sent_at) == 1:
            return httpx.Response(429, headers={"Retry-After": "4"}, json={"error": {"message": "slow down"}})
        return httpx.Response(204)

    api = api_client(FakeApi(handler), clock)
    response = await api.request("PATCH", "accounts(1)", json={})
    assert response.status_code == 204
    assert sent_at[1] - sent_at[0] == pytest.approx(4.0)  # exactly, no jitter on top
    assert clock.sleeps == [pytest.approx(4.0)]
    assert api.limiter.limit == 2 + 1  # halved from 4 on the 429, +1 on the success
    await api.aclose()


async def test_not_before_blocks_every_request_to_the_target() -> None:
    clock = FakeClock()
    api = api_client(FakeApi(lambda r: httpx.Response(200, json={})), clock)
    api.not_before.push(9.0)
    await api.request("GET", "accounts")
    assert sum(clock.sleeps) == pytest.approx(9.0)
    await api.aclose()


async def test_transient_errors_backoff_with_jitter_then_succeed() -> None:
    clock = FakeClock()
    answers = iter([httpx.Response(500), httpx.Response(502), httpx.Response(200, json={})])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    api = api_client(FakeApi(handler), clock, backoff_base_s=1.0)
    assert (await api.request("GET", "accounts")).status_code == 200
    first, second = clock.sleeps
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 2.0
    await api.aclose()


async def test_connection_errors_are_retried_then_surface_as_retry_later() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake = FakeApi(handler)
    api = api_client(fake, FakeClock(), max_attempts=3)
    with pytest.raises(RetryLater) as info:
        await api.request("GET", "accounts")
    assert "ConnectError" in info.value.reason
    assert len(fake.calls) == 3
    await api.aclose()


async def test_permanent_statuses_are_returned_not_retried() -> None:
    fake = FakeApi(lambda r: httpx.Response(400, json={"error": {"message": "no"}}))
    api = api_client(fake, FakeClock())
    assert (await api.request("PATCH", "accounts(1)", json={})).status_code == 400
    assert len(fake.calls) == 1
    await api.aclose()


def test_backoff_is_exponential_capped_and_jittered() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        step = min(30.0, 0.2 * 2 ** attempt)
        assert step / 2 <= backoff_delay(attempt, 0.2, 30.0, rng) <= step


async def test_aimd_increases_by_one_and_halves_on_throttle() -> None:
    limiter = AIMDLimiter(initial=4, minimum=1, maximum=6)
    for _ in range(5):
        limiter.on_success()
    assert limiter.limit == 6
    limiter.on_throttle()
    assert limiter.limit == 3
    for _ in range(5):
        limiter.on_throttle()
    assert limiter.limit == 1


async def test_aimd_bounds_requests_in_flight() -> None:
    import asyncio

    limiter = AIMDLimiter(initial=2, minimum=1, maximum=2)
    peak = 0

    async def job() -> None:
        nonlocal peak
        async with limiter:
            peak = max(peak, limiter.in_flight)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(job() for _ in range(10)))
    assert peak == 2 and limiter.in_flight == 0


async def test_requests_queued_for_a_slot_also_respect_a_new_retry_after_window() -> None:
    import asyncio

    clock = FakeClock()
    sent_at: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent_at.append(clock.monotonic())
        if len(sent_at) == 1:
            return httpx.Response(429, headers={"Retry-After": "3"})
        return httpx.Response(200, json={})

    api = api_client(FakeApi(handler), clock, concurrency_initial=1)
    start = clock.monotonic()
    await asyncio.gather(api.request("GET", "a"), api.request("GET", "b"))
    assert len(sent_at) == 3
    assert all(t >= start + 3.0 for t in sent_at[1:])
    await api.aclose()


@pytest.mark.parametrize(("header", "seconds"), [
    ("inf", 300.0), ("Infinity", 300.0), ("1e400", 300.0), ("9" * 400, 300.0), ("301", 300.0),
    ("Fri, 31 Dec 9999 23:59:59 GMT", 300.0), ("300", 300.0),
    ("nan", None), ("-5", None), ("-inf", None), ("Mon, 99 Foo 2023 99:99:99 GMT", None),
])
def test_retry_after_is_capped_and_garbage_is_absent(header: str, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_the_cap_is_configurable_and_a_capped_value_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("WARNING", logger="connectors.common.http")
    outcome = classify(httpx.Response(503, headers={"Retry-After": "inf"}), NOW, cap=42.0)
    assert outcome is not None and outcome.retry_after == 42.0
    capped = [r for r in caplog.records if "capped" in r.getMessage()]
    assert len(capped) == 1 and "'inf'" in capped[0].getMessage() and "42" in capped[0].getMessage()
    caplog.clear()
    assert classify(httpx.Response(503, headers={"Retry-After": "3"}), NOW, cap=42.0).retry_after == 3.0  # type: ignore[union-attr]
    assert not caplog.records


async def test_a_far_future_retry_after_parks_the_target_only_for_the_cap() -> None:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        if len(fake.calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"})
        return httpx.Response(204)

    fake = FakeApi(handler)
    api = api_client(fake, clock, retry_after_cap_s=60)
    assert (await api.request("PATCH", "accounts(1)", json={})).status_code == 204
    assert clock.sleeps == [pytest.approx(60.0)]
    await api.aclose()
