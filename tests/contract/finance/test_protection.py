"""Finance emulator: authentication, throttling and injected faults."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulators.common.config import CLIENT_SECRET_ENV
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


def test_the_client_secret_is_not_on_the_emulator_command_line(emu: RunningEmulator) -> None:
    assert emu.process is not None
    cmdline = Path(f"/proc/{emu.process.pid}/cmdline").read_bytes()
    assert emu.client_id.encode() in cmdline and emu.client_secret.encode() not in cmdline
    assert emu.token()  # the secret read from the environment is the one accepted


def _outward_address() -> str | None:
    """This machine's address on its default route, if it has one besides loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


def test_admin_answers_loopback_clients_only(tmp_path: Path) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to call from")
    running = start_emulator("finance", tmp_path, "--host", "0.0.0.0")
    try:
        remote = f"http://{address}:{running.port}/_admin"
        assert httpx.get(f"{remote}/faults").status_code == 403
        assert httpx.put(f"{remote}/faults", json={"error_rate": 1.0}).status_code == 403
        assert httpx.delete(f"{remote}/requests").status_code == 403
        with running.admin() as admin:  # loopback
            assert admin.get("/faults").json()["error_rate"] == 0.0
        # The API itself still answers over the network, with a token.
        resp = httpx.get(f"http://{address}:{running.port}/data/LegalEntities",
                         headers={"Authorization": f"Bearer {running.token()}"})
        assert resp.status_code == 200
    finally:
        running.stop()


def test_a_client_id_without_a_secret_stops_with_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != CLIENT_SECRET_ENV}
    done = subprocess.run([sys.executable, "-m", "dualwrite", "emulator", "finance", "--db",
                           str(tmp_path / "fo.db"), "--client-id", "app"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert CLIENT_SECRET_ENV in done.stderr and "Traceback" not in done.stderr
