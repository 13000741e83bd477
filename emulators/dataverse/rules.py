"""Business rules the front office enforces on writes, answered like Dataverse plug-ins do
(HTTP 400, code ``0x80040265``, "ISV code aborted the operation" family):

- the company of a row (``msdyn_company`` / ``msdyn_owningcompany``) is fixed once saved;
- a project's or contract's contracting unit currency equals the owning company's
  accounting currency;
- expenses, vendor invoice lines and time approvals need an active project and a leaf task;
- vendor invoice lines need a product ("Product id is mandatory.") and an active transaction
  category ("Please select an Active, Expense Transaction Category.");
- confirmed proforma invoices and approved time entries are read-only;
- a project that has actuals cannot be deleted.
"""

from __future__ import annotations

from emulators.common.errors import ODataError
from emulators.dataverse.options import ENTRY_APPROVED, INVOICE_CONFIRMED, STATE_INACTIVE
from emulators.dataverse.records import Records, Row
from emulators.dataverse.schema import BY_SET, Table

PLUGIN_ERROR = "0x80040265"
COMPANY_COLUMNS = ("msdyn_company", "msdyn_owningcompany")


def refuse(message: str) -> ODataError:
    return ODataError(400, PLUGIN_ERROR, message)


def validate(records: Records, table: Table, row: Row, old: Row | None) -> None:
    """Raise if ``row`` (the full row after the write) breaks a front-office rule."""
    if old is not None:
        for name in COMPANY_COLUMNS:
            if name in old and old[name] is not None and row.get(name) != old[name]:
                raise refuse(f"The company of a {table.logical_name} record can't be changed "
                             "after the record is saved.")
    check = _CHECKS.get(table.entity_set)
    if check is not None:
        check(records, row, old)


def _company(records: Records, company_id: object) -> Row | None:
    return records.get(BY_SET["cdm_companies"], str(company_id)) if company_id else None


def _contracting_unit_currency(records: Records, row: Row, old: Row | None) -> None:
    unit_id = row.get("msdyn_contractorganizationalunitid")
    company = _company(records, row.get("msdyn_owningcompany"))
    if not unit_id or company is None:
        return
    unit = records.get(BY_SET["msdyn_organizationalunits"], unit_id)
    if unit is not None and unit["msdyn_currency"] and company["accountingcurrency"] and \
            unit["msdyn_currency"] != company["accountingcurrency"]:
        raise refuse(f"The currency of the contracting unit ({unit['msdyn_currency']}) must be "
                     "the same as the accounting currency of the owning company "
                     f"{company['cdm_companycode']} ({company['accountingcurrency']}).")


def open_project(records: Records, project_id: object) -> Row:
    project = records.get(BY_SET["msdyn_projects"], str(project_id)) if project_id else None
    if project is None:
        raise refuse("A project is required to record project transactions.")
    if project["statecode"] == STATE_INACTIVE:
        raise refuse(f"Project {project['msdyn_projectnumber']} is closed; no new transactions "
                     "can be recorded on it.")
    return project


def leaf_task(records: Records, project: Row, task_id: object) -> Row | None:
    if not task_id:
        return None
    task = records.get(BY_SET["msdyn_projecttasks"], str(task_id))
    if task is None or task["msdyn_project"] != project["msdyn_projectid"]:
        raise refuse("The project task does not belong to the project of the transaction.")
    if not task["msdyn_isleaf"]:
        raise refuse(f"Task '{task['msdyn_wbsid']}' is a summary task; transactions can only be "
                     "recorded on leaf tasks.")
    return task


def _expense(records: Records, row: Row, old: Row | None) -> None:
    if old is None:
        project = open_project(records, row.get("msdyn_project"))
        leaf_task(records, project, row.get("msdyn_projecttask"))


def _vendor_invoice_line(records: Records, row: Row, old: Row | None) -> None:
    if old is not None:
        return
    if not row.get("msdyn_product"):
        raise refuse("Product id is mandatory.")
    category = records.get(BY_SET["msdyn_transactioncategories"],
                           str(row.get("msdyn_transactioncategory")))
    if category is None or category["statecode"] == STATE_INACTIVE:
        raise refuse("Please select an Active, Expense Transaction Category.")
    project = open_project(records, row.get("msdyn_project"))
    leaf_task(records, project, row.get("msdyn_projecttask"))


def _invoice(records: Records, row: Row, old: Row | None) -> None:
    if old is not None and old["statuscode"] == INVOICE_CONFIRMED:
        raise refuse(f"Invoice {old['invoicenumber']} is confirmed and can no longer be changed.")


def _time_entry(records: Records, row: Row, old: Row | None) -> None:
    if old is not None and old["msdyn_entrystatus"] == ENTRY_APPROVED:
        raise refuse("An approved time entry can no longer be changed.")


_CHECKS = {
    "invoices": _invoice,
    "msdyn_timeentries": _time_entry,
    "msdyn_projects": _contracting_unit_currency,
    "salesorders": _contracting_unit_currency,
    "msdyn_expenses": _expense,
    "msdyn_projectvendorinvoicelines": _vendor_invoice_line,
}


def validate_delete(records: Records, table: Table, row: Row) -> None:
    """Projects that carry actuals cannot be deleted, as in Project Operations."""
    if table.entity_set == "msdyn_projects" and records.select(
            BY_SET["msdyn_actuals"], '"msdyn_project" = ? LIMIT 1', [row["msdyn_projectid"]]):
        raise refuse(f"Project {row['msdyn_projectnumber']} has actuals and cannot be deleted.")
