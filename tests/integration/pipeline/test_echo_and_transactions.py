"""Echo suppression, two-way fields and source transactions, end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from dualwrite.apiclient import ApiSession
from dualwrite.scenario import Scenario
from dualwrite.stack import Stack
from emulators.common.batch import BatchRequest, ChangeSet, format_batch_request
from streams.tuning import Tuning
from tests.support.pipeline import admin, group_lag, read_topic, running_stack, wait_for
from topics import decode_command

pytestmark = pytest.mark.integration

WORKER_GROUP = "dualwrite-streams"
CONFLICT_WINDOW_S = Tuning.model_fields["conflict_window_ms"].default / 1000  # the stack's default


@contextmanager
def streaming(tmp_path: Path, first: str) -> Iterator[tuple[Stack, Scenario]]:
    """A running stack whose sources stream (the initial snapshot carries no transactions):
    the scenario's ``first`` step (a method name) has synced."""
    with running_stack(tmp_path) as stack:
        scenario = Scenario(stack.dataverse(), stack.finance())
        getattr(scenario, first)()
        wait_for(lambda: scenario.progress().done, 180, "the sources to stream")
        yield stack, scenario


def post_change_set(api: ApiSession, requests: list[tuple[str, dict[str, Any]]]) -> httpx.Response:
    """POST ``(entity set, row)`` pairs as one $batch change set, Content-IDs 1, 2, ..."""
    body, content_type = format_batch_request([ChangeSet("changeset_1", [
        BatchRequest("POST", entity, {"content-type": "application/json"}, orjson.dumps(row),
                     content_id=str(i)) for i, (entity, row) in enumerate(requests, start=1)])])
    return api.request("POST", "$batch", content=body, headers={"Content-Type": content_type})


def commands(bootstrap: str, target: str) -> list[str]:
    return [decode_command(m.value()).entity for m in read_topic(bootstrap, f"sync.commands.{target}")]


