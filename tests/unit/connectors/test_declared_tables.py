"""Readers key rows and name their company by the registry's declarations (`CaptureTable`),
never by guessing from the table's name."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from connectors.common.clock import FakeClock
from connectors.common.source import CaptureTable, Change
from connectors.dataverse.client import DataverseConnection
from connectors.dataverse.source import DataverseReader
from connectors.finance.source import feed_entry_change, snapshot_row_change
from tests.unit.connectors.fakes import TOKEN_URL, FakeApi, api_client

pytestmark = pytest.mark.unit

ROOT = "https://org.example/api/data/v9.2"
PERSON = "11111111-1111-1111-1111-111111111111"
COMPANY = "22222222-2222-2222-2222-222222222222"


def web_api(rows: list[dict[str, object]]) -> FakeApi:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cdm_companies"):
            return httpx.Response(200, json={"value": [{"cdm_companyid": COMPANY, "cdm_companycode": "usmf"}]})
        return httpx.Response(200, json={"value": rows, "@odata.deltaLink": f"{ROOT}/people?$deltatoken=7!1"})
    return FakeApi(answer)


def reader(fake: FakeApi, declared: dict[str, CaptureTable]) -> DataverseReader:
    conn = DataverseConnection(url="https://org.example", token_url=TOKEN_URL, client_id="c",
                               client_secret=SecretStr("s"))
    return DataverseReader(conn, api_client(fake, FakeClock()), declared=declared)


async def snapshot_changes(r: DataverseReader, table: str) -> list[Change]:
    items = [item for page in [p async for p in r.snapshot(table)] for item in page.items]
    assert all(isinstance(i, Change) for i in items), items
    return items  # type: ignore[return-value]


async def test_dataverse_rows_are_keyed_by_the_declared_primary_key_and_company_lookup() -> None:
    # "people" -> the convention would say "peopleid"; the declaration says "personid", and the
    # company sits in a lookup column no convention knows.
    row = {"personid": PERSON, "versionnumber": 7, "_owner_company_value": COMPANY}
    declared = {"people": CaptureTable(name="people", primary_key="personid",
                                       company_lookup="_owner_company_value")}
    (change,) = await snapshot_changes(reader(web_api([row]), declared), "people")
    assert change.key == PERSON and change.event.source.company == "usmf"


async def test_a_declared_table_without_a_company_gets_none_whatever_its_columns() -> None:
    row = {"personid": PERSON, "versionnumber": 7, "_msdyn_company_value": COMPANY}
    fake = web_api([row])
    declared = {"people": CaptureTable(name="people", primary_key="personid")}
    (change,) = await snapshot_changes(reader(fake, declared), "people")
    assert change.event.source.company is None
    assert not [c for c in fake.calls if c.url.path.endswith("/cdm_companies")]  # nothing resolved


async def test_a_declared_company_code_column_is_read_as_is() -> None:
    row = {"personid": PERSON, "versionnumber": 7, "code": "demf"}
    declared = {"people": CaptureTable(name="people", primary_key="personid", company="code")}
    (change,) = await snapshot_changes(reader(web_api([row]), declared), "people")
    assert change.event.source.company == "demf"


def test_finance_company_comes_from_the_declared_column() -> None:
    row = {"Company": "demf", "Code": "X", "RecVersion": 3}
    change = snapshot_row_change("Things", row, ("Company", "Code"), 1, company="Company")
    assert isinstance(change, Change) and change.event.source.company == "demf"
    entry = {"version": 4, "entity": "Things", "op": "u", "key": {"Company": "usmf", "Code": "X"},
             "row": {"Company": "usmf", "Code": "X"}}
    fed = feed_entry_change(entry, ("Company", "Code"), 1, company="Company")
    assert isinstance(fed, Change) and fed.event.source.company == "usmf"
    shared = feed_entry_change({**entry, "key": {"Code": "X"}, "row": {"Code": "X"}}, ("Code",), 1,
                               company=None)
    assert isinstance(shared, Change) and shared.event.source.company is None
