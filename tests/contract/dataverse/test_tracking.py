"""Change tracking: delta links with creates, updates and deletes, paging, bad tokens, and the
emulator's transaction/principal annotations."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from emulators.common.batch import BatchRequest, ChangeSet, format_batch_request
from tests.contract.dataverse.helpers import (
    USMF,
    contract_with_line,
    create,
    delta_start,
    follow,
    project,
    task,
    unique,
)
from tests.support.emulators import CLIENT_ID, RunningEmulator

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def client(isolated: RunningEmulator) -> Iterator[httpx.Client]:
    # Its own server: other tests' writes would otherwise show up in these deltas.
    with isolated.client() as client:
        yield client


def test_initial_track_changes_returns_rows_and_delta_link(client: httpx.Client) -> None:
    response = client.get("cdm_companies", headers={"Prefer": "odata.track-changes"})
    assert response.status_code == 200
    assert "odata.track-changes" in response.headers["Preference-Applied"]
    body = response.json()
    assert {r["cdm_companycode"] for r in body["value"]} == {"usmf", "demf"}
    assert "$deltatoken=" in body["@odata.deltaLink"]
    empty, again = follow(client, body["@odata.deltaLink"])
    assert empty == [] and "$deltatoken=" in again


def test_delta_reports_creates_updates_then_deletes(client: httpx.Client) -> None:
    link = delta_start(client, "msdyn_projects")
    kept, updated, dropped, flash = (project(client) for _ in range(4))
    client.patch(f"msdyn_projects({updated})", json={"msdyn_subject": "Updated"})
    client.delete(f"msdyn_projects({dropped})")
    client.delete(f"msdyn_projects({flash})")
    entries, next_link = follow(client, link)
    upserts = [e for e in entries if "reason" not in e]
    deletes = [e for e in entries if e.get("reason") == "deleted"]
    assert [e["msdyn_projectid"] for e in upserts] == [kept, updated]  # ordered by version
    assert entries[: len(upserts)] == upserts  # new/updated first, then deletes
    assert next(e for e in upserts if e["msdyn_projectid"] == updated)["msdyn_subject"] == "Updated"
    assert {e["id"] for e in deletes} == {dropped, flash}  # created and deleted between polls
    assert all(e["@odata.context"].endswith("msdyn_projects/$deletedEntity") for e in deletes)
    assert next_link != link
    assert follow(client, next_link)[0] == []


def test_updates_are_deduplicated_per_row(client: httpx.Client) -> None:
    pid = project(client)
    link = delta_start(client, "msdyn_projects")
    for i in range(3):
        client.patch(f"msdyn_projects({pid})", json={"msdyn_subject": f"v{i}"})
    entries, _ = follow(client, link)
    assert len(entries) == 1 and entries[0]["msdyn_subject"] == "v2"
    assert entries[0]["@dualwrite.op"] == "u"


def test_delta_pages_with_next_link(client: httpx.Client) -> None:
    link = delta_start(client, "msdyn_projecttasks")
    pid = project(client)
    created = {task(client, pid, str(i)) for i in range(7)}
    first = client.get(link, headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert len(first["value"]) == 3 and "@odata.nextLink" in first
    rest, _ = follow(client, first["@odata.nextLink"], Prefer="odata.maxpagesize=3")
    assert {e["msdyn_projecttaskid"] for e in first["value"] + rest} == created


@pytest.mark.parametrize("token", ["garbage", "999999999!1700000000", "1!1000"])
def test_bad_or_expired_token_is_refused(client: httpx.Client, token: str) -> None:
    response = client.get("msdyn_projects", params={"$deltatoken": token})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044352"


def test_track_changes_refuses_filter(client: httpx.Client) -> None:
    response = client.get("msdyn_projects", params={"$filter": "statecode eq 0"},
                          headers={"Prefer": "odata.track-changes"})
    assert response.status_code == 400


def test_changes_carry_transaction_and_principal(client: httpx.Client) -> None:
    link = delta_start(client, "msdyn_projects")
    single = project(client)
    numbers = [unique("TX"), unique("TX")]
    body, content_type = format_batch_request([ChangeSet("cs", [
        BatchRequest("POST", "msdyn_projects", {"content-type": "application/json"}, json.dumps({
            "msdyn_projectnumber": n, "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})"}).encode())
        for n in numbers])])
    assert client.post("$batch", content=body, headers={"Content-Type": content_type}).status_code == 200
    entries, _ = follow(client, link)
    by_number = {e["msdyn_projectnumber"]: e for e in entries}
    batch_tx = {by_number[n]["@dualwrite.txid"] for n in numbers}
    assert len(batch_tx) == 1  # one change set, one transaction
    lone = next(e for e in entries if e["msdyn_projectid"] == single)
    assert lone["@dualwrite.txid"] not in batch_tx
    assert {e["@dualwrite.principal"] for e in entries} == {CLIENT_ID}
    assert {e["@dualwrite.op"] for e in entries} == {"c"}


def test_paused_feed_holds_changes_until_resumed(isolated: RunningEmulator, client: httpx.Client) -> None:
    link = delta_start(client, "msdyn_projects")
    with isolated.admin() as admin:
        assert admin.put("faults", json={"feed_paused": True}).status_code == 200
        try:
            pid = project(client)
            held, held_link = follow(client, link)
            assert held == []
        finally:
            admin.put("faults", json={"feed_paused": False})
    released, _ = follow(client, held_link)
    assert [e["msdyn_projectid"] for e in released] == [pid]


def test_row_changed_while_paging_is_described_by_its_current_version(client: httpx.Client) -> None:
    link = delta_start(client, "msdyn_projects")
    first, second = project(client), project(client)
    page = client.get(link, headers={"Prefer": "odata.maxpagesize=1"}).json()
    assert [e["msdyn_projectid"] for e in page["value"]] == [first]
    client.patch(f"msdyn_projects({second})", json={"msdyn_subject": "After the window"})
    rest, next_link = follow(client, page["@odata.nextLink"], Prefer="odata.maxpagesize=1")
    assert [e["msdyn_projectid"] for e in rest] == [second]
    assert rest[0]["msdyn_subject"] == "After the window"
    assert rest[0]["@dualwrite.version"] == rest[0]["versionnumber"]
    again, _ = follow(client, next_link)
    assert [e["versionnumber"] for e in again] == [rest[0]["versionnumber"]]


def test_an_action_is_one_transaction(client: httpx.Client) -> None:
    pid = project(client)
    order, _ = contract_with_line(client, pid)
    tid = task(client, pid)
    entry = create(client, "msdyn_timeentries", {
        "msdyn_project@odata.bind": f"/msdyn_projects({pid})",
        "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({tid})", "msdyn_duration": 60,
        "msdyn_costprice": 10.0, "msdyn_salesprice": 20.0})
    actuals_link = delta_start(client, "msdyn_actuals")
    entries_link = delta_start(client, "msdyn_timeentries")
    response = client.post(f"msdyn_timeentries({entry})/Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry")
    assert response.status_code == 200
    actuals, _ = follow(client, actuals_link)
    approved, _ = follow(client, entries_link)
    assert len(actuals) == 2 and [e["msdyn_timeentryid"] for e in approved] == [entry]
    assert len({e["@dualwrite.txid"] for e in actuals + approved}) == 1
    assert {e["_msdyn_salescontract_value"] for e in actuals} == {None, order}


def test_delta_entries_describe_their_transaction(client: httpx.Client) -> None:
    projects_link = delta_start(client, "msdyn_projects")
    tasks_link = delta_start(client, "msdyn_projecttasks")
    number = unique("TXS")
    json_type = {"content-type": "application/json"}
    body, content_type = format_batch_request([ChangeSet("cs", [
        BatchRequest("POST", "msdyn_projects", json_type, json.dumps({
            "msdyn_projectnumber": number, "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})"}).encode(),
            content_id="1"),
        *[BatchRequest("POST", "msdyn_projecttasks", json_type, json.dumps({
            "msdyn_project@odata.bind": "$1", "msdyn_wbsid": wbs, "msdyn_subject": f"Task {wbs}"}).encode(),
            content_id=str(i)) for i, wbs in enumerate(("1", "2"), start=2)]])])
    assert client.post("$batch", content=body, headers={"Content-Type": content_type}).status_code == 200
    lone = project(client)
    projects, _ = follow(client, projects_link)
    tasks, _ = follow(client, tasks_link)
    created = next(e for e in projects if e["msdyn_projectnumber"] == number)
    shape = {"msdyn_projects": 1, "msdyn_projecttasks": 2}
    assert created["@dualwrite.txrows"] == shape
    assert (created["@dualwrite.txorder"], created["@dualwrite.txtableorder"]) == (1, 1)
    by_wbs = {e["msdyn_wbsid"]: e for e in tasks}
    assert [(by_wbs[w]["@dualwrite.txorder"], by_wbs[w]["@dualwrite.txtableorder"]) for w in ("1", "2")] \
        == [(2, 1), (3, 2)]
    assert {by_wbs[w]["@dualwrite.txrows"] == shape for w in ("1", "2")} == {True}
    alone = next(e for e in projects if e["msdyn_projectid"] == lone)
    assert alone["@dualwrite.txrows"] == {"msdyn_projects": 1} and alone["@dualwrite.txorder"] == 1
