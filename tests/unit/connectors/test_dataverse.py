from __future__ import annotations

from datetime import UTC, datetime

import httpx
import orjson
import pytest

from connectors.common.batch import BatchResult
from connectors.common.clock import FakeClock
from connectors.common.sinkstate import Write
from connectors.common.source import BadRecord, Change
from connectors.common.writer import Again, Done, Failed
from connectors.dataverse.client import entity_key, primary_key
from connectors.dataverse.sink import DataverseWriter, entity_id
from connectors.dataverse.source import parse_delta_page, token_version
from tests.unit.connectors.fakes import FakeApi, api_client, batch_handler, command
from topics import Command

pytestmark = pytest.mark.unit

ROOT = "https://org.example/api/data/v9.2"
GUID = "5b5d8a3e-1c2f-4e0a-9a55-000000000001"
CO = "0c0c0c0c-1111-2222-3333-444444444444"


@pytest.mark.parametrize(("entity_set", "pk"), [
    ("msdyn_projects", "msdyn_projectid"), ("cdm_companies", "cdm_companyid"),
    ("accounts", "accountid"), ("msdyn_expenses", "msdyn_expenseid"),
    ("bookableresourcecategories", "bookableresourcecategoryid"), ("invoices", "invoiceid"),
])
def test_primary_key_from_entity_set(entity_set: str, pk: str) -> None:
    assert primary_key(entity_set) == pk


def test_alternate_key_segments() -> None:
    assert entity_key("msdyn_projects", {"msdyn_projectnumber": "P-1", "_msdyn_owningcompany_value": CO}) == \
        f"msdyn_projects(msdyn_projectnumber='P-1',_msdyn_owningcompany_value={CO})"
    assert entity_key("accounts", {"accountid": GUID}) == f"accounts({GUID})"
    assert entity_key("accounts", {"accountnumber": "O'Neil"}) == "accounts(accountnumber='O''Neil')"
    assert entity_key("x", {"n": 3, "b": True}) == "x(n=3,b=true)"


def test_entity_id_from_odata_entityid_header() -> None:
    assert entity_id(f"{ROOT}/accounts({GUID})") == GUID
    assert entity_id(None) is None


def row(version: int, **extra: object) -> dict[str, object]:
    return {"@odata.etag": f'W/"{version}"', "msdyn_projectid": GUID, "msdyn_projectnumber": "P-1",
            "_msdyn_owningcompany_value": CO, "versionnumber": version,
            "createdon": "2026-11-25T09:00:00Z", "modifiedon": "2026-11-25T09:00:05Z",
            "_msdyn_owningcompany_value@OData.Community.Display.V1.FormattedValue": "USMF",
            "@dualwrite.txid": "tx-9", "@dualwrite.principal": "alice", "@dualwrite.version": version,
            **extra}


def test_snapshot_page_rows_become_read_events_without_annotations() -> None:
    body = {"value": [row(11)], "@odata.deltaLink": f"{ROOT}/msdyn_projects?$deltatoken=11!1764061200"}
    page = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=True, captured_ms=5)
    (change,) = page.items
    assert isinstance(change, Change) and change.key == GUID
    event = change.event
    assert event.op == "r" and event.source.snapshot == "true"
    assert event.source.version == "11" and event.source.txid == "tx-9" and event.source.origin == "alice"
    assert event.source.ts_ms == int(datetime(2026, 11, 25, 9, 0, 5, tzinfo=UTC).timestamp() * 1000)
    assert event.after is not None and all("@" not in k for k in event.after)
    assert event.after["msdyn_projectnumber"] == "P-1"
    assert page.position.endswith("$deltatoken=11!1764061200") and not page.more


