"""Material estimates end to end: real processes, a real broker, both emulators, the estimate
lines made through the Dataverse API as a project manager would (domain.md 1.2 "Material").

One stack for the file (module scope); the tests run in file order and share it. The first
makes a numbered project with a task, waits for Finance's released product D0001 to reach
Dataverse (the released products map; `dualwrite scenario` finds it there too), and adds the cost line of a material estimate on it:
it waits for its sales partner, named in `dualwrite status`, and nothing reaches Finance. The
second adds the sales line: both lines land in ``MaterialEstimateStaging`` with the item, Finance
merges them into ONE ``ItemForecasts`` row, and `dualwrite reconcile`'s logic finds the material
map in sync.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite.activity_run import read_world
from dualwrite.apiclient import ApiSession
from dualwrite.stack import Stack
from emulators.dataverse.seed import seed_id
from tests.support.pipeline import create_row, parked, read_topic, running_stack, wait_for
from topics import read_headers

pytestmark = pytest.mark.integration

DRAIN = 180.0
MAP = "material_estimates"
USMF = seed_id("cdm_companies", "usmf")
CUSTOMER = seed_id("accounts", "usmf/US-001")
MATERIALS = seed_id("msdyn_transactioncategories", "TCN-0000001002-C3D4E")
PROJECT = f"PRJ-M{uuid.uuid4().hex[:6].upper()}"
COST, UNBILLED, MATERIAL = 192350000, 192350005, 192350002


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("estimates")) as running:
        yield running


@pytest.fixture(scope="module")
def made() -> dict[str, Any]:
    """The rows the first test creates (ids, the lines' common body), for the second."""
    return {}


def staged(fo: ApiSession) -> list[dict[str, Any]]:
    return fo.get_all("MaterialEstimateStaging", {"cross-company": "true", "$filter": f"ProjectId eq '{PROJECT}'"})


def dead_letters(stack: Stack) -> list[dict[str, str]]:
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
    return [h for h in (read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq"))
            if h.get("dlq.map") == MAP]


def test_a_material_cost_line_alone_waits_for_its_sales_line_in_status(stack: Stack, made: dict[str, Any]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    project = create_row(dv, "msdyn_projects", "msdyn_projectid", {
        "msdyn_projectnumber": PROJECT, "msdyn_subject": "Cabling",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})", "transactioncurrencyid": "USD", "statecode": 0})
    task = create_row(dv, "msdyn_projecttasks", "msdyn_projecttaskid", {
        "msdyn_project@odata.bind": f"/msdyn_projects({project})", "msdyn_wbsid": "1",
        "msdyn_subject": "Install", "msdyn_isleaf": True})
    (product,) = wait_for(lambda: dv.get_all("products", {"$filter": "productnumber eq 'usmf-D0001'"}),
                          DRAIN, "Finance's released product D0001 in Dataverse")
    # ... where `dualwrite scenario` finds it for its own material estimates.
    world, ids = read_world({"dataverse": dv, "finance": fo})
    assert ("usmf", "usmf-D0001") in world.products and ids["product:usmf-D0001"][1] == product["productid"]
    made["line"] = {
        "msdyn_project@odata.bind": f"/msdyn_projects({project})",
        "msdyn_task@odata.bind": f"/msdyn_projecttasks({task})",
        "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({MATERIALS})",
        "msdyn_product@odata.bind": f"/products({product['productid']})",
        "msdyn_transactionclassification": MATERIAL, "msdyn_billingtype": 192350001,
        "msdyn_quantity": 3, "msdyn_documentdate": "2026-11-09", "transactioncurrencyid": "USD"}
    made["cost"] = cost = create_row(dv, "msdyn_estimatelines", "msdyn_estimatelineid",
                                     {**made["line"], "msdyn_transactiontypecode": COST, "msdyn_price": 11.5})
    # Once project, task, category and product are in Finance, only the partner is missing.
    (waiting,) = wait_for(lambda: [e for e in parked(stack) if e["map"] == MAP
                                   and str(e["oldest_waits_for"]).startswith(f"partner:{MAP}:")], DRAIN,
                          "the cost line waiting for its partner in status")
    assert waiting["count"] == 1 and waiting["oldest_change_id"].startswith(f"{MAP}:{cost}:")
    assert waiting["oldest_waits_for"].endswith(":Sales") and waiting["oldest_age_s"] >= 0
    assert "ItemId='D0001'" in waiting["oldest_waits_for"]
    assert staged(fo) == []
    assert fo.get_all("ItemForecasts", {"cross-company": "true", "$filter": f"ProjectId eq '{PROJECT}'"}) == []


def test_with_its_sales_line_the_pair_is_two_staging_rows_and_one_item_forecast(
        stack: Stack, made: dict[str, Any]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    cost = made["cost"]
    sales = create_row(dv, "msdyn_estimatelines", "msdyn_estimatelineid",
                       {**made["line"], "msdyn_transactiontypecode": UNBILLED, "msdyn_price": 25})
    rows = wait_for(lambda: (lambda got: got if len(got) == 2 else None)(staged(fo)), DRAIN,
                    "both material estimate lines in Finance staging")
    assert {r["EstimateLineId"]: (r["dataAreaId"], r["TaskId"], r["TransType"], r["ItemId"], r["Quantity"],
                                  r["Price"]) for r in rows} == {
        cost: ("usmf", "1", "Cost", "D0001", 3.0, 11.5), sales: ("usmf", "1", "Sales", "D0001", 3.0, 25.0)}
    (forecast,) = fo.get_all("ItemForecasts", {"cross-company": "true", "$filter": f"ProjectId eq '{PROJECT}'"})
    assert (forecast["ItemId"], forecast["Qty"], forecast["SalesUnit"], forecast["CostPrice"],
            forecast["SalesPrice"], forecast["CostEstimateLineId"], forecast["SalesEstimateLineId"]) == \
        ("D0001", 3.0, "ea", 11.5, 25.0, cost, sales)
    # The material map is no exception to reconcile (it iterates the registry).
    (report,) = stack.reconcile([MAP])
    assert not report.drift and report.counts()["in_sync"] == 2, report.counts()
    assert not [e for e in parked(stack) if e["map"] == MAP]
    assert dead_letters(stack) == []
