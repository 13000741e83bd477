"""Finance emulator: authentication, throttling and injected faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.emulators import RunningEmulator, start_emulator

pytestmark = pytest.mark.contract


def test_api_without_a_bearer_token_is_401(emu: RunningEmulator) -> None:
    resp = httpx.get(emu.api_url + "/CustomersV3")
    assert resp.status_code == 401
    assert "error" in resp.json()


def test_api_with_an_unknown_token_is_401(emu: RunningEmulator) -> None:
    resp = httpx.get(emu.api_url + "/ChangeFeed", headers={"Authorization": "Bearer forged"})
    assert resp.status_code == 401


def test_token_endpoint_refuses_a_wrong_secret(emu: RunningEmulator) -> None:
    resp = httpx.post(emu.token_url, data={"grant_type": "client_credentials",
                                           "client_id": emu.client_id, "client_secret": "nope"})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"


@pytest.fixture
def throttled(tmp_path: Path) -> Iterator[RunningEmulator]:
    running = start_emulator("finance", tmp_path, "--requests", "5", "--window", "60")
    yield running
    running.stop()


def test_past_the_request_limit_answers_429_with_retry_after(throttled: RunningEmulator) -> None:
    with throttled.client() as fo:
        statuses = [fo.get("/LegalEntities").status_code for _ in range(5)]
        refused = fo.get("/LegalEntities")
    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "high resource utilization" in refused.json()["error"]["message"]


def test_injected_server_errors_then_recovery(emu: RunningEmulator, fo: httpx.Client) -> None:
    with emu.admin() as admin:
        admin.put("/faults", json={"error_rate": 1.0, "error_statuses": [503]})
        try:
            assert fo.get("/LegalEntities").status_code == 503
            assert admin.get("/health").status_code == 200  # admin is never faulted
        finally:
            admin.put("/faults", json={"error_rate": 0.0})
    assert fo.get("/LegalEntities").status_code == 200


def test_injected_throttle_storm_answers_429(emu: RunningEmulator, fo: httpx.Client) -> None:
    with emu.admin() as admin:
        admin.put("/faults", json={"throttle_storm_seconds": 30,
                                   "throttle_retry_after_seconds": 7})
        try:
            resp = fo.get("/LegalEntities")
        finally:
            admin.put("/faults", json={"throttle_storm_seconds": 0})
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    assert "high resource utilization" in resp.json()["error"]["message"]