def test_delta_page_updates_creates_and_deletes_with_before_image() -> None:
    known = {GUID: {"msdyn_projectid": GUID, "msdyn_projectnumber": "P-1"}}
    other = "5b5d8a3e-1c2f-4e0a-9a55-000000000002"
    body = {"value": [
        row(12, **{"@dualwrite.op": "u"}),
        {**row(13, **{"@dualwrite.op": "c"}), "msdyn_projectid": other},
        {"@odata.context": f"{ROOT}/$metadata#msdyn_projects/$deletedEntity", "id": GUID, "reason": "deleted",
         "@dualwrite.version": 14, "@dualwrite.txid": "tx-10", "@dualwrite.principal": "bob"},
    ], "@odata.deltaLink": f"{ROOT}/msdyn_projects?$deltatoken=14!1764061300"}
    page = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=False, captured_ms=5,
                            images=known)
    ops = [(c.key, c.event.op, c.event.source.version) for c in page.items if isinstance(c, Change)]
    assert ops == [(GUID, "u", "12"), (other, "c", "13"), (GUID, "d", "14")]
    update, create = page.items[0], page.items[1]
    assert isinstance(update, Change) and update.event.before == known[GUID]  # what Debezium consumers need
    assert isinstance(create, Change) and create.event.before is None
    delete = page.items[2]
    assert isinstance(delete, Change)
    assert delete.event.before == known[GUID] and delete.event.after is None
    assert delete.event.source.origin == "bob"


def test_delta_rows_carry_their_transaction_counted_over_the_captured_tables() -> None:
    shape = {"@dualwrite.txrows": {"msdyn_projects": 1, "msdyn_projecttasks": 2, "msdyn_resourceassignments": 4},
             "@dualwrite.txorder": 3, "@dualwrite.txtableorder": 1, "@dualwrite.op": "c"}
    body = {"value": [row(12, **shape)], "@odata.deltaLink": f"{ROOT}/msdyn_projects?$deltatoken=12!1"}
    captured = ("msdyn_projects", "msdyn_projecttasks")
    (change,) = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=False, captured_ms=5,
                                 captured=captured).items
    assert isinstance(change, Change) and change.event.transaction is not None
    block = change.event.transaction
    assert (block.id, block.total_order, block.data_collection_order, block.event_count) == ("tx-9", 3, 1, 3)
    (everything,) = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=False,
                                     captured_ms=5).items
    assert isinstance(everything, Change) and everything.event.transaction is not None
    assert everything.event.transaction.event_count == 7  # no captured list: every table counts
    # The transaction's other captured table is named, for its poller to be woken at once.
    page = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=False, captured_ms=5,
                            captured=captured)
    assert page.related == {"msdyn_projecttasks"}
    odd = {"value": [row(13, **{**shape, "@dualwrite.txrows": {"msdyn_projecttasks": "2", "x": True}})]}
    assert parse_delta_page("msdyn_projects", "msdyn_projectid", odd, snapshot=False, captured_ms=5).related == set()


@pytest.mark.parametrize("bad", [{"@dualwrite.txrows": "3"}, {"@dualwrite.txorder": 0},
                                 {"@dualwrite.txtableorder": None}, {"@dualwrite.txid": None}])
def test_missing_or_malformed_transaction_annotations_leave_no_block(bad: dict[str, object]) -> None:
    shape = {"@dualwrite.txrows": {"msdyn_projects": 2}, "@dualwrite.txorder": 1,
             "@dualwrite.txtableorder": 1, **bad}
    body = {"value": [row(12, **shape)], "@odata.deltaLink": f"{ROOT}/msdyn_projects?$deltatoken=12!1"}
    (change,) = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=False, captured_ms=5).items
    assert isinstance(change, Change) and change.event.transaction is None
    snapshot = {**body, "value": [row(12, **{**shape, **{"@dualwrite.txorder": 1}})]}
    (read,) = parse_delta_page("msdyn_projects", "msdyn_projectid", snapshot, snapshot=True, captured_ms=5).items
    assert isinstance(read, Change) and read.event.transaction is None  # snapshots carry no transaction


def test_real_dataverse_delete_without_annotations_takes_the_token_version() -> None:
    body = {"value": [{"@odata.context": "x/$deletedEntity", "id": GUID, "reason": "deleted"}],
            "@odata.deltaLink": f"{ROOT}/msdyn_projects?$deltatoken=919042!04/04/2024"}
    (change,) = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=False, captured_ms=5).items
    assert isinstance(change, Change)
    assert change.event.source.version == "919042" and change.event.before == {"msdyn_projectid": GUID}
    assert token_version("...$deltatoken=5!1") == 5


