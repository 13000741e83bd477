"""The Finance connectors against the Finance emulator over real HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from connectors.common import metrics
from connectors.common.sinkstate import Write
from connectors.common.source import Change, Page
from connectors.common.writer import Done, Failed
from connectors.finance import FinanceReader, FinanceWriter
from connectors.finance.client import build_api
from tests.contract.connectors.conftest import finance_conn, reset_faults, set_faults
from tests.support.emulators import RunningEmulator
from topics import Command

pytestmark = pytest.mark.contract


def customer_command(account: str, version: int, op: str = "upsert", name: str = "Northwind",
                     txid: str | None = None, tx_size: int | None = None, company: str = "usmf",
                     **fields: object) -> Command:
    body = {"Name": name, "CustomerGroupId": "30", "SalesCurrencyCode": "USD", **fields}
    return Command.model_validate({
        "command_id": f"customers:{account}:{version}", "map": "customers", "target": "finance",
        "entity": "CustomersV3", "key": {"dataAreaId": company, "CustomerAccount": account},
        "op": op, "fields": body if op == "upsert" else {}, "fingerprint": f"{name}-{version}",
        "source": {"system": "dataverse", "table": "accounts", "id": f"guid-{account}",
                   "version": version, "ts_ms": 1, "txid": txid}, "tx_size": tx_size})


def writer(emu: RunningEmulator, batch_size: int = 1) -> FinanceWriter:
    conn = finance_conn(emu)
    return FinanceWriter(build_api(conn), conn.api_url, batch_size)


def find(emu: RunningEmulator, account: str, company: str = "usmf") -> list[dict[str, object]]:
    with emu.client() as client:
        response = client.get(f"CustomersV3(dataAreaId='{company}',CustomerAccount='{account}')",
                              params={"cross-company": "true"})
    return [] if response.status_code == 404 else [response.json()]


async def test_source_snapshot_then_feed_creates_updates_deletes(finance_emu: RunningEmulator) -> None:
    conn = finance_conn(finance_emu)
    reader = FinanceReader(conn, build_api(conn))
    pages = [p async for p in reader.snapshot("CustomersV3")]
    rows = [i for p in pages for i in p.items]
    assert rows and all(isinstance(i, Change) and i.event.op == "r" for i in rows)
    first = rows[0]
    assert isinstance(first, Change) and "|" in first.key and first.event.source.company
    position = pages[-1].position
    assert position.isdigit()

    account = f"N-{uuid.uuid4().hex[:6]}"
    fo = writer(finance_emu)
    await fo.write([[Write(customer_command(account, 1))]])
    await fo.write([[Write(customer_command(account, 2, name="Renamed"))]])
    await fo.write([[Write(customer_command(account, 3, op="delete"))]])
    page = await reader.changes("CustomersV3", position)
    ops = [(i.key, i.event.op) for i in page.items if isinstance(i, Change)]
    assert ops == [(f"usmf|{account}", "c"), (f"usmf|{account}", "u"), (f"usmf|{account}", "d")]
    created, updated, deleted = (i for i in page.items if isinstance(i, Change))
    assert created.event.source.origin == finance_emu.client_id and created.event.source.company == "usmf"
    assert updated.event.after is not None and updated.event.after["Name"] == "Renamed"
    assert deleted.event.before is not None and deleted.event.before["Name"] == "Renamed"
    versions = [int(c.event.source.version) for c in (created, updated, deleted)]
    assert versions == sorted(versions) and int(page.position) == versions[-1]
    assert (await reader.changes("CustomersV3", page.position)).items == []
    await reader.aclose()
    await fo.api.aclose()


async def test_sink_creates_with_post_updates_with_patch_and_deletes(finance_emu: RunningEmulator) -> None:
    account = f"S-{uuid.uuid4().hex[:6]}"
    fo = writer(finance_emu)
    (created,) = await fo.write([[Write(customer_command(account, 1))]])
    assert isinstance(created, Done) and created.target_id and created.etag
    (row,) = find(finance_emu, account)
    assert row["Name"] == "Northwind" and str(row["RecId"]) == created.target_id
    # No prior ack: POST first, duplicate -> PATCH; the row is updated, not duplicated.
    (again,) = await fo.write([[Write(customer_command(account, 2, name="Second"))]])
    assert isinstance(again, Done) and find(finance_emu, account)[0]["Name"] == "Second"
    for version in (3, 4):  # second delete: 404 = already gone = done
        (gone,) = await fo.write([[Write(customer_command(account, version, op="delete"))]])
        assert isinstance(gone, Done)
    assert find(finance_emu, account) == []
    await fo.api.aclose()


async def test_rows_of_another_company_than_the_callers_are_updated_and_deleted(
        finance_emu: RunningEmulator) -> None:
    """FO resolves a keyed URL in the caller's default company (usmf) unless cross-company:
    a demf row's PATCH was a 404, and its DELETE a 404 taken for "already gone"."""
    account = f"D-{uuid.uuid4().hex[:6]}"
    fo = writer(finance_emu)
    (created,) = await fo.write([[Write(customer_command(account, 1, company="demf"))]])
    assert isinstance(created, Done) and find(finance_emu, account, "demf")[0]["Name"] == "Northwind"
    # POST first (no prior ack), a duplicate, then the PATCH of the demf row.
    (updated,) = await fo.write([[Write(customer_command(account, 2, name="Zweite", company="demf"))]])
    assert isinstance(updated, Done) and find(finance_emu, account, "demf")[0]["Name"] == "Zweite"
    (gone,) = await fo.write([[Write(customer_command(account, 3, op="delete", company="demf"))]])
    assert isinstance(gone, Done) and find(finance_emu, account, "demf") == []
    await fo.api.aclose()


