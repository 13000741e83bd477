"""Collection reads: $filter, $select, $orderby, $top, $count and server-driven paging."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from emulators.common.batch import BatchRequest, ChangeSet, format_batch_request
from tests.contract.dataverse.helpers import USMF, project, unique
from tests.support.emulators import start_emulator

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def twelve(dv_client: httpx.Client) -> Iterator[tuple[str, list[str]]]:
    """Twelve projects sharing a subject prefix; returns (prefix, ids in creation order)."""
    prefix = unique("Q")
    ids = [project(dv_client, f"{prefix}-{i:02d}", msdyn_subject=f"{prefix} {i:02d}",
                   statecode=i % 2) for i in range(12)]
    yield prefix, ids


def _pages(client: httpx.Client, url: str, params: dict[str, str] | None,
           headers: dict[str, str]) -> list[list[dict[str, Any]]]:
    pages = []
    response = client.get(url, params=params, headers=headers)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["value"])
        if "@odata.nextLink" not in body:
            return pages
        response = client.get(body["@odata.nextLink"], headers=headers)


def test_filter_select_orderby_top(dv_client: httpx.Client, twelve: tuple[str, list[str]]) -> None:
    prefix, _ = twelve
    response = dv_client.get("msdyn_projects", params={
        "$filter": f"startswith(msdyn_projectnumber,'{prefix}') and statecode eq 1",
        "$select": "msdyn_projectnumber,statecode", "$orderby": "msdyn_projectnumber desc",
        "$top": "3"})
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#msdyn_projects")
    assert [r["msdyn_projectnumber"] for r in body["value"]] == [f"{prefix}-11", f"{prefix}-09", f"{prefix}-07"]
    assert set(body["value"][0]) == {"@odata.etag", "msdyn_projectid", "msdyn_projectnumber", "statecode"}
    assert "@odata.nextLink" not in body


def test_filter_on_lookup_value_and_count(dv_client: httpx.Client, twelve: tuple[str, list[str]]) -> None:
    prefix, _ = twelve
    response = dv_client.get("msdyn_projects", params={
        "$filter": f"_msdyn_owningcompany_value eq {USMF} and contains(msdyn_subject,'{prefix}')",
        "$count": "true", "$select": "msdyn_projectid"})
    body = response.json()
    assert body["@odata.count"] == 12 and len(body["value"]) == 12


def test_maxpagesize_pages_with_next_link(dv_client: httpx.Client, twelve: tuple[str, list[str]]) -> None:
    prefix, ids = twelve
    pages = _pages(dv_client, "msdyn_projects",
                   {"$filter": f"startswith(msdyn_projectnumber,'{prefix}')", "$select": "msdyn_projectid"},
                   {"Prefer": "odata.maxpagesize=5"})
    assert [len(p) for p in pages] == [5, 5, 2]
    seen = [r["msdyn_projectid"] for page in pages for r in page]
    assert sorted(seen) == sorted(ids)


def test_paging_with_orderby_keeps_order_across_pages(dv_client: httpx.Client,
                                                      twelve: tuple[str, list[str]]) -> None:
    prefix, _ = twelve
    pages = _pages(dv_client, "msdyn_projects",
                   {"$filter": f"startswith(msdyn_projectnumber,'{prefix}')",
                    "$orderby": "msdyn_projectnumber desc", "$select": "msdyn_projectnumber"},
                   {"Prefer": "odata.maxpagesize=4"})
    numbers = [r["msdyn_projectnumber"] for page in pages for r in page]
    assert numbers == [f"{prefix}-{i:02d}" for i in range(11, -1, -1)]


def test_preference_applied_reports_page_size(dv_client: httpx.Client) -> None:
    response = dv_client.get("cdm_companies", headers={"Prefer": "odata.maxpagesize=1"})
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=1"
    assert len(response.json()["value"]) == 1 and "@odata.nextLink" in response.json()


def test_server_page_size_caps_results(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The default server page is 5,000 rows; 5,001 rows need a second page.
    emu = start_emulator("dataverse", tmp_path_factory.mktemp("paging"))
    try:
        with emu.client() as client:
            for start in range(0, 5001, 1000):
                requests = [BatchRequest("POST", "uoms", {"content-type": "application/json"},
                                         f'{{"name": "u{i}"}}'.encode())
                            for i in range(start, min(start + 1000, 5001))]
                body, ctype = format_batch_request([ChangeSet("cs", requests)])
                assert client.post("$batch", content=body,
                                   headers={"Content-Type": ctype}).status_code == 200
            first = client.get("uoms", params={"$select": "name"}).json()
            assert len(first["value"]) == 5000
            second = client.get(first["@odata.nextLink"]).json()
            assert len(second["value"]) == 1 and "@odata.nextLink" not in second
        with closing(sqlite3.connect(emu.db_path)) as db:
            assert db.execute("SELECT COUNT(*) FROM uoms").fetchone()[0] == 5001
    finally:
        emu.stop()


@pytest.mark.parametrize("params", [
    {"$filter": "colour eq 'red'"}, {"$filter": "msdyn_subject eq"}, {"$select": "colour"},
    {"$orderby": "colour"}, {"$top": "-1"}, {"$skip": "2"}, {"$filter": "substringof('a',msdyn_subject)"},
])
def test_bad_query_options_answer_400(dv_client: httpx.Client, params: dict[str, str]) -> None:
    response = dv_client.get("msdyn_projects", params=params)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}


@pytest.mark.parametrize("token", ["%%%", "eyJvIjoiYWJjIn0=", "WzFd"])
def test_tampered_skiptoken_is_400(dv_client: httpx.Client, token: str) -> None:
    response = dv_client.get("cdm_companies", params={"$skiptoken": token})
    assert response.status_code == 400 and "error" in response.json()


def test_expand_lookup_with_nested_select(dv_client: httpx.Client, twelve: tuple[str, list[str]]) -> None:
    _, ids = twelve
    one = dv_client.get(f"msdyn_projects({ids[0]})", params={
        "$select": "msdyn_projectnumber",
        "$expand": "msdyn_owningcompany($select=cdm_companycode),msdyn_salesorderid"}).json()
    assert one["msdyn_owningcompany"]["cdm_companycode"] == "usmf"
    assert set(one["msdyn_owningcompany"]) == {"@odata.etag", "cdm_companyid", "cdm_companycode"}
    assert one["msdyn_salesorderid"] is None
    many = dv_client.get("msdyn_projects", params={
        "$filter": f"msdyn_projectid eq {ids[1]}", "$expand": "msdyn_customer($select=accountnumber)"})
    assert many.json()["value"][0]["msdyn_customer"]["accountnumber"] == "US-001"


@pytest.mark.parametrize("expand", ["msdyn_subject", "nope", "msdyn_customer($top=1)"])
def test_bad_expand_is_400(dv_client: httpx.Client, expand: str) -> None:
    assert dv_client.get("msdyn_projects", params={"$expand": expand}).status_code == 400
