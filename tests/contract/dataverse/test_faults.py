"""Fault injection through ``/_admin/faults``: latency, 5xx, 429 storms, dropped connections."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.emulators import RunningEmulator

pytestmark = pytest.mark.contract
OFF = {"latency_ms": 0, "error_rate": 0.0, "throttle_storm_seconds": 0.0, "drop_rate": 0.0,
       "feed_paused": False}


@pytest.fixture
def admin(isolated: RunningEmulator) -> Iterator[httpx.Client]:
    with isolated.admin() as client:
        yield client
        assert client.put("faults", json=OFF).status_code == 200


@pytest.fixture(scope="module")
def client(isolated: RunningEmulator) -> Iterator[httpx.Client]:
    with isolated.client() as client:
        yield client


def test_get_faults_shows_the_current_settings(admin: httpx.Client) -> None:
    body = admin.get("faults").json()
    assert body["latency_ms"] == 0 and body["error_statuses"] == [500, 503]


def test_put_faults_is_a_partial_update_and_validates(admin: httpx.Client) -> None:
    assert admin.put("faults", json={"latency_ms": 5}).json()["error_rate"] == 0.0
    assert admin.put("faults", json={"error_rate": 2}).status_code == 400
    assert admin.put("faults", json={"colour": "red"}).status_code == 400


def test_latency_delays_api_calls(admin: httpx.Client, client: httpx.Client) -> None:
    admin.put("faults", json={"latency_ms": 300})
    started = time.monotonic()
    assert client.get("uoms").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_error_rate_answers_5xx(admin: httpx.Client, client: httpx.Client) -> None:
    admin.put("faults", json={"error_rate": 1.0, "error_statuses": [503]})
    response = client.get("uoms")
    assert response.status_code == 503
    assert set(response.json()["error"]) == {"code", "message"}
    assert admin.get("health").status_code == 200  # admin routes are never faulted


def test_throttle_storm_answers_429_for_its_duration(admin: httpx.Client, client: httpx.Client) -> None:
    started = time.monotonic()
    admin.put("faults", json={"throttle_storm_seconds": 2.0, "throttle_retry_after_seconds": 3})
    stormy = client.get("uoms")
    assert stormy.status_code == 429 and stormy.headers["Retry-After"] == "3"
    time.sleep(max(0.0, started + 2.1 - time.monotonic()))
    assert client.get("uoms").status_code == 200


def test_dropped_connection_is_a_transport_error(admin: httpx.Client, isolated: RunningEmulator) -> None:
    admin.put("faults", json={"drop_rate": 1.0})
    with isolated.client() as fresh, pytest.raises(httpx.TransportError):
        fresh.get("uoms")
    admin.put("faults", json={"drop_rate": 0.0})
    with isolated.client() as fresh:
        assert fresh.get("uoms").status_code == 200


def test_token_endpoint_is_never_faulted(admin: httpx.Client, isolated: RunningEmulator) -> None:
    admin.put("faults", json={"error_rate": 1.0, "drop_rate": 1.0})
    assert isolated.token()
