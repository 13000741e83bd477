from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from connectors.common.clock import FakeClock
from connectors.common.errors import Rejected
from connectors.common.sinkstate import Write
from connectors.common.source import BadRecord, Change, Page
from connectors.common.writer import Again, Done, Failed
from connectors.finance.client import entity_key, key_string, parse_metadata_keys
from connectors.finance.sink import REFERENCED_RETRIES, FinanceWriter
from connectors.finance.source import feed_entry_change, snapshot_row_change
from tests.unit.connectors.fakes import FakeApi, api_client, applied, batch_handler, command
from topics import ChangeEvent

pytestmark = pytest.mark.unit

ROOT = "https://fo.example/data"
KEYS = ("dataAreaId", "ProjectId")


def test_key_strings_are_stable_and_reversible() -> None:
    assert key_string({"dataAreaId": "usmf", "ProjectId": "P-1"}, KEYS) == "usmf|P-1"
    assert key_string({"ProjectId": "P-1", "dataAreaId": "usmf"}, KEYS) == "usmf|P-1"  # key order, not dict order
    assert key_string({"dataAreaId": "usmf", "ProjectId": "a|b\\c"}, KEYS) == "usmf|a\\|b\\\\c"
    assert key_string({"dataAreaId": "usmf"}) == "usmf"


def test_entity_key_names_every_field() -> None:
    assert entity_key("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-1"}) == \
        "ProjectsV2(dataAreaId='usmf',ProjectId='P-1')"
    assert entity_key("X", {"dataAreaId": "usmf", "Name": "O'Neil", "Line": 2}) == \
        "X(dataAreaId='usmf',Name='O''Neil',Line=2)"


def test_metadata_keys() -> None:
    csdl = """<?xml version="1.0"?><edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
    <edmx:DataServices><Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Microsoft.Dynamics.DataEntities">
    <EntityType Name="ProjectV2"><Key><PropertyRef Name="dataAreaId"/><PropertyRef Name="ProjectId"/></Key>
    <Property Name="ProjectName" Type="Edm.String"/></EntityType>
    <EntityContainer Name="C"><EntitySet Name="ProjectsV2" EntityType="Microsoft.Dynamics.DataEntities.ProjectV2"/>
    </EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"""
    assert parse_metadata_keys(csdl) == {"ProjectsV2": KEYS}


def entry(version: int, op: str, row: dict[str, object] | None) -> dict[str, object]:
    return {"version": version, "entity": "ProjectsV2", "op": op,
            "key": {"dataAreaId": "usmf", "ProjectId": "P-1"}, "row": row, "txid": "tx-1",
            "principal": "batch:alice", "ts_ms": 1764063000123}


def test_feed_entries_become_events() -> None:
    row = {"@odata.etag": 'W/"42"', "dataAreaId": "usmf", "ProjectId": "P-1", "ProjectName": "Alpha",
           "RecVersion": 42, "RecId": 5637144576}
    change = feed_entry_change(entry(42, "u", row), KEYS, captured_ms=9)
    assert isinstance(change, Change) and change.key == "usmf|P-1"
    e = change.event
    assert (e.op, e.source.version, e.source.ts_ms, e.source.company, e.source.txid, e.source.origin) == \
        ("u", "42", 1764063000123, "usmf", "tx-1", "batch:alice")
    assert e.after is not None and "@odata.etag" not in e.after and e.after["ProjectName"] == "Alpha"
    assert e.before is None  # no image known: Debezium's null before


def test_an_update_carries_the_last_known_image_as_before() -> None:
    row = {"dataAreaId": "usmf", "ProjectId": "P-1", "ProjectName": "Beta", "RecVersion": 44}
    last = {"dataAreaId": "usmf", "ProjectId": "P-1", "ProjectName": "Alpha", "RecVersion": 42}
    change = feed_entry_change(entry(44, "u", row), KEYS, captured_ms=9, before=last)
    assert isinstance(change, Change) and change.event.before == last and change.event.after == row
    created = feed_entry_change(entry(44, "c", row), KEYS, captured_ms=9, before=last)
    assert isinstance(created, Change) and created.event.before is None