async def test_transaction_lands_whole_as_one_change_set(finance_emu: RunningEmulator) -> None:
    conn = finance_conn(finance_emu)
    reader = FinanceReader(conn, build_api(conn))
    position = (await reader.changes("CustomersV3", "0")).position
    while True:
        page = await reader.changes("CustomersV3", position)
        position = page.position
        if not page.more:
            break
    accounts = [f"X-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    fo = writer(finance_emu, batch_size=10)
    unit = [Write(customer_command(a, 1, txid="src-tx", tx_size=3)) for a in accounts]
    outcomes = await fo.write([unit])
    assert all(isinstance(o, Done) for o in outcomes)
    page = await reader.changes("CustomersV3", position)
    assert {i.event.source.txid for i in page.items if isinstance(i, Change)} and \
        len({i.event.source.txid for i in page.items if isinstance(i, Change)}) == 1
    await reader.aclose()
    await fo.api.aclose()


async def test_400_is_rejected_with_status_and_body(finance_emu: RunningEmulator) -> None:
    fo = writer(finance_emu)
    (outcome,) = await fo.write([[Write(customer_command(f"E-{uuid.uuid4().hex[:4]}", 1, NoSuchField=1))]])
    assert isinstance(outcome, Failed) and outcome.rejected.status == 400
    assert "NoSuchField" in outcome.rejected.body
    await fo.api.aclose()


async def test_429_storm_is_waited_out_per_retry_after(finance_emu: RunningEmulator) -> None:
    fo = writer(finance_emu)
    before = metrics.sample("dualwrite_connector_throttled", system="finance")
    set_faults(finance_emu, throttle_storm_seconds=1.5, throttle_retry_after_seconds=1)
    try:
        started = time.monotonic()
        (outcome,) = await fo.write([[Write(customer_command(f"R-{uuid.uuid4().hex[:6]}", 1))]])
        elapsed = time.monotonic() - started
    finally:
        reset_faults(finance_emu)
    assert isinstance(outcome, Done) and elapsed >= 1.0
    assert metrics.sample("dualwrite_connector_throttled", system="finance") > before
    await fo.api.aclose()


async def test_5xx_burst_is_retried(finance_emu: RunningEmulator) -> None:
    fo = writer(finance_emu)
    account = f"F-{uuid.uuid4().hex[:6]}"
    set_faults(finance_emu, error_rate=1.0)
    task = asyncio.create_task(fo.write([[Write(customer_command(account, 1))]]))
    await asyncio.sleep(0.6)
    reset_faults(finance_emu)
    (outcome,) = await task
    assert isinstance(outcome, Done) and len(find(finance_emu, account)) == 1
    await fo.api.aclose()


async def test_writes_during_a_paged_snapshot_show_up_after_its_position(finance_emu: RunningEmulator) -> None:
    conn = finance_conn(finance_emu).model_copy(update={"page_size": 2})
    reader = FinanceReader(conn, build_api(conn))
    account = f"M-{uuid.uuid4().hex[:6]}"
    pages: list[Page] = []
    async for page in reader.snapshot("CustomersV3"):
        if not pages:
            with finance_emu.client() as api:
                api.post("CustomersV3", json={"dataAreaId": "usmf", "CustomerAccount": account}).raise_for_status()
        pages.append(page)
    assert len(pages) >= 2
    delta = await reader.changes("CustomersV3", pages[-1].position)
    assert f"usmf|{account}" in [i.key for i in delta.items if isinstance(i, Change)]
    await reader.aclose()
