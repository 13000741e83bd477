"""Posting: integration journals, invoice proposals, expense reports, vendor invoices.

Each function runs inside one store transaction (the business action's txid, attributed to
``batch:<principal>``) and either posts everything or raises and writes nothing, like an FO
posting that fails on one line.

- Journal / invoice proposal posting writes the accounting result back onto the staged actuals
  (``Voucher``, ``AmountMST``, ``UnitPriceMST``, ``ExchangeRate``, ``IsJournalized`` = Yes, and
  ``SalesTaxAmount`` for invoices): those updates are what the actuals map carries back to the
  Dataverse ``msdyn_actual`` rows (domain.md 1.3 steps 4-5).
- Posting a proposal computes each line's sales tax (also written onto the proposal line): the
  line amount times the percentage of its sales tax group, found in FO's defaulting order
  (project, then contract line, then contract; the emulator's customers carry no tax group).
  No group found: no tax. A group the legal entity does not know refuses the posting, as FO
  does not post an invoice with a tax group that has no setup. The emulator's tax setup is
  `SALES_TAX_GROUPS` (one tax code per group).
- Expense report and vendor invoice posting insert rows into the export entities
  ``ProjectExpenses`` / ``ProjectVendorInvoices`` + ``ProjectVendorInvoiceLines`` (one per
  project line; non-project lines and invoices without project lines are not exported), and set
  the source documents' ``Status`` to Posted. Both appear in the change feed; the export
  entities are the ones a source connector carries to Dataverse.
- A Finished project refuses any posting that touches it: "Project stage finished doesn't allow
  recording in the project".
- An invoice proposal refuses to post while an unbilled-sales actual linked (through
  ``TransactionRelationships``) to one of its billed actuals is not journal-posted yet, as FO
  requires the T&M unbilled sales to go through the integration journal first.
"""

from __future__ import annotations

from emulators.finance import tables
from emulators.finance.entities import entity_named as _e
from emulators.finance.errors import action_failed
from emulators.finance.rates import to_mst
from emulators.finance.staging import FINISHED_MESSAGE, accounting_rate, project_finished
from emulators.finance.writer import Row, Writer

__all__ = ["SALES_TAX_GROUPS", "post_expense_report", "post_invoice_proposal", "post_journal",
           "post_vendor_invoice", "sales_tax"]

# The emulator's sales tax setup, per legal entity: sales tax group -> percentage (Contoso-like
# groups; a group stands for its one sales tax code).
SALES_TAX_GROUPS: dict[str, dict[str, float]] = {
    "usmf": {"CA": 7.25, "NY": 8.875, "WA": 6.5, "AV": 8.25, "EXEMPT": 0.0},
    "demf": {"DE": 19.0, "DE-RED": 7.0, "EU": 0.0},
}


def _voucher(writer: Writer, company: str, prefix: str) -> str:
    return f"{prefix}-{tables.next_number(writer.conn, f'Voucher:{prefix}:{company}'):06d}"


def _refuse_finished(writer: Writer, company: str, project_ids: list[object]) -> None:
    for pid in project_ids:
        if pid and project_finished(writer, company, pid):
            raise action_failed(f"{FINISHED_MESSAGE} {pid}.")


def _write_back(writer: Writer, company: str, actual_id: object, voucher: str,
                sales_tax: float | None = None) -> None:
    staging = _e("ActualsStaging")
    actual = writer.require(staging, {"ProjectDataAreaId": company, "ActualId": actual_id})
    rate = accounting_rate(writer, company, actual["TransactionCurrencyId"],
                           actual["DocumentDate"])
    if rate is None:
        raise action_failed(f"Exchange rate from {actual['TransactionCurrencyId']} was not "
                            f"found for date {str(actual['DocumentDate'])[:10]}.")
    changes: Row = {"Voucher": voucher, "ExchangeRate": rate,
                    "AmountMST": to_mst(actual["Amount"], rate),
                    "UnitPriceMST": to_mst(actual["UnitPrice"], rate), "IsJournalized": "Yes"}
    if sales_tax is not None:
        changes["SalesTaxAmount"] = sales_tax
    writer.update(staging, staging.key_of(actual), changes)