def test_rows_without_id_or_version_are_bad_records() -> None:
    body = {"value": [{"msdyn_projectnumber": "P-9", "versionnumber": 3},
                      {"msdyn_projectid": GUID}, "junk"], "@odata.deltaLink": "x?$deltatoken=3!1"}
    items = parse_delta_page("msdyn_projects", "msdyn_projectid", body, snapshot=False, captured_ms=5).items
    assert all(isinstance(i, BadRecord) for i in items)
    assert "primary key" in items[0].reason and "versionnumber" in items[1].reason  # type: ignore[union-attr]


def test_missing_value_array_is_a_bad_record() -> None:
    (item,) = parse_delta_page("t", "tid", {"oops": 1}, snapshot=False, captured_ms=5).items
    assert isinstance(item, BadRecord)


async def test_writer_upserts_by_alternate_key_and_treats_delete_404_as_done() -> None:
    seen: list[tuple[str, str, object]] = []

    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        seen.append((method, url, orjson.loads(body) if body else None))
        if method == "DELETE":
            return httpx.Response(404, json={"error": {"message": "gone"}})
        return httpx.Response(204, headers={"OData-EntityId": f"{ROOT}/msdyn_projects({GUID})", "ETag": 'W/"77"'})

    fake = FakeApi(batch_handler(answer))
    writer = DataverseWriter(api_client(fake, FakeClock()), ROOT, batch_size=1)
    upsert = command("P-1", 3, entity="msdyn_projects", target="dataverse",
                     fields={"msdyn_subject": "X", "msdyn_customer@odata.bind": "/accounts(accountnumber='A-1')"})
    delete = command("P-2", 4, op="delete", entity="msdyn_projects", target="dataverse")
    outcomes = await writer.write([[Write(upsert)], [Write(delete)]])
    assert [type(o) for o in outcomes] == [Done, Done]
    done = outcomes[0]
    assert isinstance(done, Done) and done.target_id == GUID and done.etag == 'W/"77"'
    assert seen[0] == ("PATCH", f"{ROOT}/msdyn_projects(dataAreaId='usmf',ProjectId='P-1')",
                       {"msdyn_subject": "X", "msdyn_customer@odata.bind": "/accounts(accountnumber='A-1')"})
    assert seen[1][0] == "DELETE"
    assert len(fake.calls) == 2  # batch_size=1: plain requests, no $batch


async def test_update_only_command_sends_if_match_and_a_missing_row_is_rejected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("If-Match") == "*" and "GONE" in str(request.url):
            return httpx.Response(404, json={"error": {"code": "0x80040217", "message": "Does Not Exist"}})
        return httpx.Response(204, headers={"OData-EntityId": f"{ROOT}/accounts({GUID})"})

    fake = FakeApi(handler)
    writer = DataverseWriter(api_client(fake, FakeClock()), ROOT, batch_size=1)
    edit = command("P-1", 3, entity="accounts", target="dataverse").model_copy(update={"update_only": True})
    gone = command("GONE", 3, entity="accounts", target="dataverse").model_copy(update={"update_only": True})
    done, failed = await writer.write([[Write(edit)], [Write(gone)]])
    assert isinstance(done, Done) and done.target_id == GUID
    assert isinstance(failed, Failed) and failed.rejected.status == 404
    assert [c.headers.get("If-Match") for c in fake.calls] == ["*", "*"]
    (plain,) = await writer.write([[Write(command("P-2", 3, entity="accounts", target="dataverse"))]])
    assert isinstance(plain, Done) and fake.calls[-1].headers.get("If-Match") is None  # an upsert


async def test_transaction_goes_as_one_change_set_and_400_rejects_the_whole_unit() -> None:
    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        if "P-BAD" in url:
            return httpx.Response(400, json={"error": {"code": "0x80048d19", "message": "bad column"}})
        return httpx.Response(204)

    fake = FakeApi(batch_handler(answer))
    writer = DataverseWriter(api_client(fake, FakeClock()), ROOT, batch_size=10)
    good = [command(k, 1, txid="t1", tx_size=2, entity="msdyn_projects", target="dataverse") for k in ("A", "B")]
    bad = [command(k, 1, txid="t2", tx_size=2, entity="msdyn_projects", target="dataverse") for k in ("C", "P-BAD")]
    outcomes = await writer.write([[Write(c) for c in good], [Write(c) for c in bad]])
    assert len(fake.calls) == 1 and fake.calls[0].url.path.endswith("$batch")
    assert [type(o) for o in outcomes] == [Done, Done, Failed, Failed]
    failed = outcomes[3]
    assert isinstance(failed, Failed) and failed.rejected.status == 400
    assert "bad column" in failed.rejected.body