def test_feed_delete_uses_the_last_known_image_or_the_key() -> None:
    plain = feed_entry_change(entry(43, "d", None), KEYS, captured_ms=9)
    assert isinstance(plain, Change)
    assert plain.event.op == "d" and plain.event.before == {"dataAreaId": "usmf", "ProjectId": "P-1"}
    known = feed_entry_change(entry(43, "d", None), KEYS, captured_ms=9, before={"ProjectName": "Alpha"})
    assert isinstance(known, Change) and known.event.before == {"ProjectName": "Alpha"}


@pytest.mark.parametrize("broken", [
    {"entity": "ProjectsV2", "op": "u", "key": {"ProjectId": "P"}, "row": {}},  # no version
    {"version": 1, "entity": "ProjectsV2", "op": "zap", "key": {"ProjectId": "P"}, "row": {}},
    {"version": 1, "entity": "ProjectsV2", "op": "u", "key": {}, "row": {}},
    {"version": 1, "entity": "ProjectsV2", "op": "u", "key": {"ProjectId": "P"}, "row": None},
    "not an object",
])
def test_broken_feed_entries_are_bad_records(broken: object) -> None:
    assert isinstance(feed_entry_change(broken, KEYS, captured_ms=9), BadRecord)


def test_snapshot_rows() -> None:
    row = {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": 7, "ModifiedDateTime": "2026-11-25T09:00:00Z"}
    change = snapshot_row_change("ProjectsV2", row, KEYS, captured_ms=9)
    assert isinstance(change, Change) and change.event.op == "r" and change.event.source.version == "7"
    assert isinstance(snapshot_row_change("ProjectsV2", {"dataAreaId": "usmf", "RecVersion": 7}, KEYS, 9), BadRecord)
    assert isinstance(snapshot_row_change("ProjectsV2", {**row, "RecVersion": None}, KEYS, 9), BadRecord)


class FakeFinance:
    """Update-only PATCH and create-only POST over a dict, as FO behaves."""

    def __init__(self, existing: set[str]) -> None:
        self.rows = set(existing)
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method: str, url: str, body: bytes) -> httpx.Response:
        self.calls.append((method, url))
        if method == "POST":
            data = orjson.loads(body)
            key = data["ProjectId"]
            if key in self.rows:
                return httpx.Response(400, json={"error": {"code": "WriteFailed",
                                                           "message": "Cannot create a record. The record already exists."}})
            self.rows.add(key)
            return httpx.Response(201, json={"@odata.etag": 'W/"1"', "RecId": 5637144577, **data})
        key = url.split("ProjectId='")[1].split("'")[0]
        if key not in self.rows:
            return httpx.Response(404, json={"error": {"code": "NotFound", "message": "No record"}})
        if method == "DELETE":
            self.rows.discard(key)
            return httpx.Response(204)
        return httpx.Response(200, json={"@odata.etag": 'W/"2"', "RecId": 5637144576})


async def test_patch_miss_falls_back_to_post_with_key_in_body() -> None:
    fo = FakeFinance(existing=set())
    writer = FinanceWriter(api_client(FakeApi(batch_handler(fo)), FakeClock(), base=ROOT), ROOT, batch_size=1)
    cmd = command("P-1", 2)
    # We applied it before (so PATCH first), but someone deleted it in Finance meanwhile.
    (outcome,) = await writer.write([[Write(cmd, applied(command("P-1", 1)))]])
    assert isinstance(outcome, Done) and outcome.target_id == "5637144577"
    assert [m for m, _ in fo.calls] == ["PATCH", "POST"]
    assert "P-1" in fo.rows