def post_journal(writer: Writer, company: str, journal_id: object) -> Row:
    journals, lines_ent = _e("IntegrationJournals"), _e("IntegrationJournalLines")
    journal = writer.require(journals, {"dataAreaId": company, "JournalId": journal_id})
    if journal["Status"] != "Draft":
        raise action_failed(f"Journal {journal_id} cannot be posted: its status is "
                            f"{journal['Status']}.")
    lines = tables.select(writer.conn, lines_ent, '"dataAreaId" = ? AND "JournalId" = ?',
                          (company, journal_id), order='"LineNum"')
    if not lines:
        raise action_failed(f"Journal {journal_id} has no lines to post.")
    _refuse_finished(writer, company, [line["ProjectId"] for line in lines])
    for line in lines:
        voucher = _voucher(writer, company, "PJV")
        _write_back(writer, company, line["ActualId"], voucher)
        writer.update(lines_ent, lines_ent.key_of(line), {"Voucher": voucher, "Status": "Posted"})
    return writer.update(journals, journals.key_of(journal), {"Status": "Posted"})


def _unposted_unbilled(writer: Writer, company: str, billed_id: object) -> list[str]:
    """Unbilled-sales actuals linked to a billed actual that are not journalized yet.

    The link is the transaction connection Dataverse created at proforma confirmation
    (``TransactionRelationships``, either side).
    """
    links = tables.select(writer.conn, _e("TransactionRelationships"),
                          '"Transaction1Id" = ? OR "Transaction2Id" = ?', (billed_id, billed_id))
    staging = _e("ActualsStaging")
    waiting = []
    for link in links:
        other = link["Transaction2Id"] if link["Transaction1Id"] == billed_id else link[
            "Transaction1Id"]
        row = writer.get(staging, {"ProjectDataAreaId": company, "ActualId": other})
        if row and row["TransType"] == "UnbilledSales" and row["IsJournalized"] != "Yes":
            waiting.append(str(other))
    return waiting


def post_invoice_proposal(writer: Writer, company: str, proposal_id: object) -> Row:
    proposals, lines_ent = _e("InvoiceProposals"), _e("InvoiceProposalLines")
    proposal = writer.require(proposals, {"dataAreaId": company, "InvoiceProposalId": proposal_id})
    if proposal["Status"] != "Open":
        raise action_failed(f"Invoice proposal {proposal_id} has already been posted.")
    lines = tables.select(writer.conn, lines_ent, '"dataAreaId" = ? AND "InvoiceProposalId" = ?',
                          (company, proposal_id), order='"LineNum"')
    if not lines:
        raise action_failed(f"Invoice proposal {proposal_id} has no lines to post.")
    _refuse_finished(writer, company, [line["ProjectId"] for line in lines])
    waiting = [a for line in lines for a in _unposted_unbilled(writer, company, line["ActualId"])]
    if waiting:
        raise action_failed(f"Invoice proposal {proposal_id} cannot be posted: the unbilled "
                            f"sales actuals {', '.join(waiting)} are not posted through the "
                            "integration journal yet.")
    taxes = [sales_tax(writer, company, proposal, line) for line in lines]
    voucher = _voucher(writer, company, "PIV")
    for line, tax in zip(lines, taxes, strict=True):
        writer.update(lines_ent, lines_ent.key_of(line), {"SalesTaxAmount": tax})
        _write_back(writer, company, line["ActualId"], voucher, sales_tax=tax)
    return writer.update(proposals, proposals.key_of(proposal), {"Status": "Posted"})


def _tax_group(writer: Writer, company: str, proposal: Row, line: Row) -> str | None:
    """The line's sales tax group in FO's defaulting order: project, contract line, contract."""
    project = writer.get(_e("ProjectsV2"), {"dataAreaId": company, "ProjectId": line["ProjectId"]})
    actual = writer.get(_e("ActualsStaging"), {"ProjectDataAreaId": company,
                                               "ActualId": line["ActualId"]}) or {}
    contract_id = actual.get("ContractId") or proposal["ProjectContractId"]
    contract_line = writer.get(_e("ProjectContractLines"), {
        "dataAreaId": company, "ProjectContractId": contract_id,
        "ContractLineId": actual.get("ContractLine")}) if actual.get("ContractLine") else None
    contract = writer.get(_e("ProjectContractHeaders"), {
        "dataAreaId": company, "ProjectContractId": contract_id}) if contract_id else None
    for found in ((project or {}).get("SalesTaxGroupId"),
                  (contract_line or {}).get("SalesTaxGroupCode"),
                  (contract or {}).get("SalesTaxGroupCode")):
        if found:
            return str(found)
    return None


