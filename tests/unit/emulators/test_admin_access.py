"""``/_admin`` answers loopback clients only, in both emulators."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from emulators.common.admin import is_loopback
from emulators.common.config import EmulatorConfig
from emulators.dataverse.app import create_app as dataverse_app
from emulators.finance.app import create_app as finance_app

pytestmark = pytest.mark.unit
APPS = [dataverse_app, finance_app]


@pytest.mark.parametrize(("host", "local"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("192.0.2.7", False), ("::ffff:192.0.2.7", False), ("2001:db8::1", False),
    ("testclient", False), ("", False)])
def test_loopback_addresses(host: str, local: bool) -> None:
    assert is_loopback((host, 1234)) is local


def test_an_unknown_client_is_not_loopback() -> None:
    assert not is_loopback(None)


def _client(app: Starlette, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://emulator")


@pytest.mark.parametrize("make", APPS)
async def test_remote_clients_are_refused_on_every_admin_route(
        make: Callable[[EmulatorConfig], Starlette], tmp_path: Path) -> None:
    app = make(EmulatorConfig(db_path=tmp_path / "emu.db"))
    async with _client(app, "192.0.2.7") as remote:
        for method, path in [("GET", "/_admin/faults"), ("PUT", "/_admin/faults"),
                             ("GET", "/_admin/requests"), ("DELETE", "/_admin/requests"),
                             ("GET", "/_admin/health"), ("GET", "/_admin")]:
            response = await remote.request(method, path, json={"error_rate": 1.0})
            assert response.status_code == 403, (method, path)
            assert response.json()["error"]["code"] == "Forbidden"
    async with _client(app, "127.0.0.1") as local:
        assert (await local.get("/_admin/faults")).json()["error_rate"] == 0.0  # PUT never applied
        assert (await local.put("/_admin/faults", json={"latency_ms": 1})).status_code == 200
        assert (await local.get("/_admin/health")).status_code == 200
