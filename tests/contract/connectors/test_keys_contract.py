"""Hostile key values through both writers into the real emulators (issue 8, findings 1-3).

Each key is written through the connector's writer, as a plain request (batch_size=1) and
inside ``$batch`` (batch_size=10), then read back by ``$filter`` (a different route than the key
segment): the row the key names holds the write, and a decoy row whose key the value could be
mistaken for (``US-001`` for a literal ``US%2D001``) is untouched. A raw socket server shows what
httpx puts on the request line: the percent-encoded bytes, not a re-normalised path.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from connectors.common.sinkstate import Write
from connectors.common.writer import Done
from connectors.dataverse import DataverseWriter
from connectors.dataverse.client import build_api as dataverse_api
from connectors.finance import FinanceWriter
from connectors.finance.client import build_api as finance_api
from connectors.finance.client import entity_key
from tests.contract.connectors.conftest import dataverse_conn, finance_conn
from tests.contract.connectors.test_dataverse_contract import account_command, company_id
from tests.contract.connectors.test_finance_contract import customer_command
from tests.support.emulators import RunningEmulator

pytestmark = pytest.mark.contract

# Suffixes appended to a per-test prefix (keys stay within the 20-character key columns).
HOSTILE = ["O'B", "50%", "%2D1", "A#B", "A?x=1", "A/B", "Łódź-1", "€"]


def finance_rows(emu: RunningEmulator, account: str) -> list[dict[str, object]]:
    with emu.client() as client:
        flt = "CustomerAccount eq '" + account.replace("'", "''") + "'"
        return list(client.get("CustomersV3", params={"$filter": flt}).json()["value"])


def dataverse_rows(emu: RunningEmulator, number: str) -> list[dict[str, object]]:
    with emu.client() as client:
        flt = "accountnumber eq '" + number.replace("'", "''") + "'"
        return list(client.get("accounts", params={"$filter": flt}).json()["value"])


@pytest.mark.parametrize("batch_size", [1, 10])
async def test_finance_hostile_keys_land_on_exactly_the_named_row(finance_emu: RunningEmulator,
                                                                  batch_size: int) -> None:
    prefix = f"H{uuid.uuid4().hex[:4]}"
    decoy = f"{prefix}-1"  # what "%2D1" would decode to
    conn = finance_conn(finance_emu)
    fo = FinanceWriter(finance_api(conn), conn.api_url, batch_size)
    (made,) = await fo.write([[Write(customer_command(decoy, 1, name="decoy"))]])
    assert isinstance(made, Done)
    accounts = [prefix + s for s in HOSTILE]
    for version, name in ((1, "created"), (2, "updated")):  # POST, then POST-duplicate -> PATCH
        outcomes = await fo.write([[Write(customer_command(a, version, name=f"{name} {a}"))] for a in accounts])
        assert [type(o) for o in outcomes] == [Done] * len(accounts), outcomes
    for account in accounts:
        (row,) = finance_rows(finance_emu, account)
        assert row["Name"] == f"updated {account}"
    assert [r["Name"] for r in finance_rows(finance_emu, decoy)] == ["decoy"]
    outcomes = await fo.write([[Write(customer_command(a, 3, op="delete"))] for a in accounts])
    assert all(isinstance(o, Done) for o in outcomes)
    assert all(finance_rows(finance_emu, a) == [] for a in accounts)
    assert [r["Name"] for r in finance_rows(finance_emu, decoy)] == ["decoy"]
    await fo.api.aclose()


@pytest.mark.parametrize("batch_size", [1, 10])
async def test_dataverse_hostile_keys_land_on_exactly_the_named_row(dataverse_emu: RunningEmulator,
                                                                    batch_size: int) -> None:
    prefix = f"H{uuid.uuid4().hex[:4]}"
    decoy = f"{prefix}-1"
    conn = dataverse_conn(dataverse_emu)
    dv = DataverseWriter(dataverse_api(conn), conn.api_url, batch_size)
    company_id(dataverse_emu)
    (made,) = await dv.write([[Write(account_command(dataverse_emu, decoy, 1, name="decoy"))]])
    assert isinstance(made, Done)
    numbers = [prefix + s for s in HOSTILE]
    for version, name in ((1, "created"), (2, "updated")):  # upsert creates, then updates
        outcomes = await dv.write([[Write(account_command(dataverse_emu, n, version, name=f"{name} {n}"))]
                                   for n in numbers])
        assert [type(o) for o in outcomes] == [Done] * len(numbers), outcomes
    for number in numbers:
        (row,) = dataverse_rows(dataverse_emu, number)
        assert row["name"] == f"updated {number}"
    assert [r["name"] for r in dataverse_rows(dataverse_emu, decoy)] == ["decoy"]
    outcomes = await dv.write([[Write(account_command(dataverse_emu, n, 3, op="delete"))] for n in numbers])
    assert all(isinstance(o, Done) for o in outcomes)
    assert all(dataverse_rows(dataverse_emu, n) == [] for n in numbers)
    await dv.api.aclose()


async def test_the_request_line_on_the_wire_carries_the_encoded_bytes() -> None:
    """httpx must not re-normalise the percent-encoded path (no decoding of %2F, %25, %23)."""
    lines: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append(await reader.readline())
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = entity_key("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "US%2D001 #?/\\ Łódź €"})
    import httpx
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/data/") as client:
        response = await client.request("DELETE", f"http://127.0.0.1:{port}/data/{path}")
        assert response.status_code == 204
    assert lines == [
        b"DELETE /data/CustomersV3(dataAreaId='usmf',CustomerAccount='US%252D001%20%23%3F%2F%5C%20"
        b"%C5%81%C3%B3d%C5%BA%20%E2%82%AC') HTTP/1.1\r\n"]