def sales_tax(writer: Writer, company: str, proposal: Row, line: Row) -> float:
    """The sales tax of one proposal line, in its currency (0.0 when no group applies)."""
    group = _tax_group(writer, company, proposal, line)
    if group is None:
        return 0.0
    percent = SALES_TAX_GROUPS.get(company, {}).get(group)
    if percent is None:
        raise action_failed(f"Invoice proposal {proposal['InvoiceProposalId']} cannot be posted: "
                            f"sales tax group {group} has no setup in legal entity {company}.")
    return round(float(line["Amount"] or 0.0) * percent / 100, 2)  # type: ignore[arg-type]


def post_expense_report(writer: Writer, company: str, expense_number: object) -> list[Row]:
    reports, exports = _e("ExpenseReportLines"), _e("ProjectExpenses")
    lines = tables.select(writer.conn, reports, '"dataAreaId" = ? AND "ExpenseNumber" = ?',
                          (company, expense_number), order='"LineNum"')
    if not lines:
        raise action_failed(f"Expense report {expense_number} was not found in {company}.")
    not_approved = [line["LineNum"] for line in lines if line["Status"] != "Approved"]
    if not_approved:
        raise action_failed(f"Expense report {expense_number} cannot be posted: lines "
                            f"{not_approved} are not approved.")
    _refuse_finished(writer, company, [line["ProjectId"] for line in lines])
    voucher = _voucher(writer, company, "EXV")
    exported: list[Row] = []
    for line in lines:
        if line["ProjectId"]:
            exported.append(writer.insert(exports, {
                "dataAreaId": company, "ExpenseLineId": f"{expense_number}-{line['LineNum']}",
                "ExpenseNumber": expense_number, "Worker": line["Worker"],
                "ProjectId": line["ProjectId"], "ActivityNumber": line["ActivityNumber"],
                "ExpenseCategoryId": line["ExpenseCategoryId"], "TransactionDate": line["Date"],
                "Quantity": 1.0,
                "Amount": float(line["Amount"] or 0.0)  # type: ignore[arg-type]
                + float(line["NonRecoverableTax"] or 0.0),  # type: ignore[arg-type]
                "SalesTaxAmount": line["NonRecoverableTax"], "Currency": line["Currency"],
                "Voucher": voucher}))
        writer.update(reports, reports.key_of(line), {"Status": "Posted"})
    return exported


def post_vendor_invoice(writer: Writer, company: str, invoice_id: object) -> Row:
    headers, lines_ent = _e("PendingVendorInvoices"), _e("PendingVendorInvoiceLines")
    header = writer.require(headers, {"dataAreaId": company, "InvoiceId": invoice_id})
    if header["Status"] != "Pending":
        raise action_failed(f"Vendor invoice {invoice_id} has already been posted.")
    lines = tables.select(writer.conn, lines_ent, '"dataAreaId" = ? AND "InvoiceId" = ?',
                          (company, invoice_id), order='"LineNumber", RecId')
    if not lines:
        raise action_failed(f"Vendor invoice {invoice_id} has no lines to post.")
    _refuse_finished(writer, company, [line["ProjectId"] for line in lines])
    voucher = _voucher(writer, company, "VIV")
    project_lines = [line for line in lines if line["ProjectId"]]
    if project_lines:
        writer.insert(_e("ProjectVendorInvoices"), {
            "dataAreaId": company, "InvoiceId": invoice_id,
            "VendorAccount": header["VendorAccount"], "InvoiceNumber": header["InvoiceNumber"],
            "InvoiceDate": header["InvoiceDate"], "Currency": header["Currency"],
            "Voucher": voucher})
        export_lines = _e("ProjectVendorInvoiceLines")
        for line in project_lines:
            writer.insert(export_lines, {
                name: line[name] for name in export_lines.field_names if name in line})
    return writer.update(headers, headers.key_of(header), {"Status": "Posted"})