def test_our_writes_do_not_come_back_but_a_later_human_edit_of_a_two_way_field_does(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        scenario = Scenario(stack.dataverse(), stack.finance())
        project = scenario.create_project("Warehouse rollout")
        scenario.create_task(project, "1")
        customer = scenario.create_customer("Northwind Traders")
        created = time.monotonic()
        wait_for(lambda: scenario.progress().done, 180, "the first sync")

        # Finance's own feed now shows the project we wrote there and Dataverse's the account we
        # wrote there; once the worker has read both feeds, nothing may flow back.
        wait_for(lambda: read_topic(bootstrap, "finance.cdc.projectsv2"), 60,
                 "Finance's change of our project write")
        wait_for(lambda: read_topic(bootstrap, "dataverse.cdc.accounts"), 60,
                 "Dataverse's change of our account write")
        wait_for(lambda: group_lag(bootstrap, WORKER_GROUP) == 0, 120, "the worker to catch up")
        assert "msdyn_projects" not in commands(bootstrap, "dataverse")
        assert "CustomersV3" not in commands(bootstrap, "finance")

        # Someone renames the customer in Dataverse: the two-way name goes back to Finance.
        # Later than the conflict window after Finance created it: an edit within it is a
        # conflict the map's master (Finance) wins, as documented.
        time.sleep(max(0.0, created + CONFLICT_WINDOW_S + 1 - time.monotonic()))
        dv, fo = stack.dataverse(), stack.finance()
        account = dv.get_all("accounts", {"$filter": f"accountnumber eq '{customer}'",
                                          "$select": "accountid"})[0]["accountid"]
        resp = dv.request("PATCH", f"accounts({account})", headers={"If-Match": "*"},
                          json={"name": "Northwind Traders (renamed in Dataverse)"})
        assert resp.status_code == 204, resp.text
        scenario.expected.dataverse_accounts[customer]["name"] = "Northwind Traders (renamed in Dataverse)"
        wait_for(lambda: fo.get_all("CustomersV3", {"$filter": f"CustomerAccount eq '{customer}'"})[0]
                 ["Name"] == "Northwind Traders (renamed in Dataverse)", 120,
                 "the Dataverse edit to reach Finance")
        # ...and its own echo from Finance does not bounce back to Dataverse again.
        wait_for(lambda: group_lag(bootstrap, WORKER_GROUP) == 0, 120, "the worker to catch up")
        assert commands(bootstrap, "finance").count("CustomersV3") == 1
        assert scenario.progress().done, scenario.progress().mismatches


def test_a_finance_transaction_arrives_in_dataverse_as_one_change_set(tmp_path: Path) -> None:
    with streaming(tmp_path, "create_customer") as (stack, _):
        fo, dv = stack.finance(), stack.dataverse()
        accounts = ["TXA-0001", "TXA-0002", "TXA-0003"]
        resp = post_change_set(fo, [("CustomersV3", {
            "dataAreaId": "usmf", "CustomerAccount": a, "Name": f"Customer {a}", "CustomerGroupId": "30",
            "SalesCurrencyCode": "USD"}) for a in accounts])
        assert resp.status_code == 200 and b"201" in resp.content, resp.text

        def landed() -> dict[str, str] | None:
            rows = dv.get_all("accounts", {"$select": "accountnumber"})
            return {r["accountnumber"]: r for r in rows if r["accountnumber"] in accounts} \
                if len([r for r in rows if r["accountnumber"] in accounts]) == 3 else None

        wait_for(landed, 180, "the three customers in Dataverse")
        tracked = dv.request("GET", "accounts", headers={"Prefer": "odata.track-changes"}).json()["value"]
        txids = {r["@dualwrite.txid"] for r in tracked if r["accountnumber"] in accounts}
        assert len(txids) == 1, "the three accounts were not written in one Dataverse change set"
        with admin(stack.dv_url) as dv_admin:
            assert dv_admin.get("/requests").json()["by_target"].get("POST $batch", 0) >= 1


def test_a_dataverse_transaction_arrives_in_finance_as_one_change_set_in_its_order(tmp_path: Path) -> None:
    with streaming(tmp_path, "create_project") as (stack, scenario):
        dv, fo = stack.dataverse(), stack.finance()
        number = "DVTX-00001"
        project_body = {"msdyn_projectnumber": number, "msdyn_subject": "Created with its tasks",
                        "msdyn_owningcompany@odata.bind": f"/cdm_companies({scenario.company_id()})",
                        "msdyn_customer@odata.bind": f"/accounts({scenario.customer_id()})", "statecode": 0}
        # One change set: the project, then its tasks referencing it by Content-ID. The commands
        # reach the Finance sink on different partitions; its change set must keep that order.
        resp = post_change_set(dv, [("msdyn_projects", project_body), *[("msdyn_projecttasks", {
            "msdyn_project@odata.bind": "$1", "msdyn_wbsid": wbs, "msdyn_subject": f"Phase {wbs}",
            "msdyn_isleaf": True}) for wbs in ("1", "2", "3")]])
        assert resp.status_code == 200 and b"204" in resp.content, resp.text

        def landed() -> list[dict[str, object]]:
            feed = fo.request("GET", "ChangeFeed", params={
                "since": "0", "entities": "ProjectsV2,ProjectTasks", "top": "10000"}).json()["value"]
            mine = [e for e in feed if e["op"] == "c" and e["key"].get("ProjectId") == number]
            return mine if len(mine) == 4 else []

        created = wait_for(landed, 180, "the project and its three tasks in Finance")
        assert len({e["txid"] for e in created}) == 1, "not written to Finance in one change set"
        assert [e["entity"] for e in sorted(created, key=lambda e: e["version"])] == \
            ["ProjectsV2", "ProjectTasks", "ProjectTasks", "ProjectTasks"]
        with admin(stack.fo_url) as fo_admin:
            assert fo_admin.get("/requests").json()["by_target"].get("POST $batch", 0) >= 1