async def test_throttled_part_inside_a_batch_is_again_with_retry_after() -> None:
    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "5"}, json={"error": {"message": "busy"}})

    writer = DataverseWriter(api_client(FakeApi(batch_handler(answer)), FakeClock()), ROOT, batch_size=10)
    outcomes = await writer.write([[Write(command("A", 1, entity="msdyn_projects", target="dataverse"))]])
    (again,) = outcomes
    assert isinstance(again, Again) and again.retry.retry_after == 5.0


def test_judge_reads_etag_from_a_representation_body() -> None:
    writer = DataverseWriter(api_client(FakeApi(lambda r: httpx.Response(200)), FakeClock()), ROOT)
    w = Write(command("A", 1, entity="accounts", target="dataverse"))
    verdict = writer.judge(w, writer.plan(w), BatchResult(200, {}, b'{"@odata.etag": "W/\\"5\\""}'))
    assert isinstance(verdict, Done) and verdict.etag == 'W/"5"'


async def test_unreadable_batch_response_is_retried_not_dead_lettered() -> None:
    fake = FakeApi(lambda r: httpx.Response(200, headers={"Content-Type": "text/plain"}, content=b"oops"))
    writer = DataverseWriter(api_client(fake, FakeClock()), ROOT, batch_size=10)
    (outcome,) = await writer.write([[Write(command("A", 1, entity="accounts", target="dataverse"))]])
    assert isinstance(outcome, Again) and "unreadable" in outcome.retry.reason


async def test_unreadable_page_is_retried_and_never_ends_a_snapshot() -> None:
    from pydantic import SecretStr

    from connectors.common.errors import RetryLater
    from connectors.dataverse.client import DataverseConnection
    from connectors.dataverse.source import DataverseReader
    from tests.unit.connectors.fakes import TOKEN_URL

    fake = FakeApi(lambda r: httpx.Response(200, json={"error": "half a page"}))
    conn = DataverseConnection(url="https://org.example", token_url=TOKEN_URL, client_id="c",
                               client_secret=SecretStr("s"))
    reader = DataverseReader(conn, api_client(fake, FakeClock()))
    with pytest.raises(RetryLater):
        _ = [p async for p in reader.snapshot("accounts")]
    with pytest.raises(RetryLater):
        await reader.changes("accounts", f"{ROOT}/accounts?$deltatoken=1!1")
    await reader.aclose()


def dv_command(number: str, op: str = "upsert", bind: bool = True, update_only: bool = False) -> Command:
    fields: dict[str, object] = {"name": "N", **({"msdyn_company@odata.bind": f"/cdm_companies({CO})"} if bind else {})}
    base = command(number, 1, op=op, fields=fields, entity="accounts", target="dataverse")
    return base.model_copy(update={"key": {"accountnumber": number, "_msdyn_company_value": CO},
                                   "update_only": update_only})


def rows_by_filter(existing: dict[str, str]) -> tuple[FakeApi, list[tuple[str, str, object]]]:
    """A Web API that answers `$filter` reads from ``existing`` (number -> id) and any write."""
    seen: list[tuple[str, str, object]] = []

    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        seen.append((method, url, orjson.loads(body) if body else None))
        if method == "GET":
            flt = httpx.URL(url).params["$filter"]
            hits = [{"accountid": i} for n, i in existing.items() if f"accountnumber eq '{n}'" in flt]
            return httpx.Response(200, json={"value": hits})
        if method == "DELETE":
            return httpx.Response(404 if url.split("(")[-1].rstrip(")") not in existing.values() else 204)
        return httpx.Response(204, headers={"OData-EntityId": f"{ROOT}/accounts({GUID})"})

    return FakeApi(batch_handler(answer)), seen


