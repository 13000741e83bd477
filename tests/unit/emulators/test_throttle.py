"""Service protection accounting with a fake clock."""

from __future__ import annotations

import pytest

from emulators.common.config import ServiceLimits
from emulators.common.throttle import (
    CONCURRENCY,
    EXECUTION_TIME,
    REQUESTS,
    ServiceProtection,
    format_code,
)

pytestmark = pytest.mark.unit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _limits(**kw: float) -> ServiceLimits:
    return ServiceLimits.model_validate({"requests_per_window": 3, "window_seconds": 60,
                                         "execution_seconds_per_window": 100, "max_concurrent": 2, **kw})


def test_request_count_slides_with_the_window() -> None:
    clock = FakeClock()
    guard = ServiceProtection(_limits(), clock)
    for step in range(3):
        clock.now = 1000.0 + step * 10
        assert guard.admit("app") is None
        guard.release("app", 0.01)
    clock.now = 1025.0
    refused = guard.admit("app")
    assert refused is not None and refused.kind == REQUESTS
    assert refused.retry_after == 35  # the first request (t=1000) leaves the window at 1060
    clock.now = 1060.0
    assert guard.admit("app") is None


def test_principals_are_counted_separately() -> None:
    guard = ServiceProtection(_limits(requests_per_window=1), FakeClock())
    assert guard.admit("a") is None
    assert guard.admit("b") is None
    assert guard.admit("a") is not None


def test_execution_time_limit() -> None:
    clock = FakeClock()
    guard = ServiceProtection(_limits(requests_per_window=100), clock)
    assert guard.admit("app") is None
    guard.release("app", 60.0)
    clock.now += 5
    assert guard.admit("app") is None
    guard.release("app", 50.0)
    clock.now += 5
    refused = guard.admit("app")
    assert refused is not None and refused.kind == EXECUTION_TIME
    assert refused.retry_after == 50  # the 60 s call finished at 1000 and leaves at 1060


def test_concurrency_limit_is_immediate_and_released() -> None:
    guard = ServiceProtection(_limits(requests_per_window=100), FakeClock())
    assert guard.admit("app") is None and guard.admit("app") is None
    refused = guard.admit("app")
    assert refused is not None and refused.kind == CONCURRENCY and refused.retry_after >= 1
    guard.release("app", 0.1)
    assert guard.admit("app") is None


def test_rejected_requests_are_not_counted() -> None:
    clock = FakeClock()
    guard = ServiceProtection(_limits(requests_per_window=1), clock)
    assert guard.admit("app") is None
    guard.release("app", 0.0)
    for _ in range(10):
        assert guard.admit("app") is not None
    clock.now += 60.0
    assert guard.admit("app") is None
    assert guard.requests_remaining("app") == 0


def test_codes_are_written_as_unsigned_hex() -> None:
    assert format_code(-2147015902) == "0x80072322"
    assert format_code(-2147015903) == "0x80072321"
    assert format_code(-2147015898) == "0x80072326"
    assert format_code("Custom") == "Custom"
