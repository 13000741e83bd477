"""Front-office behaviour that creates actuals, each step inside the caller's transaction.

Bound actions (``POST <set>(<id>)/Microsoft.Dynamics.CRM.<name>``; emulator choices of name):

- ``msdyn_timeentries(<id>)/Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry``: approves a draft or
  submitted time entry; creates the Time-class cost actual and, when the project is on a
  contract, the unbilled-sales actual.
- ``invoices(<id>)/Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice``: confirms a draft proforma
  invoice; for every not yet invoiced unbilled-sales actual of its contract it creates the
  billed-sales actual, the negative unbilled-sales actual (``msdyn_skipsync`` true) and two
  ``msdyn_transactionconnections`` (original -> reversal, original -> billed).

Automatic approval (real Dataverse runs an async system job; here it happens in the same
transaction as the create): a new ``msdyn_expenses`` row creates Expense-class actuals, a new
``msdyn_projectvendorinvoicelines`` row creates Material-class actuals (cost actual skipped
from sync when the line is intercompany).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from emulators.common.errors import ODataError
from emulators.dataverse import options as o
from emulators.dataverse.records import Records, Row
from emulators.dataverse.rules import leaf_task, open_project, refuse
from emulators.dataverse.schema import BY_SET

ACTUALS = BY_SET["msdyn_actuals"]
ACTION_PREFIX = "Microsoft.Dynamics.CRM."


def _contract_line(records: Records, project: Row, line_id: object = None) -> Row | None:
    lines = BY_SET["salesorderdetails"]
    if line_id:
        return records.get(lines, str(line_id))
    found = records.select(lines, '"msdyn_project" = ? ORDER BY "msdyn_linenumber"',
                           [project["msdyn_projectid"]])
    return found[0] if found else None


def _create_actuals(records: Records, project: Row, common: Row, quantity: float,
                    cost_price: float, sales_price: float | None, contract_line_id: object = None,
                    skip_cost_sync: bool = False) -> list[Row]:
    """The cost actual and, for projects on a contract, the unbilled-sales actual."""
    base: Row = {
        "msdyn_project": project["msdyn_projectid"],
        "msdyn_owningcompany": project["msdyn_owningcompany"],
        "transactioncurrencyid": common.get("transactioncurrencyid") or project["transactioncurrencyid"],
        "msdyn_documentdate": common.get("msdyn_documentdate") or date.today().isoformat(),
        "msdyn_accountingdate": common.get("msdyn_documentdate") or date.today().isoformat(),
        "msdyn_quantity": quantity, **common,
    }
    line = _contract_line(records, project, contract_line_id) if project["msdyn_salesorderid"] else None
    billing = o.BILLING_CHARGEABLE if line is not None else o.BILLING_NON_CHARGEABLE
    created = [records.insert(ACTUALS, {
        **base, "msdyn_transactiontypecode": o.TYPE_COST, "msdyn_billingtype": billing,
        "msdyn_price": cost_price, "msdyn_amount": round(quantity * cost_price, 2),
        "msdyn_skipsync": int(skip_cost_sync)})]
    if line is not None and sales_price is not None:
        contract = records.get(BY_SET["salesorders"], line["salesorderid"])
        created.append(records.insert(ACTUALS, {
            **base, "msdyn_transactiontypecode": o.TYPE_UNBILLED_SALES,
            "msdyn_billingtype": billing, "msdyn_billingstatus": o.STATUS_UNBILLED_SALES_CREATED,
            "msdyn_salescontract": line["salesorderid"],
            "msdyn_salescontractline": line["salesorderdetailid"],
            "msdyn_accountcustomer": (contract or {}).get("customerid") or project["msdyn_customer"],
            "msdyn_price": sales_price, "msdyn_amount": round(quantity * sales_price, 2),
            "msdyn_skipsync": 0}))
    return created


def approve_time_entry(records: Records, entry: Row) -> list[Row]:
    if entry["msdyn_entrystatus"] not in (None, o.ENTRY_DRAFT, o.ENTRY_SUBMITTED, o.ENTRY_RETURNED):
        raise refuse("Only draft or submitted time entries can be approved.")
    project = open_project(records, entry["msdyn_project"])
    leaf_task(records, project, entry["msdyn_projecttask"])
    hours = (entry["msdyn_duration"] or 0) / 60
    created = _create_actuals(
        records, project,
        {"msdyn_transactionclassification": o.CLASS_TIME, "msdyn_task": entry["msdyn_projecttask"],
         "msdyn_bookableresource": entry["msdyn_bookableresource"],
         "msdyn_resourcecategory": entry["msdyn_resourcecategory"],
         "msdyn_transactioncategory": entry["msdyn_transactioncategory"],
         "msdyn_documentdate": entry["msdyn_date"],
         "transactioncurrencyid": entry["transactioncurrencyid"],
         "msdyn_description": entry["msdyn_description"]},
        hours, entry["msdyn_costprice"] or 0.0, entry["msdyn_salesprice"],
        entry["msdyn_salescontractline"])
    records.update(BY_SET["msdyn_timeentries"], entry, {"msdyn_entrystatus": o.ENTRY_APPROVED})
    return created


def _already_invoiced(records: Records, actual_id: str) -> bool:
    connections = BY_SET["msdyn_transactionconnections"]
    return bool(records.select(connections, '"msdyn_transaction1" = ? AND "msdyn_transaction2role" = ?',
                               [actual_id, o.ROLE_REVERSAL]))


def _connect(records: Records, original: Row, other: Row, role: int, type_code: int) -> Row:
    return records.insert(BY_SET["msdyn_transactionconnections"], {
        "msdyn_transaction1": original["msdyn_actualid"], "msdyn_transaction1role": o.ROLE_ORIGINAL,
        "msdyn_transaction1type": o.CONNECTION_ACTUAL,
        "msdyn_transaction2": other["msdyn_actualid"], "msdyn_transaction2role": role,
        "msdyn_transaction2type": o.CONNECTION_ACTUAL, "msdyn_transactiontypecode": type_code})


def confirm_invoice(records: Records, invoice: Row) -> list[Row]:
    if invoice["statuscode"] not in (None, o.INVOICE_DRAFT):
        raise refuse("Only draft proforma invoices can be confirmed.")
    if not invoice["salesorderid"]:
        raise refuse("The invoice has no project contract.")
    unbilled = [a for a in records.select(
        ACTUALS, '"msdyn_salescontract" = ? AND "msdyn_transactiontypecode" = ? AND '
        '"msdyn_amount" > 0 ORDER BY "versionnumber"',
        [invoice["salesorderid"], o.TYPE_UNBILLED_SALES])
        if not _already_invoiced(records, a["msdyn_actualid"])]
    if not unbilled:
        raise refuse("There are no unbilled sales actuals to invoice on this contract.")
    created: list[Row] = []
    total = 0.0
    today = date.today().isoformat()
    for original in unbilled:
        copy = {k: v for k, v in original.items()
                if k not in ("msdyn_actualid", "createdon", "modifiedon", "versionnumber")}
        billed = records.insert(ACTUALS, {
            **copy, "msdyn_transactiontypecode": o.TYPE_BILLED_SALES,
            "msdyn_billingstatus": o.STATUS_CUSTOMER_INVOICE_CREATED,
            "msdyn_invoice": invoice["invoiceid"], "msdyn_documentdate": today,
            "msdyn_accountingdate": today, "msdyn_skipsync": 0})
        reversal = records.insert(ACTUALS, {
            **copy, "msdyn_quantity": -(original["msdyn_quantity"] or 0),
            "msdyn_amount": -(original["msdyn_amount"] or 0),
            "msdyn_billingstatus": o.STATUS_CUSTOMER_INVOICE_CREATED,
            "msdyn_invoice": invoice["invoiceid"], "msdyn_documentdate": today,
            "msdyn_accountingdate": today, "msdyn_skipsync": 1})
        created += [billed, reversal,
                    _connect(records, original, reversal, o.ROLE_REVERSAL, o.TYPE_UNBILLED_SALES),
                    _connect(records, original, billed, o.ROLE_BILLED, o.TYPE_BILLED_SALES)]
        total += billed["msdyn_amount"] or 0.0
    records.update(BY_SET["invoices"], invoice, {
        "statuscode": o.INVOICE_CONFIRMED, "totalamount": round(total, 2),
        "msdyn_invoicedate": invoice["msdyn_invoicedate"] or today})
    return created


def approve_expense(records: Records, expense: Row) -> list[Row]:
    project = open_project(records, expense["msdyn_project"])
    category = records.get(BY_SET["msdyn_expensecategories"], str(expense["msdyn_expensecategory"]))
    quantity = expense["msdyn_quantity"] or 1.0
    amount = expense["msdyn_amount"] or 0.0
    price = amount / quantity if quantity else amount
    created = _create_actuals(
        records, project,
        {"msdyn_transactionclassification": o.CLASS_EXPENSE, "msdyn_task": expense["msdyn_projecttask"],
         "msdyn_bookableresource": expense["msdyn_bookableresource"],
         "msdyn_transactioncategory": (category or {}).get("msdyn_transactioncategory"),
         "msdyn_documentdate": expense["msdyn_transactiondate"],
         "transactioncurrencyid": expense["transactioncurrencyid"]},
        quantity, price, price)
    records.update(BY_SET["msdyn_expenses"], expense, {"msdyn_expensestatus": o.APPROVAL_APPROVED})
    return created


def approve_vendor_invoice_line(records: Records, line: Row) -> list[Row]:
    project = open_project(records, line["msdyn_project"])
    quantity = line["msdyn_quantity"] or 1.0
    price = line["msdyn_unitprice"]
    if price is None:
        price = (line["msdyn_amount"] or 0.0) / quantity if quantity else 0.0
    header = records.get(BY_SET["msdyn_projectvendorinvoices"], str(line["msdyn_vendorinvoice"]))
    return _create_actuals(
        records, project,
        {"msdyn_transactionclassification": o.CLASS_MATERIAL, "msdyn_task": line["msdyn_projecttask"],
         "msdyn_transactioncategory": line["msdyn_transactioncategory"],
         "msdyn_product": line["msdyn_product"], "msdyn_unit": line["msdyn_unit"],
         "msdyn_documentdate": (header or {}).get("msdyn_invoicedate"),
         "transactioncurrencyid": line["transactioncurrencyid"]},
        quantity, price, price, skip_cost_sync=bool(line["msdyn_intercompany"]))


BOUND_ACTIONS = {
    ("msdyn_timeentries", "msdyn_ApproveTimeEntry"): approve_time_entry,
    ("invoices", "msdyn_ConfirmInvoice"): confirm_invoice,
}
ON_CREATE = {
    "msdyn_expenses": approve_expense,
    "msdyn_projectvendorinvoicelines": approve_vendor_invoice_line,
}


def bound_action(entity_set: str, segment: str) -> Callable[[Records, Row], list[Row]]:
    name = segment.removeprefix(ACTION_PREFIX)
    action = BOUND_ACTIONS.get((entity_set, name))
    if action is None:
        raise ODataError(404, "0x80060888", f"Resource not found for the segment '{segment}'.")
    return action