@pytest.mark.parametrize("batch_size", [1, 10])
async def test_a_key_dataverse_cannot_take_in_a_url_is_found_by_filter_and_written_by_id(batch_size: int) -> None:
    fake, seen = rows_by_filter({"A/B": GUID})
    writer = DataverseWriter(api_client(fake, FakeClock()), ROOT, batch_size=batch_size)
    (done,) = await writer.write([[Write(dv_command("A/B"))]])
    assert isinstance(done, Done)
    (get, patch) = seen
    assert get[0] == "GET" and httpx.URL(get[1]).params["$filter"] == \
        f"accountnumber eq 'A/B' and _msdyn_company_value eq {CO}"
    assert patch[0] == "PATCH" and patch[1] == f"{ROOT}/accounts({GUID})"
    assert patch[2] == {"accountnumber": "A/B", "name": "N", "msdyn_company@odata.bind": f"/cdm_companies({CO})"}
    assert all("A/B" not in str(r.url) and "A%2FB" not in str(r.url.raw_path) for r in fake.calls
               if r.method != "GET")


async def test_a_missing_row_with_such_a_key_is_created_under_a_new_id_with_its_key_columns() -> None:
    fake, seen = rows_by_filter({})
    writer = DataverseWriter(api_client(fake, FakeClock()), ROOT, batch_size=1)
    (done,) = await writer.write([[Write(dv_command("50%#"))]])
    assert isinstance(done, Done)
    method, url, body = seen[1]
    assert method == "PATCH" and url.startswith(f"{ROOT}/accounts(") and "50%" not in url
    assert isinstance(body, dict) and body["accountnumber"] == "50%#"
    assert fake.calls[1].headers.get("If-Match") is None  # an upsert may create


async def test_such_keys_delete_missing_rows_as_done_and_never_create_without_the_lookup_bound() -> None:
    fake, seen = rows_by_filter({})
    writer = DataverseWriter(api_client(fake, FakeClock()), ROOT, batch_size=1)
    outcomes = await writer.write([[Write(dv_command("A?1", op="delete"))],
                                   [Write(dv_command("A?2", bind=False))],
                                   [Write(dv_command("A?3", update_only=True))]])
    by = {o.write.command.key["accountnumber"]: o for o in outcomes}
    gone, unbound, edit = by["A?1"], by["A?2"], by["A?3"]
    assert isinstance(gone, Done)
    assert isinstance(unbound, Failed) and unbound.rejected.error_class == "InvalidKey"
    assert "msdyn_company@odata.bind" in unbound.rejected.reason
    assert not any(m == "PATCH" and isinstance(b, dict) and b.get("accountnumber") == "A?2" for m, _, b in seen)
    patch = next(r for r in fake.calls if r.method == "PATCH")
    assert patch.headers["If-Match"] == "*"  # an update-only edit never creates the row
    assert isinstance(edit, Done)  # the fake answers 204; a real 404 would be rejected


async def test_a_snapshot_requests_the_next_page_before_handing_one_over_and_nothing_after_it_stops() -> None:
    """The next page's request is out before a page is handed over (`read_ahead`); a snapshot
    stopped early (closed) makes no request after that."""
    import asyncio

    from pydantic import SecretStr

    from connectors.dataverse.client import DataverseConnection
    from connectors.dataverse.source import DataverseReader
    from tests.unit.connectors.fakes import TOKEN_URL

    def endless(request: httpx.Request) -> httpx.Response:
        n = int(request.url.params.get("page", "0"))
        return httpx.Response(200, json={"value": [row(n)], "@odata.nextLink": f"{ROOT}/accounts?page={n + 1}"})

    fake = FakeApi(endless)
    conn = DataverseConnection(url="https://org.example", token_url=TOKEN_URL, client_id="c",
                               client_secret=SecretStr("s"))
    reader = DataverseReader(conn, api_client(fake, FakeClock()))
    pages = reader.snapshot("accounts")
    await anext(pages)
    assert len(fake.calls) >= 2  # page 2 was asked for before page 1 came out
    await pages.aclose()
    before = len(fake.calls)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(fake.calls) == before <= 3
    await reader.aclose()
