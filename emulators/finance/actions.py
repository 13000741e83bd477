"""Back-office jobs exposed as OData actions (POST; each one transaction, one txid).

Changes made by an action are attributed to ``batch:<client id>`` in the change feed, as FO
attributes them to the batch job rather than to a user editing rows.

    POST /data/ActualsStaging/Microsoft.Dynamics.DataEntities.ImportFromStaging
         body (optional) {"dataAreaId": "usmf", "PeriodUnit": "Days|Months|Years|All"}
         -> 200 {"Imported": n, "Invalid": n, "Journals": [...], "InvoiceProposals": [...]}
         (no dataAreaId: every legal entity)
    POST /data/IntegrationJournals(dataAreaId='usmf',JournalId='PJ-000001')/Microsoft.Dynamics.DataEntities.Post
    POST /data/InvoiceProposals(dataAreaId='usmf',InvoiceProposalId='...')/Microsoft.Dynamics.DataEntities.Post
    POST /data/PendingVendorInvoices(dataAreaId='usmf',InvoiceId='...')/Microsoft.Dynamics.DataEntities.Post
         -> 200 the posted document row
    POST /data/ExpenseReportLines/Microsoft.Dynamics.DataEntities.PostExpenseReport
         body {"dataAreaId": "usmf", "ExpenseNumber": "EXP-0001"}
    POST /data/ExpenseReportLines(dataAreaId=..,ExpenseNumber=..,LineNum=1)/Microsoft.Dynamics.DataEntities.Post
         (posts the whole report the line belongs to)
         -> 200 {"value": [exported ProjectExpenses rows]}

A refused action answers 400 ``ActionFailed`` and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from emulators.finance import posting, staging, tables
from emulators.finance.entities import entity_named
from emulators.finance.errors import bad_request, not_found
from emulators.finance.keys import format_key
from emulators.finance.messages import ApiRequest, ApiResponse
from emulators.finance.schema import Entity
from emulators.finance.writer import Row

if TYPE_CHECKING:
    from emulators.finance.api import FinanceApi

__all__ = ["ACTIONS", "run"]

Handler = Callable[["FinanceApi", Entity, Row | None, Row, ApiRequest], object]


def _body(req: ApiRequest) -> Row:
    if not req.body.strip():
        return {}
    try:
        body = json.loads(req.body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # nesting too deep
        raise bad_request(f"Error parsing the request body: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The action parameters must be a JSON object.")
    return body


def _import(api: FinanceApi, ent: Entity, key: Row | None, body: Row, req: ApiRequest) -> object:
    company = body.get("dataAreaId")
    unit = str(body.get("PeriodUnit") or "Months")
    return staging.import_actuals(api.writer, str(company).lower() if company else None,
                                  unit).as_json()


def _row_json(ent: Entity, row: Row) -> object:
    return tables.json_row(ent, row)


def _post_journal(api: FinanceApi, ent: Entity, key: Row | None, body: Row,
                  req: ApiRequest) -> object:
    assert key is not None
    return _row_json(ent, posting.post_journal(api.writer, str(key["dataAreaId"]),
                                               key["JournalId"]))


def _post_proposal(api: FinanceApi, ent: Entity, key: Row | None, body: Row,
                   req: ApiRequest) -> object:
    assert key is not None
    return _row_json(ent, posting.post_invoice_proposal(api.writer, str(key["dataAreaId"]),
                                                        key["InvoiceProposalId"]))


def _post_vendor_invoice(api: FinanceApi, ent: Entity, key: Row | None, body: Row,
                         req: ApiRequest) -> object:
    assert key is not None
    return _row_json(ent, posting.post_vendor_invoice(api.writer, str(key["dataAreaId"]),
                                                      key["InvoiceId"]))


def _post_expense_report(api: FinanceApi, ent: Entity, key: Row | None, body: Row,
                         req: ApiRequest) -> object:
    if key is not None:
        company, number = str(key["dataAreaId"]), key["ExpenseNumber"]
    else:
        company = str(body.get("dataAreaId") or api.cfg.default_company).lower()
        number = body.get("ExpenseNumber")
        if not number:
            raise bad_request("The parameter 'ExpenseNumber' is required.")
    exports = posting.post_expense_report(api.writer, company, number)
    return {"value": [tables.json_row(entity_named("ProjectExpenses"), r) for r in exports]}


# (entity, action, bound to a row?) -> handler
ACTIONS: dict[tuple[str, str, bool], Handler] = {
    ("ActualsStaging", "ImportFromStaging", False): _import,
    ("IntegrationJournals", "Post", True): _post_journal,
    ("InvoiceProposals", "Post", True): _post_proposal,
    ("PendingVendorInvoices", "Post", True): _post_vendor_invoice,
    ("ExpenseReportLines", "PostExpenseReport", False): _post_expense_report,
    ("ExpenseReportLines", "Post", True): _post_expense_report,
}


def run(api: FinanceApi, ent: Entity, key: Row | None, action: str,
        req: ApiRequest) -> ApiResponse:
    """Run an action inside the caller's (already open) transaction."""
    handler = ACTIONS.get((ent.name, action, key is not None))
    if handler is None:
        raise not_found(f"No action '{action}' is bound to "
                        f"{ent.name}{'(...)' if key is not None else ''}.")
    if key is not None and (not api.visible(ent, key, req)
                            or tables.fetch(api.store.conn, ent, key) is None):
        raise not_found(f"No {ent.name} record found with key {format_key(ent, key)}.")
    result = handler(api, ent, key, _body(req), req)
    body = {"@odata.context": f"{req.base_url}/$metadata#{ent.name}/{action}",
            **(result if isinstance(result, dict) else {"value": result})}
    return ApiResponse(200, body, {"OData-Version": "4.0"})
