"""The Dataverse connectors against the Dataverse emulator over real HTTP."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from connectors.common import metrics
from connectors.common.sinkstate import Write
from connectors.common.source import BadRecord, Change, Page
from connectors.common.writer import Done, Failed
from connectors.dataverse import DataverseReader, DataverseWriter
from connectors.dataverse.client import build_api
from tests.contract.connectors.conftest import dataverse_conn, reset_faults, set_faults
from tests.support.emulators import RunningEmulator
from topics import Command

pytestmark = pytest.mark.contract


def company_id(emu: RunningEmulator, code: str = "usmf") -> str:
    with emu.client() as client:
        rows = client.get("cdm_companies", params={"$filter": f"cdm_companycode eq '{code}'"}).json()["value"]
    return str(rows[0]["cdm_companyid"])


def account_command(emu: RunningEmulator, number: str, version: int, op: str = "upsert",
                    name: str = "Alpine Ski House", **fields: object) -> Command:
    body = {"name": name, "msdyn_company@odata.bind": "/cdm_companies(cdm_companycode='usmf')", **fields}
    return Command.model_validate({
        "command_id": f"customers:{number}:{version}", "map": "customers", "target": "dataverse",
        "entity": "accounts", "key": {"accountnumber": number, "_msdyn_company_value": company_id(emu)},
        "op": op, "fields": body if op == "upsert" else {}, "fingerprint": f"{name}-{version}",
        "source": {"system": "finance", "table": "CustomersV3", "id": f"usmf|{number}",
                   "version": version, "ts_ms": 1}})


def writer(emu: RunningEmulator, batch_size: int = 1) -> DataverseWriter:
    conn = dataverse_conn(emu)
    return DataverseWriter(build_api(conn), conn.api_url, batch_size)


def find_account(emu: RunningEmulator, number: str) -> list[dict[str, object]]:
    with emu.client() as client:
        return list(client.get("accounts", params={"$filter": f"accountnumber eq '{number}'"}).json()["value"])


async def test_source_snapshot_then_creates_updates_deletes(dataverse_emu: RunningEmulator) -> None:
    conn = dataverse_conn(dataverse_emu)
    reader = DataverseReader(conn, build_api(conn))
    pages = [p async for p in reader.snapshot("accounts")]
    snapshot = [i for p in pages for i in p.items]
    assert snapshot and all(isinstance(i, Change) and i.event.op == "r" for i in snapshot)
    first = snapshot[0]
    assert isinstance(first, Change) and first.event.source.company in ("usmf", "demf")
    position = pages[-1].position
    assert "$deltatoken=" in position

    number = f"C-{uuid.uuid4().hex[:6]}"
    dv = writer(dataverse_emu)
    await dv.write([[Write(account_command(dataverse_emu, number, 1))]])
    created = await reader.changes("accounts", position)
    (change,) = [i for i in created.items if isinstance(i, Change)]
    assert change.event.op == "c" and change.event.after is not None
    assert change.event.after["accountnumber"] == number and change.event.source.company == "usmf"
    assert change.event.source.origin == dataverse_emu.client_id and change.event.source.txid
    assert not any(k.startswith("@") for k in change.event.after)

    await dv.write([[Write(account_command(dataverse_emu, number, 2, name="Renamed"))]])
    updated = await reader.changes("accounts", created.position)
    (upd,) = updated.items
    assert isinstance(upd, Change) and upd.event.op == "u" and upd.event.after is not None
    assert upd.event.after["name"] == "Renamed"
    assert int(upd.event.source.version) > int(change.event.source.version)

    await dv.write([[Write(account_command(dataverse_emu, number, 3, op="delete"))]])
    deleted = await reader.changes("accounts", updated.position)
    (gone,) = deleted.items
    assert isinstance(gone, Change) and gone.event.op == "d" and gone.key == change.key
    assert gone.event.before is not None and gone.event.before["name"] == "Renamed"  # last known image
    assert int(gone.event.source.version) > int(upd.event.source.version)
    assert (await reader.changes("accounts", deleted.position)).items == []
    await reader.aclose()
    await dv.api.aclose()


async def test_expired_delta_token_is_position_expired(dataverse_emu: RunningEmulator) -> None:
    from connectors.common.errors import PositionExpired

    conn = dataverse_conn(dataverse_emu)
    reader = DataverseReader(conn, build_api(conn))
    stale = f"{conn.api_url}/accounts?$deltatoken=1!{int(time.time()) - 30 * 86400}"
    with pytest.raises(PositionExpired):
        await reader.changes("accounts", stale)
    await reader.aclose()


async def test_sink_upserts_by_alternate_key_in_batches_and_deletes(dataverse_emu: RunningEmulator) -> None:
    numbers = [f"B-{uuid.uuid4().hex[:6]}" for _ in range(3)]
    dv = writer(dataverse_emu, batch_size=10)
    outcomes = await dv.write([[Write(account_command(dataverse_emu, n, 1))] for n in numbers])
    assert all(isinstance(o, Done) and o.target_id for o in outcomes)
    for n, o in zip(numbers, outcomes, strict=True):
        (row,) = find_account(dataverse_emu, n)
        assert isinstance(o, Done) and row["accountid"] == o.target_id and row["name"] == "Alpine Ski House"
    # upsert again = update in place (no duplicate row)
    await dv.write([[Write(account_command(dataverse_emu, numbers[0], 2, name="Second"))]])
    assert [r["name"] for r in find_account(dataverse_emu, numbers[0])] == ["Second"]
    # delete, then delete again (404 = already gone = done)
    for version in (3, 4):
        (o,) = await dv.write([[Write(account_command(dataverse_emu, numbers[1], version, op="delete"))]])
        assert isinstance(o, Done)
    assert find_account(dataverse_emu, numbers[1]) == []
    await dv.api.aclose()


async def test_transaction_is_one_change_set(dataverse_emu: RunningEmulator) -> None:
    numbers = [f"T-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    cmds = [account_command(dataverse_emu, n, 1).model_copy(update={"tx_size": 2}) for n in numbers]
    cmds = [c.model_copy(update={"source": c.source.model_copy(update={"txid": "tx-1"})}) for c in cmds]
    bad = account_command(dataverse_emu, f"T-{uuid.uuid4().hex[:6]}", 1, no_such_column="x")
    dv = writer(dataverse_emu, batch_size=10)
    outcomes = await dv.write([[Write(c) for c in cmds], [Write(bad)]])
    assert [type(o) for o in outcomes] == [Done, Done, Failed]
    conn = dataverse_conn(dataverse_emu)
    reader = DataverseReader(conn, build_api(conn))
    txids = set()
    async for page in reader.snapshot("accounts"):
        txids |= {i.event.source.txid for i in page.items
                  if isinstance(i, Change) and i.event.after and i.event.after["accountnumber"] in numbers}
    assert len(txids) == 1  # both rows written by one source transaction at the target
    await reader.aclose()
    await dv.api.aclose()


async def test_400_is_rejected_with_status_and_body(dataverse_emu: RunningEmulator) -> None:
    dv = writer(dataverse_emu)
    (outcome,) = await dv.write([[Write(account_command(dataverse_emu, "X-1", 1, no_such_column=1))]])
    assert isinstance(outcome, Failed) and outcome.rejected.status == 400
    assert "no_such_column" in outcome.rejected.body
    await dv.api.aclose()


async def test_429_storm_is_waited_out_per_retry_after(dataverse_emu: RunningEmulator) -> None:
    dv = writer(dataverse_emu)
    before = metrics.sample("dualwrite_connector_throttled", system="dataverse")
    cmd = account_command(dataverse_emu, f"R-{uuid.uuid4().hex[:6]}", 1)
    set_faults(dataverse_emu, throttle_storm_seconds=1.5, throttle_retry_after_seconds=1)
    try:
        started = time.monotonic()
        (outcome,) = await dv.write([[Write(cmd)]])
        elapsed = time.monotonic() - started
    finally:
        reset_faults(dataverse_emu)
    assert isinstance(outcome, Done)
    assert elapsed >= 1.0  # never before the first Retry-After window closed
    assert metrics.sample("dualwrite_connector_throttled", system="dataverse") > before
    await dv.api.aclose()


async def test_5xx_burst_is_retried(dataverse_emu: RunningEmulator) -> None:
    dv = writer(dataverse_emu)
    before = metrics.sample("dualwrite_connector_retries", system="dataverse", reason="500") + \
        metrics.sample("dualwrite_connector_retries", system="dataverse", reason="503")
    number = f"F-{uuid.uuid4().hex[:6]}"
    cmd = account_command(dataverse_emu, number, 1)
    set_faults(dataverse_emu, error_rate=1.0)
    task = asyncio.create_task(dv.write([[Write(cmd)]]))
    await asyncio.sleep(0.6)
    reset_faults(dataverse_emu)
    (outcome,) = await task
    assert isinstance(outcome, Done) and len(find_account(dataverse_emu, number)) == 1
    after = metrics.sample("dualwrite_connector_retries", system="dataverse", reason="500") + \
        metrics.sample("dualwrite_connector_retries", system="dataverse", reason="503")
    assert after > before
    await dv.api.aclose()


def test_undecodable_row_shape_is_a_bad_record() -> None:
    from connectors.dataverse.source import parse_delta_page

    (item,) = parse_delta_page("accounts", "accountid", {"value": [{"name": "no id"}]}, snapshot=False,
                               captured_ms=1).items
    assert isinstance(item, BadRecord)


async def test_writes_during_a_paged_snapshot_show_up_in_the_first_delta(dataverse_emu: RunningEmulator) -> None:
    """No gap: the delta token is fixed when the first snapshot page is served."""
    conn = dataverse_conn(dataverse_emu).model_copy(update={"page_size": 1})
    reader = DataverseReader(conn, build_api(conn))
    code = uuid.uuid4().hex[:4]
    pages: list[Page] = []
    async for page in reader.snapshot("cdm_companies"):
        if not pages:
            with dataverse_emu.client() as api:
                api.post("cdm_companies", json={"cdm_companycode": code, "cdm_name": "Mid-snapshot"}).raise_for_status()
        pages.append(page)
    assert len(pages) >= 2  # really paged
    delta = await reader.changes("cdm_companies", pages[-1].position)
    codes = [i.event.after["cdm_companycode"] for i in delta.items
             if isinstance(i, Change) and i.event.after is not None]
    assert code in codes
    await reader.aclose()
