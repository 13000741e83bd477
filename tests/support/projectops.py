"""Project Operations activity for pipeline tests, done through the Dataverse API as its users
would: a contract with its funding source, a project on it, a leaf task, a T&M contract line,
approved time (Dataverse creates its cost and unbilled-sales actuals), and the reads that check
the outcome in both systems. Shared by the actuals and the big-invoice tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dualwrite.apiclient import ApiSession
from emulators.dataverse.seed import seed_id
from tests.support.pipeline import create_row, wait_for

__all__ = ["ALICE", "APPROVE", "BILLED", "CONFIRM", "COST", "CUSTOMER", "DEVELOPER", "HOURS", "UNBILLED",
           "USMF", "ContractProject", "act", "approve_time", "confirm_proforma", "contract_project",
           "dataverse_actuals", "finance_rows", "project_in_finance", "time_entry"]

USMF = seed_id("cdm_companies", "usmf")
CUSTOMER = seed_id("accounts", "usmf/US-001")
ALICE = seed_id("bookableresources", "Alice Adams")
DEVELOPER = seed_id("bookableresourcecategories", "Developer")
HOURS = seed_id("msdyn_transactioncategories", "TCN-0000001000-D3B43")
COST, UNBILLED, BILLED = 192350000, 192350005, 192350006
APPROVE = "Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry"
CONFIRM = "Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice"


@dataclass(frozen=True)
class ContractProject:
    """Dataverse ids of a contract (``order``), its project, leaf task and T&M line."""

    order: str
    project: str
    task: str
    line: str


def act(dv: ApiSession, target: str) -> None:
    response = dv.request("POST", target)
    assert response.status_code < 300, response.text


def finance_rows(fo: ApiSession, entity: str, where: str) -> list[dict[str, Any]]:
    return fo.get_all(entity, {"cross-company": "true", "$filter": where})


def project_in_finance(dv: ApiSession, fo: ApiSession, number: str, subject: str, task_subject: str,
                       timeout: float = 180.0) -> tuple[str, str]:
    """A usmf project on the seeded customer with one leaf task (WBS 1), made in Dataverse and
    waited for in Finance: the Dataverse ids of the project and the task."""
    project = create_row(dv, "msdyn_projects", "msdyn_projectid", {
        "msdyn_projectnumber": number, "msdyn_subject": subject,
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})", "transactioncurrencyid": "USD",
        "statecode": 0})
    task = create_row(dv, "msdyn_projecttasks", "msdyn_projecttaskid", {
        "msdyn_project@odata.bind": f"/msdyn_projects({project})", "msdyn_wbsid": "1",
        "msdyn_subject": task_subject, "msdyn_isleaf": True})
    wait_for(lambda: finance_rows(fo, "ProjectTasks", f"ProjectId eq '{number}'"), timeout,
             "the project and its task in Finance")
    return project, task


def dataverse_actuals(dv: ApiSession, project: str) -> list[dict[str, Any]]:
    return dv.get_all("msdyn_actuals", {"$filter": f"_msdyn_project_value eq {project}",
                                        "$orderby": "versionnumber"})


def contract_project(dv: ApiSession, contract: str, project_number: str | None = None) -> ContractProject:
    """A contract on the seeded customer (also its funding source, so an invoice on it can wait
    for that in Finance), a project on it, a leaf task and a T&M contract line. Without
    ``project_number`` the projects map's filter holds the project back."""
    order = create_row(dv, "salesorders", "salesorderid", {
        "ordernumber": contract, "name": "Rollout contract",
        "customerid@odata.bind": f"/accounts({CUSTOMER})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})", "transactioncurrencyid": "USD"})
    create_row(dv, "msdyn_projectcontractsplitbillingrules", "msdyn_projectcontractsplitbillingruleid", {
        "msdyn_name": "Forest", "msdyn_salesorder@odata.bind": f"/salesorders({order})",
        "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})", "msdyn_percentage": 100})
    numbered = {"msdyn_projectnumber": project_number} if project_number else {}
    project = create_row(dv, "msdyn_projects", "msdyn_projectid", {
        "msdyn_subject": "Rollout", "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})",
        "msdyn_salesorderid@odata.bind": f"/salesorders({order})", "transactioncurrencyid": "USD",
        "statecode": 0, **numbered})
    task = create_row(dv, "msdyn_projecttasks", "msdyn_projecttaskid", {
        "msdyn_project@odata.bind": f"/msdyn_projects({project})", "msdyn_wbsid": "1",
        "msdyn_subject": "Design", "msdyn_isleaf": True})
    line = create_row(dv, "salesorderdetails", "salesorderdetailid", {
        "salesorderid@odata.bind": f"/salesorders({order})",
        "msdyn_project@odata.bind": f"/msdyn_projects({project})", "msdyn_linenumber": "1",
        "productdescription": "Time and material", "msdyn_billingmethod": 192350000,
        "transactioncurrencyid": "USD"})
    return ContractProject(order, project, task, line)


def time_entry(project: str, task: str, line: str, day: str, *, minutes: int) -> dict[str, Any]:
    """Alice's submitted time on the task and T&M line (the body of its create)."""
    return {
        "msdyn_project@odata.bind": f"/msdyn_projects({project})",
        "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({task})",
        "msdyn_bookableresource@odata.bind": f"/bookableresources({ALICE})",
        "msdyn_resourcecategory@odata.bind": f"/bookableresourcecategories({DEVELOPER})",
        "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({HOURS})",
        "msdyn_salescontractline@odata.bind": f"/salesorderdetails({line})",
        "msdyn_date": day, "msdyn_duration": minutes, "msdyn_entrystatus": 192354320,
        "msdyn_costprice": 50.0, "msdyn_salesprice": 120.0, "transactioncurrencyid": "USD"}


def approve_time(dv: ApiSession, project: str, task: str, line: str, day: str, *, minutes: int) -> None:
    """Alice's submitted time, approved: Dataverse creates its cost and unbilled-sales actuals."""
    entry = create_row(dv, "msdyn_timeentries", "msdyn_timeentryid",
                       time_entry(project, task, line, day, minutes=minutes))
    act(dv, f"msdyn_timeentries({entry})/{APPROVE}")


def confirm_proforma(dv: ApiSession, order: str, number: str, name: str = "Proforma") -> str:
    """A draft proforma invoice on the contract ``order``, confirmed: Dataverse bills the
    contract's unbilled sales (billed-sales actuals, reversals and their connections). Its id."""
    invoice = create_row(dv, "invoices", "invoiceid", {
        "invoicenumber": number, "name": name, "statuscode": 1,
        "customerid@odata.bind": f"/accounts({CUSTOMER})", "salesorderid@odata.bind": f"/salesorders({order})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})", "transactioncurrencyid": "USD"})
    act(dv, f"invoices({invoice})/{CONFIRM}")
    return invoice