async def test_update_only_command_never_creates_the_row() -> None:
    fo = FakeFinance(existing={"P-1"})
    writer = FinanceWriter(api_client(FakeApi(batch_handler(fo)), FakeClock(), base=ROOT), ROOT, batch_size=1)
    edit = command("P-1", 2).model_copy(update={"update_only": True})
    gone = command("P-9", 2).model_copy(update={"update_only": True})
    done, failed = await writer.write([[Write(edit)], [Write(gone)]])  # never applied: still PATCH
    assert isinstance(done, Done)
    assert isinstance(failed, Failed) and failed.rejected.status == 404
    assert "update-only" in str(failed.rejected)
    assert fo.calls == [("PATCH", fo.calls[0][1]), ("PATCH", fo.calls[1][1])] and "P-9" not in fo.rows


async def test_post_duplicate_falls_back_to_patch() -> None:
    fo = FakeFinance(existing={"P-1"})
    writer = FinanceWriter(api_client(FakeApi(batch_handler(fo)), FakeClock(), base=ROOT), ROOT, batch_size=1)
    (outcome,) = await writer.write([[Write(command("P-1", 2))]])
    assert isinstance(outcome, Done) and outcome.etag == 'W/"2"'
    assert [m for m, _ in fo.calls] == ["POST", "PATCH"]


async def test_change_set_replans_only_the_failing_request() -> None:
    fo = FakeFinance(existing={"A"})
    writer = FinanceWriter(api_client(FakeApi(batch_handler(fo)), FakeClock(), base=ROOT), ROOT, batch_size=10)
    unit = [Write(command(k, 1, txid="t", tx_size=2)) for k in ("A", "B")]  # both planned as POST
    outcomes = await writer.write([unit])
    assert [type(o) for o in outcomes] == [Done, Done]
    # round 1: POST A fails (duplicate) -> rolled back; round 2: PATCH A + POST B in one change set
    assert fo.calls == [("POST", f"{ROOT}/ProjectsV2"), ("PATCH", f"{ROOT}/ProjectsV2(dataAreaId='usmf',ProjectId='A')?cross-company=true"),
                        ("POST", f"{ROOT}/ProjectsV2")]
    assert fo.rows == {"A", "B"}


async def test_delete_of_missing_row_is_done_and_400_is_failed() -> None:
    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        if method == "DELETE":
            return httpx.Response(404, json={"error": {"message": "No record"}})
        return httpx.Response(400, json={"error": {"code": "InvalidValue", "message": "bad enum"}})

    writer = FinanceWriter(api_client(FakeApi(batch_handler(answer)), FakeClock(), base=ROOT), ROOT, batch_size=1)
    outcomes = await writer.write([[Write(command("P-1", 3, op="delete"))], [Write(command("P-2", 3))]])
    assert isinstance(outcomes[0], Done)
    assert isinstance(outcomes[1], Failed) and outcomes[1].rejected.status == 400
    assert "bad enum" in outcomes[1].rejected.body


def fo_rows(n: int, recid: bool = True) -> list[dict[str, object]]:
    return [{"dataAreaId": "usmf", "ProjectId": f"P-{i}", "RecVersion": 10 + i,
             **({"RecId": 5637144576 + i} if recid else {})} for i in range(n)]


def feed_and_rows(rows: list[dict[str, object]], keyset: bool) -> FakeApi:
    def handler(request: httpx.Request) -> httpx.Response:
        path, q = request.url.path, request.url.params
        if path.endswith("/ChangeFeed"):
            assert q["top"] == "0"  # the position is asked for, no history is read
            return httpx.Response(200, json={"value": [], "watermark": 50})
        if not keyset and "$orderby" in q:
            return httpx.Response(400, json={"error": {"message": "Could not find a property named 'RecId'"}})
        if keyset:
            after = int(q["$filter"].split()[-1]) if "$filter" in q else 0
            page = [r for r in rows if int(str(r["RecId"])) > after][: int(q["$top"])]
            return httpx.Response(200, json={"value": page})
        skip = int(q.get("$skip", "0"))
        body: dict[str, object] = {"value": rows[skip: skip + 2]}
        if skip + 2 < len(rows):
            body["@odata.nextLink"] = f"{ROOT}/ProjectsV2?cross-company=true&$skip={skip + 2}"
        return httpx.Response(200, json=body)

    return FakeApi(handler)


