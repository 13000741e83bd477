"""Front-office business behaviour: time approval, invoice confirmation, automatic approval of
expenses and vendor invoice lines, and the refusals around them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from emulators.dataverse.seed import seed_id
from tests.contract.dataverse.helpers import (
    USMF,
    contract_with_line,
    create,
    project,
    task,
    unique,
)

pytestmark = pytest.mark.contract
COST, UNBILLED, BILLED = 192350000, 192350005, 192350006
TIME, EXPENSE, MATERIAL = 192350000, 192350001, 192350002
CATEGORY = seed_id("msdyn_transactioncategories", "TCN-0000001000-D3B43")
MATERIALS = seed_id("msdyn_transactioncategories", "TCN-0000001002-C3D4E")
RETIRED = seed_id("msdyn_transactioncategories", "TCN-0000001099-E5F6A")
APPROVE = "Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry"
CONFIRM = "Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice"


def _actuals(client: httpx.Client, project_id: str) -> list[dict[str, Any]]:
    response = client.get("msdyn_actuals", params={
        "$filter": f"_msdyn_project_value eq {project_id}", "$orderby": "versionnumber"})
    return list(response.json()["value"])


def _time_entry(client: httpx.Client, project_id: str, task_id: str, minutes: int = 480) -> str:
    return create(client, "msdyn_timeentries", {
        "msdyn_project@odata.bind": f"/msdyn_projects({project_id})",
        "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({task_id})",
        "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({CATEGORY})",
        "msdyn_bookableresource@odata.bind": f"/bookableresources({seed_id('bookableresources', 'Alice Adams')})",
        "msdyn_date": "2026-11-02", "msdyn_duration": minutes, "msdyn_entrystatus": 192354320,
        "msdyn_costprice": 50.0, "msdyn_salesprice": 120.0, "transactioncurrencyid": "USD"})


@pytest.fixture
def billable(dv_client: httpx.Client) -> dict[str, str]:
    pid = project(dv_client)
    order, line = contract_with_line(dv_client, pid)
    return {"project": pid, "task": task(dv_client, pid), "order": order, "line": line}


def test_approving_time_creates_cost_and_unbilled_sales(dv_client: httpx.Client,
                                                        billable: dict[str, str]) -> None:
    entry = _time_entry(dv_client, billable["project"], billable["task"])
    response = dv_client.post(f"msdyn_timeentries({entry})/{APPROVE}")
    assert response.status_code == 200, response.text
    actuals = _actuals(dv_client, billable["project"])
    assert [(a["msdyn_transactiontypecode"], a["msdyn_amount"]) for a in actuals] == \
        [(COST, 400.0), (UNBILLED, 960.0)]
    assert all(a["msdyn_transactionclassification"] == TIME and a["msdyn_quantity"] == 8.0
               and a["_msdyn_owningcompany_value"] == USMF and a["msdyn_skipsync"] is False
               for a in actuals)
    assert actuals[1]["_msdyn_salescontractline_value"] == billable["line"]
    assert dv_client.get(f"msdyn_timeentries({entry})").json()["msdyn_entrystatus"] == 192350002
    assert dv_client.patch(f"msdyn_timeentries({entry})", json={"msdyn_duration": 1}).status_code == 400
    again = dv_client.post(f"msdyn_timeentries({entry})/{APPROVE}")
    assert again.status_code == 400 and again.json()["error"]["code"] == "0x80040265"


def test_confirming_an_invoice_bills_and_reverses_unbilled_sales(dv_client: httpx.Client,
                                                                 billable: dict[str, str]) -> None:
    entry = _time_entry(dv_client, billable["project"], billable["task"], minutes=120)
    dv_client.post(f"msdyn_timeentries({entry})/{APPROVE}")
    invoice = create(dv_client, "invoices", {
        "invoicenumber": unique("INV"), "name": "Proforma", "statuscode": 1,
        "salesorderid@odata.bind": f"/salesorders({billable['order']})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})", "transactioncurrencyid": "USD"})
    response = dv_client.post(f"invoices({invoice})/{CONFIRM}")
    assert response.status_code == 200, response.text
    actuals = _actuals(dv_client, billable["project"])
    billed = [a for a in actuals if a["msdyn_transactiontypecode"] == BILLED]
    reversal = [a for a in actuals if a["msdyn_transactiontypecode"] == UNBILLED and a["msdyn_amount"] < 0]
    original = [a for a in actuals if a["msdyn_transactiontypecode"] == UNBILLED and a["msdyn_amount"] > 0]
    assert [a["msdyn_amount"] for a in billed] == [240.0] and billed[0]["msdyn_skipsync"] is False
    assert [a["msdyn_amount"] for a in reversal] == [-240.0] and reversal[0]["msdyn_skipsync"] is True
    assert billed[0]["_msdyn_invoice_value"] == invoice == reversal[0]["_msdyn_invoice_value"]
    connections = dv_client.get("msdyn_transactionconnections", params={
        "$filter": f"msdyn_transaction1 eq '{original[0]['msdyn_actualid']}'"}).json()["value"]
    assert {c["msdyn_transaction2"] for c in connections} == {billed[0]["msdyn_actualid"],
                                                              reversal[0]["msdyn_actualid"]}
    confirmed = dv_client.get(f"invoices({invoice})").json()
    assert confirmed["statuscode"] == 100001 and confirmed["totalamount"] == 240.0
    assert dv_client.post(f"invoices({invoice})/{CONFIRM}").status_code == 400
    locked = dv_client.patch(f"invoices({invoice})", json={"name": "Changed"})
    assert locked.status_code == 400 and "confirmed" in locked.json()["error"]["message"]


def test_confirming_with_nothing_to_bill_is_refused(dv_client: httpx.Client,
                                                    billable: dict[str, str]) -> None:
    invoice = create(dv_client, "invoices", {
        "invoicenumber": unique("INV"), "salesorderid@odata.bind": f"/salesorders({billable['order']})"})
    response = dv_client.post(f"invoices({invoice})/{CONFIRM}")
    assert response.status_code == 400
    assert dv_client.get(f"invoices({invoice})").json()["statuscode"] is None  # rolled back


def test_new_expense_is_approved_with_expense_actuals(dv_client: httpx.Client,
                                                      billable: dict[str, str]) -> None:
    expense = create(dv_client, "msdyn_expenses", {
        "msdyn_externalexpenseid": unique("EXP"), "msdyn_company@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_project@odata.bind": f"/msdyn_projects({billable['project']})",
        "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({billable['task']})",
        "msdyn_expensecategory@odata.bind": f"/msdyn_expensecategories({seed_id('msdyn_expensecategories', 'usmf/Travel')})",
        "msdyn_transactiondate": "2026-11-03", "msdyn_quantity": 1, "msdyn_amount": 75.5,
        "transactioncurrencyid": "USD"})
    actuals = _actuals(dv_client, billable["project"])
    assert [(a["msdyn_transactiontypecode"], a["msdyn_amount"]) for a in actuals] == \
        [(COST, 75.5), (UNBILLED, 75.5)]
    assert {a["msdyn_transactionclassification"] for a in actuals} == {EXPENSE}
    assert actuals[0]["_msdyn_transactioncategory_value"] == seed_id(
        "msdyn_transactioncategories", "TCN-0000001001-A1B2C")
    assert dv_client.get(f"msdyn_expenses({expense})").json()["msdyn_expensestatus"] == 192350002


def _vendor_invoice(client: httpx.Client) -> str:
    return create(client, "msdyn_projectvendorinvoices", {
        "msdyn_externalinvoice": unique("VI"), "msdyn_invoicedate": "2026-11-04",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_vendor@odata.bind":
            f"/msdyn_vendors(msdyn_vendoraccountnumber='USPM-000001',_msdyn_company_value={USMF})"})


def _line(header: str, pid: str, **extra: Any) -> dict[str, Any]:
    return {"msdyn_externalinvoiceline": unique("VIL"),
            "msdyn_vendorinvoice@odata.bind": f"/msdyn_projectvendorinvoices({header})",
            "msdyn_project@odata.bind": f"/msdyn_projects({pid})",
            "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({MATERIALS})",
            "msdyn_product@odata.bind": "/products(productnumber='P-0001')",
            "msdyn_unit@odata.bind": "/uoms(name='Each')", "msdyn_quantity": 3,
            "msdyn_unitprice": 10.0, "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})", **extra}


def test_vendor_invoice_line_creates_material_actuals(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    header = _vendor_invoice(dv_client)
    create(dv_client, "msdyn_projectvendorinvoicelines", _line(header, pid))
    actuals = _actuals(dv_client, pid)
    assert [(a["msdyn_transactiontypecode"], a["msdyn_transactionclassification"], a["msdyn_amount"])
            for a in actuals] == [(COST, MATERIAL, 30.0)]  # no contract: cost only
    assert actuals[0]["_msdyn_product_value"] == seed_id("products", "P-0001")
    intercompany = project(dv_client)
    create(dv_client, "msdyn_projectvendorinvoicelines", _line(header, intercompany, msdyn_intercompany=True))
    assert _actuals(dv_client, intercompany)[0]["msdyn_skipsync"] is True


def test_vendor_invoice_refusals_use_dataverse_messages(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    missing_vendor = dv_client.post("msdyn_projectvendorinvoices", json={
        "msdyn_externalinvoice": unique("VI"),
        "msdyn_vendor@odata.bind":
            f"/msdyn_vendors(msdyn_vendoraccountnumber='USPM-000022',_msdyn_company_value={USMF})"})
    assert missing_vendor.status_code == 400
    assert missing_vendor.json()["error"]["message"] == \
        f"Unable to lookup msdyn_vendors with values {{USPM-000022,{USMF}}}."
    header = _vendor_invoice(dv_client)
    no_product = _line(header, pid)
    del no_product["msdyn_product@odata.bind"]
    response = dv_client.post("msdyn_projectvendorinvoicelines", json=no_product)
    assert response.status_code == 400 and response.json()["error"]["message"] == "Product id is mandatory."
    retired = _line(header, pid, **{"msdyn_transactioncategory@odata.bind":
                                    f"/msdyn_transactioncategories({RETIRED})"})
    response = dv_client.post("msdyn_projectvendorinvoicelines", json=retired)
    assert "Active, Expense Transaction Category" in response.json()["error"]["message"]
    unit = dv_client.post("msdyn_projectvendorinvoicelines",
                          json=_line(header, pid, **{"msdyn_unit@odata.bind": "/uoms(name='TST')"}))
    assert unit.json()["error"]["message"] == "Unable to lookup uoms with values {TST}."
    assert _actuals(dv_client, pid) == []


def test_closed_project_refuses_time_approval(dv_client: httpx.Client, billable: dict[str, str]) -> None:
    entry = _time_entry(dv_client, billable["project"], billable["task"])
    dv_client.patch(f"msdyn_projects({billable['project']})", json={"statecode": 1})
    response = dv_client.post(f"msdyn_timeentries({entry})/{APPROVE}")
    assert response.status_code == 400 and "closed" in response.json()["error"]["message"]
    assert _actuals(dv_client, billable["project"]) == []


def test_unknown_action_is_404(dv_client: httpx.Client, billable: dict[str, str]) -> None:
    response = dv_client.post(f"msdyn_projects({billable['project']})/Microsoft.Dynamics.CRM.msdyn_Fly")
    assert response.status_code == 404 and "error" in response.json()
