"""The periodic job *Import from staging table* (PMA > Periodic > Project Operations Integration).

Reads staged actuals (``ActualsStaging``) not yet imported and creates:
- Project Operations integration journal lines for cost and unbilled sales, one line per
  actual, in new Draft journals grouped per *Period unit* (Days | Months | Years | All, default
  Months) of the accounting date, at most 200 lines per journal (FO 10.0.38 default);
- invoice proposal lines for billed sales, on the open proposal whose ``SourceInvoiceId`` is
  the actual's ``InvoiceId`` (the proforma header dual-write created earlier).

A row is refused (``ImportStatus`` = Invalid, reason in ``ImportError``) when its project is
Finished, when no exchange rate to the accounting currency exists at the document date, when
the legal entity has no project category for its transaction category, or when a billed-sales
row has no invoice proposal yet. Refused rows are retried by the next run (rows with status
New or Invalid are read), as FO leaves unprocessed staging rows for the next run; a row is only
rewritten when its status or error changes, so reruns do not flood the change feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.finance import tables
from emulators.finance.entities import entity_named as _e
from emulators.finance.errors import bad_request
from emulators.finance.rates import PERIOD_UNITS, find_rate, period_key
from emulators.finance.writer import Row, Writer

__all__ = ["FINISHED_MESSAGE", "MAX_JOURNAL_LINES", "ImportResult", "accounting_rate", "import_actuals",
           "line_property", "offset_account", "project_finished"]

# FO 10.0.38+: one integration journal header holds 200 lines by default (a PMA parameter).
MAX_JOURNAL_LINES = 200
FINISHED_MESSAGE = "Project stage finished doesn't allow recording in the project"
_CLASS_TYPES = {"Time": "Hour", "Expense": "Expense", "Material": "Item", "Fee": "Fee",
                "Milestone": "Fee"}
_LINE_PROPERTIES = {"Chargeable": "Chargeable", "NonChargeable": "NonChargeable",
                    "Complimentary": "Complimentary", "NotAvailable": "NotAvailable"}


@dataclass
class ImportResult:
    imported: int = 0
    invalid: int = 0
    journals: list[str] = field(default_factory=list)
    invoice_proposals: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"Imported": self.imported, "Invalid": self.invalid,
                "Journals": self.journals, "InvoiceProposals": sorted(set(self.invoice_proposals))}


def line_property(billing_type: object) -> str:
    """FO line property from the DV billing type (PMA parameter mapping defaults)."""
    return _LINE_PROPERTIES.get(str(billing_type or ""), "NotSpecified")


def offset_account(classification: object) -> str:
    """Expense and material actuals clear the integration accounts set in PMA parameters."""
    return {"Expense": "ExpenseIntegration", "Material": "ProcurementIntegration"}.get(
        str(classification or ""), "")


def project_finished(writer: Writer, company: str, project_id: object) -> bool:
    project = writer.get(_e("ProjectsV2"), {"dataAreaId": company, "ProjectId": project_id})
    return project is not None and project["ProjectStage"] == "Finished"


def accounting_rate(writer: Writer, company: str, currency: object, on: object) -> float | None:
    le = writer.get(_e("LegalEntities"), {"dataAreaId": company})
    if le is None:
        return None
    rates = tables.select(writer.conn, _e("ExchangeRates"), '"FromCurrency" = ?', (currency,))
    return find_rate(rates, str(currency), str(le["AccountingCurrency"]), on)


def _refusal(writer: Writer, company: str, row: Row) -> str | None:
    """Why FO would not import this staged actual, or None."""
    if project_finished(writer, company, row["ProjectId"]):
        return f"{FINISHED_MESSAGE} {row['ProjectId']}."
    le = writer.get(_e("LegalEntities"), {"dataAreaId": company})
    acct = le["AccountingCurrency"] if le else "?"
    if accounting_rate(writer, company, row["TransactionCurrencyId"], row["DocumentDate"]) is None:
        return (f"Exchange rate from {row['TransactionCurrencyId']} to {acct} was not found "
                f"for date {str(row['DocumentDate'])[:10]}.")
    if project_category(writer, company, row) is None:
        return (f"No project category for transaction category '{row['TransactionCategory']}' "
                f"({_CLASS_TYPES.get(str(row['TransactionClassification']), 'any type')}) "
                f"exists in legal entity {company}.")
    return None


def project_category(writer: Writer, company: str, row: Row) -> Row | None:
    """The LE's project category for the actual's transaction category and class.

    FO links a project category to a shared category; the shared categories of a transaction
    category are ``<CategoryId>-1..-4``, one per transaction type, so the actual's class picks
    the type (Time -> Hour, Expense -> Expense, Material -> Item, Fee/Milestone -> Fee).
    """
    wanted = _CLASS_TYPES.get(str(row.get("TransactionClassification")))
    candidates = tables.select(
        writer.conn, _e("ProjectCategories"),
        '"dataAreaId" = ? AND "SharedCategoryId" IN (SELECT "CategoryId" FROM '
        '"fo_SharedCategories" WHERE "TransactionCategoryId" = ?)',
        (company, row.get("TransactionCategory")))
    for candidate in candidates:
        if wanted is None or candidate["TransactionType"] == wanted:
            return candidate
    return None


def _category_id(writer: Writer, company: str, row: Row) -> object:
    found = project_category(writer, company, row)
    return None if found is None else found["CategoryId"]


class _Journals:
    """Draft journals created by one run, one per period key."""

    def __init__(self, writer: Writer, company: str) -> None:
        self.writer, self.company = writer, company
        self.by_period: dict[str, Row] = {}

    def add_line(self, period: str, values: Row) -> str:
        journals = _e("IntegrationJournals")
        journal = self.by_period.get(period)
        if journal is None or int(journal["NumOfLines"]) >= MAX_JOURNAL_LINES:  # type: ignore[call-overload]
            number = tables.next_number(self.writer.conn, f"IntegrationJournal:{self.company}")
            journal = self.writer.insert(journals, {
                "dataAreaId": self.company, "JournalId": f"PJ-{number:06d}", "PeriodKey": period,
                "Status": "Draft", "NumOfLines": 0})
        line_num = int(journal["NumOfLines"]) + 1  # type: ignore[call-overload]
        self.writer.insert(_e("IntegrationJournalLines"), {
            **values, "dataAreaId": self.company, "JournalId": journal["JournalId"],
            "LineNum": line_num, "Status": "Draft"})
        self.by_period[period] = self.writer.update(journals, journals.key_of(journal),
                                                    {"NumOfLines": line_num})
        return str(journal["JournalId"])


def _proposal_line(writer: Writer, company: str, row: Row) -> str | None:
    proposals = tables.select(writer.conn, _e("InvoiceProposals"),
                              '"dataAreaId" = ? AND "SourceInvoiceId" = ? AND "Status" = ?',
                              (company, row["InvoiceId"], "Open"))
    if not proposals:
        return None
    proposal = proposals[0]
    lines = _e("InvoiceProposalLines")
    count = len(tables.select(writer.conn, lines, '"dataAreaId" = ? AND "InvoiceProposalId" = ?',
                              (company, proposal["InvoiceProposalId"])))
    writer.insert(lines, {"dataAreaId": company, "InvoiceProposalId": proposal["InvoiceProposalId"],
                          "LineNum": count + 1, "ActualId": row["ActualId"],
                          "ProjectId": row["ProjectId"], "CategoryId": _category_id(writer, company, row),
                          "Amount": row["Amount"], "SalesTaxAmount": 0.0,
                          "CurrencyCode": row["TransactionCurrencyId"]})
    return str(proposal["InvoiceProposalId"])


def import_actuals(writer: Writer, company: str | None = None,
                   period_unit: str = "Months") -> ImportResult:
    """Run the import for one legal entity (or all); call inside one store transaction."""
    if period_unit not in PERIOD_UNITS:
        raise bad_request(f"PeriodUnit must be one of {', '.join(PERIOD_UNITS)}.")
    staging = _e("ActualsStaging")
    where = "\"ImportStatus\" IN ('New', 'Invalid')"
    params: tuple[object, ...] = ()
    if company:
        where += ' AND "ProjectDataAreaId" = ?'
        params = (company,)
    result = ImportResult()
    journals: dict[str, _Journals] = {}
    for row in tables.select(writer.conn, staging, where, params):
        le = str(row["ProjectDataAreaId"])
        reason = _refusal(writer, le, row)
        if reason is None and row["TransType"] == "BilledSales":
            proposal = _proposal_line(writer, le, row)
            if proposal is None:
                reason = (f"No open invoice proposal for proforma invoice '{row['InvoiceId']}' "
                          f"was found in legal entity {le}.")
            else:
                result.invoice_proposals.append(proposal)
        elif reason is None:
            group = journals.setdefault(le, _Journals(writer, le))
            journal_id = group.add_line(period_key(row["AccountingDate"] or row["DocumentDate"],
                                                   period_unit), {
                "ActualId": row["ActualId"], "ProjectId": row["ProjectId"],
                "TransType": row["TransType"], "CategoryId": _category_id(writer, le, row),
                "LineProperty": line_property(row["BillingType"]), "Amount": row["Amount"],
                "CurrencyCode": row["TransactionCurrencyId"],
                "AccountingDate": row["AccountingDate"] or row["DocumentDate"],
                "OffsetAccount": offset_account(row["TransactionClassification"])})
            if journal_id not in result.journals:
                result.journals.append(journal_id)
        status = "Invalid" if reason else "Imported"
        if status == "Invalid":
            result.invalid += 1
        else:
            result.imported += 1
        if (row["ImportStatus"], row["ImportError"]) != (status, reason):
            writer.update(staging, staging.key_of(row), {"ImportStatus": status,
                                                         "ImportError": reason})
    return result
