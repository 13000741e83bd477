"""Finance emulator: the change feed (the stand-in for FO change tracking)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.contract.finance.helpers import created, feed_since, project, uid, watermark
from tests.support.emulators import CLIENT_ID, RunningEmulator, start_emulator

pytestmark = pytest.mark.contract


def test_feed_lists_create_update_delete_in_order_with_row_images(fo: httpx.Client) -> None:
    before = watermark(fo)
    account = uid("F")
    url = f"/CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')"
    created(fo.post("/CustomersV3", json={"CustomerAccount": account, "Name": "One"}))
    assert fo.patch(url, json={"Name": "Two"}).status_code == 204
    assert fo.delete(url).status_code == 204
    entries = feed_since(fo, before, "CustomersV3")
    assert [e["op"] for e in entries] == ["c", "u", "d"]
    versions = [e["version"] for e in entries]
    assert versions == sorted(versions) and len(set(versions)) == 3
    assert all(e["key"] == {"dataAreaId": "usmf", "CustomerAccount": account} for e in entries)
    assert entries[0]["row"]["Name"] == "One" and entries[1]["row"]["Name"] == "Two"
    assert entries[1]["row"]["RecVersion"] == entries[1]["version"]
    assert entries[2]["row"] is None
    assert all(e["principal"] == CLIENT_ID for e in entries)
    assert len({e["txid"] for e in entries}) == 3
    assert all(isinstance(e["ts_ms"], int) and e["ts_ms"] > 0 for e in entries)


def test_feed_filters_entities_and_reports_the_watermark(fo: httpx.Client) -> None:
    before = watermark(fo)
    proj = project(fo)
    body = fo.get("/ChangeFeed", params={"since": before, "entities": "projectsv2"}).json()
    assert [e["entity"] for e in body["value"]] == ["ProjectsV2"]
    assert body["value"][0]["key"]["ProjectId"] == proj["ProjectId"]
    assert body["watermark"] == body["value"][0]["version"]
    empty = fo.get("/ChangeFeed", params={"since": watermark(fo)}).json()
    assert empty == {"value": [], "watermark": watermark(fo)}


def test_feed_pages_with_next_links_without_splitting_transactions(fo: httpx.Client) -> None:
    body = fo.get("/ChangeFeed", params={"since": 0, "top": 2,
                                         "entities": "LegalEntities,CustomersV3"}).json()
    # The seed wrote legal entities in one transaction and customers in another.
    assert [e["entity"] for e in body["value"]] == ["LegalEntities", "LegalEntities"]
    second = fo.get(body["@odata.nextLink"]).json()
    assert {e["entity"] for e in second["value"]} == {"CustomersV3"}
    assert len(second["value"]) == 8 and len({e["txid"] for e in second["value"]}) == 1


def test_unknown_feed_entity_is_400(fo: httpx.Client) -> None:
    resp = fo.get("/ChangeFeed", params={"entities": "Nope"})
    assert resp.status_code == 400 and "Nope" in resp.json()["error"]["message"]


def test_paused_feed_returns_nothing_new_until_resumed(emu: RunningEmulator,
                                                       fo: httpx.Client) -> None:
    before = watermark(fo)
    with emu.admin() as admin:
        assert admin.put("/faults", json={"feed_paused": True}).json()["feed_paused"] is True
        try:
            proj = project(fo)
            assert fo.get("/ChangeFeed", params={"since": before}).json() == {
                "value": [], "watermark": before}
        finally:
            admin.put("/faults", json={"feed_paused": False})
    keys = [e["key"].get("ProjectId") for e in feed_since(fo, before, "ProjectsV2")]
    assert keys == [proj["ProjectId"]]


def test_feed_versions_keep_increasing_across_a_restart(tmp_path: Path) -> None:
    emu = start_emulator("finance", tmp_path)
    try:
        with emu.client() as fo:
            created(fo.post("/LegalEntities", json={"dataAreaId": "usmf", "Name": "US",
                                                    "AccountingCurrency": "USD"}))
            first = feed_since(fo, 0)
        emu.restart()
        with emu.client() as fo:
            created(fo.post("/LegalEntities", json={"dataAreaId": "demf", "Name": "DE",
                                                    "AccountingCurrency": "EUR"}))
            everything = feed_since(fo, 0)
            assert fo.get("/LegalEntities(dataAreaId='usmf')").json()["Name"] == "US"
    finally:
        emu.stop()
    assert everything[: len(first)] == first
    versions = [e["version"] for e in everything]
    assert len(versions) == 2 and versions[1] > versions[0]


def test_top_zero_reports_the_end_of_the_feed_without_entries(fo: httpx.Client) -> None:
    proj = project(fo)
    body = fo.get("/ChangeFeed", params={"since": 0, "top": 0, "entities": "ProjectsV2"}).json()
    assert body["value"] == [] and body["watermark"] == proj["RecVersion"]
    assert fo.get("/ChangeFeed", params={"since": 0, "top": 0}).json()["watermark"] == watermark(fo)