@pytest.mark.parametrize("keyset", [True, False])
async def test_snapshot_position_is_taken_first_and_all_rows_are_read(keyset: bool) -> None:
    from connectors.finance.client import FinanceConnection
    from connectors.finance.source import FinanceReader
    from tests.unit.connectors.fakes import SECRET, TOKEN_URL

    fake = feed_and_rows(fo_rows(5, recid=keyset), keyset)
    conn = FinanceConnection(url="https://fo.example", token_url=TOKEN_URL, client_id="c",
                             client_secret=SECRET, page_size=2, keys={"ProjectsV2": KEYS})
    reader = FinanceReader(conn, api_client(fake, FakeClock(), base=ROOT))
    pages = [p async for p in reader.snapshot("ProjectsV2")]
    keys = [i.key for p in pages for i in p.items if isinstance(i, Change)]
    assert keys == [f"usmf|P-{i}" for i in range(5)]
    assert [p.position for p in pages][-1] == "50" and all(p.position == "" for p in pages[:-1])
    assert fake.calls[0].url.path.endswith("/ChangeFeed")  # position captured before any row
    await reader.aclose()


async def test_tables_polled_together_share_one_feed_request() -> None:
    import asyncio

    from connectors.finance.client import FinanceConnection
    from connectors.finance.source import FinanceReader
    from tests.unit.connectors.fakes import SECRET, TOKEN_URL

    def e(version: int, entity: str, key: str) -> dict[str, object]:
        return {"version": version, "entity": entity, "op": "u", "key": {"dataAreaId": "usmf", "Id": key},
                "row": {"dataAreaId": "usmf", "Id": key}, "txid": f"t{version}", "principal": "p", "ts_ms": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params
        if "Bogus" in q["entities"].split(","):
            return httpx.Response(400, json={"error": {"message": "'Bogus' is not an entity of this service."}})
        entries = [e(11, "ProjectsV2", "P-1"), e(12, "CustomersV3", "C-1"), e(13, "ProjectsV2", "P-2")]
        wanted = {n.lower() for n in q["entities"].split(",")}
        value = [x for x in entries if x["version"] > int(q["since"]) and str(x["entity"]).lower() in wanted]  # type: ignore[operator]
        return httpx.Response(200, json={"value": value, "watermark": 13})

    fake = FakeApi(handler)
    keys = {"ProjectsV2": ("dataAreaId", "Id"), "CustomersV3": ("dataAreaId", "Id")}
    conn = FinanceConnection(url="https://fo.example", token_url=TOKEN_URL, client_id="c",
                             client_secret=SECRET, keys=keys)
    reader = FinanceReader(conn, api_client(fake, FakeClock(), base=ROOT))
    projects, customers = await asyncio.gather(reader.changes("ProjectsV2", "10"), reader.changes("CustomersV3", "12"))
    assert len(fake.calls) == 1
    assert fake.calls[0].url.params["entities"] == "CustomersV3,ProjectsV2"
    assert fake.calls[0].url.params["since"] == "10"
    assert [i.key for i in projects.items] == ["usmf|P-1", "usmf|P-2"] and projects.position == "13"  # type: ignore[union-attr]
    assert customers.items == [] and customers.position == "13"  # v12 was already behind its position

    # A bad table name fails alone; the good one still gets its page.
    good, bad = await asyncio.gather(reader.changes("ProjectsV2", "12"), reader.changes("Bogus", "0"),
                                     return_exceptions=True)
    assert isinstance(good, Page) and [i.key for i in good.items] == ["usmf|P-2"]  # type: ignore[union-attr]
    assert isinstance(bad, Rejected) and bad.status == 400
    await reader.aclose()


async def test_changes_of_one_source_transaction_carry_its_position_and_event_count() -> None:
    from connectors.common.source import Change
    from connectors.finance.client import FinanceConnection
    from connectors.finance.source import FinanceReader
    from tests.unit.connectors.fakes import SECRET, TOKEN_URL

    def e(version: int, entity: str, key: str, txid: str) -> dict[str, object]:
        return {"version": version, "entity": entity, "op": "c", "key": {"dataAreaId": "usmf", "Id": key},
                "row": {"dataAreaId": "usmf", "Id": key}, "txid": txid, "principal": "p", "ts_ms": 1}

    entries = [e(21, "CustomersV3", "C-1", "tx-a"), e(22, "ProjectsV2", "P-1", "tx-a"),
               e(23, "CustomersV3", "C-2", "tx-a"), e(24, "CustomersV3", "C-3", "tx-b")]
    fake = FakeApi(lambda request: httpx.Response(200, json={"value": entries, "watermark": 24}))
    keys = {"ProjectsV2": ("dataAreaId", "Id"), "CustomersV3": ("dataAreaId", "Id")}
    conn = FinanceConnection(url="https://fo.example", token_url=TOKEN_URL, client_id="c",
                             client_secret=SECRET, keys=keys)
    reader = FinanceReader(conn, api_client(fake, FakeClock(), base=ROOT))
    pages = await reader._read_feed({"CustomersV3": 20, "ProjectsV2": 20})
    assert all(isinstance(p, Page) for p in pages.values())
    blocks = {i.key: i.event.transaction for p in pages.values() if isinstance(p, Page)
              for i in p.items if isinstance(i, Change)}
    assert {k: (b.id, b.total_order, b.data_collection_order, b.event_count)  # type: ignore[union-attr]
            for k, b in blocks.items()} == {
        "usmf|C-1": ("tx-a", 1, 1, 3), "usmf|P-1": ("tx-a", 2, 1, 3), "usmf|C-2": ("tx-a", 3, 2, 3),
        "usmf|C-3": ("tx-b", 1, 1, 1)}
    await reader.aclose()


async def test_a_transaction_read_in_two_pages_counts_its_events_in_every_captured_table() -> None:
    """A vendor invoice's header and lines: the header's poller reads its table alone; the
    feed's ``txentries`` make its block count the two lines of the other captured table (and
    not the uncaptured pending invoice), so the processor waits for them: one change set."""
    from connectors.common.source import Change
    from connectors.finance.client import FinanceConnection
    from connectors.finance.source import FinanceReader
    from tests.unit.connectors.fakes import SECRET, TOKEN_URL

    shape = {"ProjectVendorInvoices": 1, "ProjectVendorInvoiceLines": 2, "PendingVendorInvoices": 1}
    header = {"version": 31, "entity": "ProjectVendorInvoices", "op": "c",
              "key": {"dataAreaId": "usmf", "InvoiceId": "VI-1"}, "row": {"dataAreaId": "usmf", "InvoiceId": "VI-1"},
              "txid": "tx-v", "principal": "p", "ts_ms": 1, "txorder": 1, "txentries": shape}
    fake = FakeApi(lambda request: httpx.Response(200, json={"value": [header], "watermark": 31}))
    keys = {"ProjectVendorInvoices": ("dataAreaId", "InvoiceId")}
    conn = FinanceConnection(url="https://fo.example", token_url=TOKEN_URL, client_id="c",
                             client_secret=SECRET, keys=keys)
    reader = FinanceReader(conn, api_client(fake, FakeClock(), base=ROOT),
                           captured=("ProjectVendorInvoices", "ProjectVendorInvoiceLines"))
    page = (await reader._read_feed({"ProjectVendorInvoices": 30}))["ProjectVendorInvoices"]
    assert isinstance(page, Page)
    (item,) = page.items
    assert isinstance(item, Change) and item.event.transaction is not None
    assert (item.event.transaction.total_order, item.event.transaction.event_count) == (1, 3)
    # The lines' table, captured and not asked now, is woken to read them at once.
    assert page.related == {"ProjectVendorInvoiceLines"}
    await reader.aclose()


async def test_a_delete_refused_as_still_referenced_is_tried_again_then_dead_lettered() -> None:
    """A parent task's delete that overtook its child's: Finance refuses it while the child
    exists; the sink tries again (the child's delete is on its way) and gives up after a bound."""
    referenced = httpx.Response(400, json={"error": {"code": "WriteFailed", "message":
                                "Cannot delete a record in ProjectTasks. The record is referenced by ProjectTasks."}})
    state = {"child": True, "deletes": 0}

    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        assert method == "DELETE"
        state["deletes"] += 1
        if "CHILD" in url:
            state["child"] = False
            return httpx.Response(204)
        return referenced if state["child"] else httpx.Response(204)

    writer = FinanceWriter(api_client(FakeApi(batch_handler(answer)), FakeClock(), base=ROOT), ROOT, batch_size=1)
    parent = Write(command("PARENT", 3, op="delete"))
    (first,) = await writer.write([[parent]])
    assert isinstance(first, Again) and "still referenced" in first.retry.reason
    (child,) = await writer.write([[Write(command("CHILD", 3, op="delete"))]])
    (second,) = await writer.write([[parent]])
    assert isinstance(child, Done) and isinstance(second, Done)

    state["child"] = True  # a reference that never goes away: dead-lettered after the bound
    stuck = Write(command("STUCK", 3, op="delete"))
    outcomes = [(await writer.write([[stuck]]))[0] for _ in range(REFERENCED_RETRIES + 1)]
    assert all(isinstance(o, Again) for o in outcomes[:-1])
    assert isinstance(outcomes[-1], Failed) and "referenced by ProjectTasks" in outcomes[-1].rejected.body


async def test_a_create_whose_referenced_row_is_gone_is_held_then_dead_lettered() -> None:
    """Chaos run of stop 15: a parent task's delete, on another partition, was written before its
    child's create; Finance refused the create (parent not found) and it was dead-lettered,
    although the child's own delete was on its way. It is held for a later window instead, and
    dead-lettered only once its tries are used."""
    missing = httpx.Response(400, json={"error": {"code": "WriteFailed", "message":
                             "Write failed for table row of type 'ProjCDSTaskEntity'. Infolog: Error: "
                             "The value 'DW-00036, 2' in field 'ProjectId, ParentTask' is not found in "
                             "the relating table 'ProjectTasks'."}})

    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        return missing

    writer = FinanceWriter(api_client(FakeApi(batch_handler(answer)), FakeClock(), base=ROOT), ROOT, batch_size=1)
    orphan = Write(command("ORPHAN", 3))
    outcomes = [(await writer.write([[orphan]]))[0] for _ in range(REFERENCED_RETRIES + 1)]
    assert all(isinstance(o, Again) for o in outcomes[:-1])
    assert "not in Finance" in outcomes[0].retry.reason  # type: ignore[union-attr]
    assert isinstance(outcomes[-1], Failed) and "not found in the relating table" in outcomes[-1].rejected.body


@pytest.mark.parametrize("row", [
    {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": 7, "ModifiedDateTime": "2026-01-02T03:04:05Z"},
    {"@odata.etag": 'W/"7"', "dataAreaId": "usmf", "ProjectId": 12, "RecVersion": 7},
    {"dataAreaId": "usmf", "ProjectId": 1.5, "RecVersion": 0},
    {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": "7"},  # a version as text: accepted
    {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": "007"},
    {"dataAreaId": "usmf", "ProjectId": True, "RecVersion": 7},  # a bool is a number to the checks
    {"dataAreaId": "usmf", "ProjectId": "", "RecVersion": 7},
    {"dataAreaId": "usmf", "ProjectId": None, "RecVersion": 7},
    {"dataAreaId": "usmf", "ProjectId": {"x": 1}, "RecVersion": 7},
    {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": True},
    {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": -1},
    {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": 2**63},
    {"dataAreaId": "usmf", "ProjectId": "P-1"},
    ["not", "an", "object"],
])
def test_a_snapshot_row_is_the_same_change_by_the_fast_path_and_the_checked_one(row: object) -> None:
    from connectors.finance.source import _checked_row_change

    fast = snapshot_row_change("ProjectsV2", row, KEYS, 9, "dataAreaId")
    checked = _checked_row_change("ProjectsV2", row, KEYS, 9, "dataAreaId")
    assert fast == checked
    if isinstance(fast, Change):
        assert fast.event == ChangeEvent.model_validate(fast.event.model_dump())  # valid as it stands


def test_a_snapshot_row_that_fails_to_build_is_isolated_from_its_page() -> None:
    from connectors.finance.source import snapshot_rows

    good: dict[object, object] = {"dataAreaId": "usmf", "ProjectId": "P-1", "RecVersion": 7}
    odd = {**good, 1: "a key that is not text"}  # not JSON: row_image cannot read it
    items = snapshot_rows("ProjectsV2", [good, odd, {**good, "ProjectId": "P-2"}], KEYS, 9)
    assert [type(i).__name__ for i in items] == ["Change", "BadRecord", "Change"]
    bad = items[1]
    assert isinstance(bad, BadRecord) and bad.error_class == "TypeError" and bad.reason.startswith("ProjectsV2: ")


def keyset_reader_of_nine_rows() -> tuple[Any, Any]:
    """A Finance reader paging nine project rows two at a time (keyset), and its fake service."""
    from connectors.finance.client import FinanceConnection
    from connectors.finance.source import FinanceReader
    from tests.unit.connectors.fakes import SECRET, TOKEN_URL

    fake = feed_and_rows(fo_rows(9, recid=True), keyset=True)
    conn = FinanceConnection(url="https://fo.example", token_url=TOKEN_URL, client_id="c",
                             client_secret=SECRET, page_size=2, keys={"ProjectsV2": KEYS})
    return fake, FinanceReader(conn, api_client(fake, FakeClock(), base=ROOT))


async def test_the_next_snapshot_page_is_requested_before_this_one_is_handed_over() -> None:
    import asyncio

    fake, reader = keyset_reader_of_nine_rows()
    pages = reader.snapshot("ProjectsV2")

    def row_requests() -> int:
        return sum(1 for c in fake.calls if c.url.path.endswith("/ProjectsV2"))

    first = await anext(pages)
    for _ in range(50):
        await asyncio.sleep(0)  # whatever the reader does while the page is being produced
    # Pages 2 and 3 are read while page 1 is handed over; no more (two ahead at most).
    assert [i.key for i in first.items if isinstance(i, Change)] == ["usmf|P-0", "usmf|P-1"]
    assert row_requests() == 3
    rest = [p async for p in pages]
    assert [i.key for p in rest for i in p.items if isinstance(i, Change)] == [f"usmf|P-{i}" for i in range(2, 9)]
    assert row_requests() == 5 and rest[-1].position == "50"
    await reader.aclose()


async def test_a_snapshot_stopped_early_requests_nothing_more() -> None:
    import asyncio

    fake, reader = keyset_reader_of_nine_rows()
    pages = reader.snapshot("ProjectsV2")
    await anext(pages)
    await pages.aclose()  # an async generator
    before = len(fake.calls)
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(fake.calls) == before
    await reader.aclose()
