"""Finance emulator: back-office behaviour (categories, import from staging, posting)."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from emulators.common.batch import BatchRequest, ChangeSet, format_batch_request
from tests.contract.finance.helpers import (
    ACTION,
    actual,
    category_id,
    created,
    feed_since,
    project,
    staged,
    uid,
    watermark,
)
from tests.support.emulators import CLIENT_ID

pytestmark = pytest.mark.contract

IMPORT = f"/ActualsStaging/{ACTION}ImportFromStaging"
FINISHED = "Project stage finished doesn't allow recording in the project"


def _import(fo: httpx.Client, **params: Any) -> dict[str, Any]:
    resp = fo.post(IMPORT, json={"dataAreaId": "usmf", **params})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _journal_line(fo: httpx.Client, actual_id: str) -> dict[str, Any]:
    rows = fo.get("/IntegrationJournalLines",
                  params={"$filter": f"ActualId eq '{actual_id}'"}).json()["value"]
    assert len(rows) == 1, rows
    row: dict[str, Any] = rows[0]
    return row


def _post_journal(fo: httpx.Client, journal_id: str) -> httpx.Response:
    return fo.post(f"/IntegrationJournals(dataAreaId='usmf',JournalId='{journal_id}')/{ACTION}Post")


def test_transaction_category_gets_an_fo_id_and_four_shared_categories(fo: httpx.Client) -> None:
    before = watermark(fo)
    body = created(fo.post("/TransactionCategories", json={"Name": "Consulting",
                                                           "IntegrationId": uid("dv")}))
    cid = body["CategoryId"]
    assert re.fullmatch(r"TCN-\d{10}-[0-9A-F]{5}", cid)
    shared = fo.get("/SharedCategories", params={
        "$filter": f"TransactionCategoryId eq '{cid}'", "$orderby": "CategoryId"}).json()["value"]
    assert [(s["CategoryId"], s["TransactionType"]) for s in shared] == [
        (f"{cid}-1", "Hour"), (f"{cid}-2", "Fee"), (f"{cid}-3", "Item"), (f"{cid}-4", "Expense")]
    entries = feed_since(fo, before)
    assert [e["entity"] for e in entries] == ["TransactionCategories"] + ["SharedCategories"] * 4
    assert len({e["txid"] for e in entries}) == 1


def test_import_turns_staged_actuals_into_journal_and_invoice_proposal_lines(
        fo: httpx.Client) -> None:
    proj = project(fo)
    cost = actual(fo, proj)
    unbilled = actual(fo, proj, TransType="UnbilledSales", UnitPrice=150, Amount=1200)
    invoice = uid("INV")
    created(fo.post("/InvoiceProposals", json={
        "InvoiceProposalId": uid("PIP"), "SourceInvoiceId": invoice,
        "ProjectContractId": proj["ProjectContractId"], "SalesCurrency": "USD"}))
    billed = actual(fo, proj, TransType="BilledSales", Amount=1200, InvoiceId=invoice)
    result = _import(fo)
    assert result["Imported"] >= 3
    for row in (cost, unbilled, billed):
        assert staged(fo, row)["ImportStatus"] == "Imported"
    cost_line, unbilled_line = _journal_line(fo, cost["ActualId"]), _journal_line(
        fo, unbilled["ActualId"])
    assert cost_line["JournalId"] == unbilled_line["JournalId"]
    assert (cost_line["TransType"], cost_line["Amount"], cost_line["CategoryId"]) == (
        "Cost", 800.0, "DESIGN")
    assert cost_line["LineProperty"] == "Chargeable"
    journal = fo.get(f"/IntegrationJournals(dataAreaId='usmf',"
                     f"JournalId='{cost_line['JournalId']}')").json()
    assert (journal["Status"], journal["PeriodKey"]) == ("Draft", "2026-03")
    lines = fo.get("/InvoiceProposalLines",
                   params={"$filter": f"ActualId eq '{billed['ActualId']}'"}).json()["value"]
    assert len(lines) == 1 and lines[0]["Amount"] == 1200.0
    assert fo.get("/IntegrationJournalLines",
                  params={"$filter": f"ActualId eq '{billed['ActualId']}'"}).json()["value"] == []


def test_import_groups_journals_per_period_unit(fo: httpx.Client) -> None:
    proj = project(fo)
    march = actual(fo, proj)
    april = actual(fo, proj, DocumentDate="2026-04-02", AccountingDate="2026-04-02")
    _import(fo)
    assert _journal_line(fo, march["ActualId"])["JournalId"] != _journal_line(
        fo, april["ActualId"])["JournalId"]
    may = actual(fo, proj, DocumentDate="2026-05-02", AccountingDate="2026-05-02")
    june = actual(fo, proj, DocumentDate="2026-06-02", AccountingDate="2026-06-02")
    result = _import(fo, PeriodUnit="Years")
    assert len(result["Journals"]) == 1
    assert _journal_line(fo, may["ActualId"])["JournalId"] == _journal_line(
        fo, june["ActualId"])["JournalId"]


def test_import_refuses_an_actual_without_an_exchange_rate(fo: httpx.Client) -> None:
    row = actual(fo, project(fo), TransactionCurrencyId="JPY")
    result = _import(fo)
    assert result["Invalid"] >= 1
    after = staged(fo, row)
    assert after["ImportStatus"] == "Invalid"
    assert "Exchange rate from JPY to USD was not found" in after["ImportError"]
    assert fo.get("/IntegrationJournalLines", params={
        "$filter": f"ActualId eq '{row['ActualId']}'"}).json()["value"] == []


def test_import_refuses_an_actual_without_a_project_category_in_the_le(fo: httpx.Client) -> None:
    category = created(fo.post("/TransactionCategories", json={"Name": "Unmapped"}))
    row = actual(fo, project(fo), TransactionCategory=category["CategoryId"])
    _import(fo)
    after = staged(fo, row)
    assert after["ImportStatus"] == "Invalid"
    assert "No project category" in after["ImportError"] and "usmf" in after["ImportError"]
    # Once the accountant adds the project category, the next run imports the row.
    created(fo.post("/ProjectCategories", json={
        "CategoryId": uid("CAT"), "Name": "Unmapped", "SharedCategoryId":
        f"{category['CategoryId']}-1", "TransactionType": "Hour"}))
    _import(fo)
    assert staged(fo, row)["ImportStatus"] == "Imported"


def test_posting_a_journal_writes_accounting_results_back_to_staging(fo: httpx.Client) -> None:
    row = actual(fo, project(fo), TransactionCurrencyId="EUR", UnitPrice=100, Amount=800)
    _import(fo)
    journal_id = _journal_line(fo, row["ActualId"])["JournalId"]
    before = watermark(fo)
    resp = _post_journal(fo, journal_id)
    assert resp.status_code == 200 and resp.json()["Status"] == "Posted"
    after = staged(fo, row)
    assert after["Voucher"].startswith("PJV-")
    assert (after["ExchangeRate"], after["AmountMST"], after["UnitPriceMST"],
            after["IsJournalized"]) == (1.085, 868.0, 108.5, "Yes")
    entries = feed_since(fo, before)
    write_back = [e for e in entries if e["entity"] == "ActualsStaging"
                  and e["key"]["ActualId"] == row["ActualId"]]
    assert len(write_back) == 1 and write_back[0]["op"] == "u"
    assert write_back[0]["row"]["Voucher"] == after["Voucher"]
    assert {e["principal"] for e in entries} == {f"batch:{CLIENT_ID}"}
    assert len({e["txid"] for e in entries}) == 1
    again = _post_journal(fo, journal_id)
    assert again.status_code == 400 and again.json()["error"]["code"] == "ActionFailed"


def test_posting_an_invoice_proposal_writes_back_billed_actuals(fo: httpx.Client) -> None:
    proj = project(fo)
    invoice, proposal = uid("INV"), uid("PIP")
    created(fo.post("/InvoiceProposals", json={
        "InvoiceProposalId": proposal, "SourceInvoiceId": invoice,
        "ProjectContractId": proj["ProjectContractId"]}))
    billed = actual(fo, proj, TransType="BilledSales", Amount=500, InvoiceId=invoice)
    _import(fo)
    resp = fo.post(f"/InvoiceProposals(dataAreaId='usmf',InvoiceProposalId='{proposal}')/"
                   f"{ACTION}Post")
    assert resp.status_code == 200 and resp.json()["Status"] == "Posted"
    after = staged(fo, billed)
    assert after["Voucher"].startswith("PIV-") and after["AmountMST"] == 500.0
    assert after["SalesTaxAmount"] == 0.0


def test_finished_project_refuses_import(fo: httpx.Client) -> None:
    row = actual(fo, project(fo, ProjectStage="Finished"))
    _import(fo)
    after = staged(fo, row)
    assert after["ImportStatus"] == "Invalid" and FINISHED in after["ImportError"]


def test_finished_project_refuses_journal_posting(fo: httpx.Client) -> None:
    proj = project(fo)
    row = actual(fo, proj)
    _import(fo)
    journal_id = _journal_line(fo, row["ActualId"])["JournalId"]
    assert fo.patch(f"/ProjectsV2(dataAreaId='usmf',ProjectId='{proj['ProjectId']}')",
                    json={"ProjectStage": "Finished"}).status_code == 204
    resp = _post_journal(fo, journal_id)
    assert resp.status_code == 400 and FINISHED in resp.json()["error"]["message"]
    assert staged(fo, row)["IsJournalized"] == "No"


def _expense_line(fo: httpx.Client, number: str, line: int, **fields: Any) -> dict[str, Any]:
    return created(fo.post("/ExpenseReportLines", json={
        "ExpenseNumber": number, "LineNum": line, "Worker": "000123",
        "ExpenseCategoryId": "TRAVEL", "Date": "2026-03-10", "Amount": 240.0,
        "Currency": "USD", "NonRecoverableTax": 10.0, "Status": "Approved", **fields}))


def test_posting_an_expense_report_exports_its_project_lines(fo: httpx.Client) -> None:
    proj = project(fo)
    number = uid("EXP")
    _expense_line(fo, number, 1, ProjectId=proj["ProjectId"], ActivityNumber="1.1")
    _expense_line(fo, number, 2)  # not a project line: posted, not exported
    before = watermark(fo)
    resp = fo.post(f"/ExpenseReportLines/{ACTION}PostExpenseReport",
                   json={"dataAreaId": "usmf", "ExpenseNumber": number})
    assert resp.status_code == 200, resp.text
    assert [r["ExpenseLineId"] for r in resp.json()["value"]] == [f"{number}-1"]
    entries = feed_since(fo, before)
    assert [(e["entity"], e["op"]) for e in entries] == [
        ("ProjectExpenses", "c"), ("ExpenseReportLines", "u"), ("ExpenseReportLines", "u")]
    exported = entries[0]["row"]
    assert (exported["ProjectId"], exported["Amount"], exported["ExpenseCategoryId"]) == (
        proj["ProjectId"], 250.0, "TRAVEL")
    assert entries[1]["row"]["Status"] == "Posted"
    assert {e["principal"] for e in entries} == {f"batch:{CLIENT_ID}"}


def test_unapproved_expense_report_cannot_be_posted(fo: httpx.Client) -> None:
    number = uid("EXP")
    _expense_line(fo, number, 1, Status="Draft")
    resp = fo.post(f"/ExpenseReportLines/{ACTION}PostExpenseReport",
                   json={"ExpenseNumber": number})
    assert resp.status_code == 400 and "not approved" in resp.json()["error"]["message"]


def test_posting_a_vendor_invoice_exports_header_and_project_lines(fo: httpx.Client) -> None:
    proj = project(fo)
    invoice = uid("VI")
    created(fo.post("/PendingVendorInvoices", json={
        "InvoiceId": invoice, "VendorAccount": "US-101", "InvoiceNumber": "F-7781",
        "InvoiceDate": "2026-03-20", "Currency": "USD"}))
    project_line = uid("VIL")
    created(fo.post("/PendingVendorInvoiceLines", json={
        "ExternalInvoiceLine": project_line, "InvoiceId": invoice, "LineNumber": 1,
        "ProjectId": proj["ProjectId"], "ProjectCategoryId": "HARDWARE", "ItemId": "D0001",
        "Unit": "ea", "Quantity": 2, "UnitPrice": 150, "Amount": 300}))
    created(fo.post("/PendingVendorInvoiceLines", json={
        "ExternalInvoiceLine": uid("VIL"), "InvoiceId": invoice, "LineNumber": 2,
        "ItemId": "M0001", "Unit": "ea", "Quantity": 1, "UnitPrice": 20, "Amount": 20}))
    before = watermark(fo)
    resp = fo.post(f"/PendingVendorInvoices(dataAreaId='usmf',InvoiceId='{invoice}')/"
                   f"{ACTION}Post")
    assert resp.status_code == 200 and resp.json()["Status"] == "Posted"
    entries = feed_since(fo, before)
    assert [(e["entity"], e["op"]) for e in entries] == [
        ("ProjectVendorInvoices", "c"), ("ProjectVendorInvoiceLines", "c"),
        ("PendingVendorInvoices", "u")]
    assert entries[0]["row"]["Voucher"].startswith("VIV-")
    assert entries[1]["key"] == {"dataAreaId": "usmf", "ExternalInvoiceLine": project_line}
    assert entries[1]["row"]["Amount"] == 300.0


def test_finished_project_refuses_vendor_invoice_posting(fo: httpx.Client) -> None:
    proj = project(fo, ProjectStage="Finished")
    invoice = uid("VI")
    created(fo.post("/PendingVendorInvoices", json={"InvoiceId": invoice,
                                                    "VendorAccount": "US-101"}))
    created(fo.post("/PendingVendorInvoiceLines", json={
        "ExternalInvoiceLine": uid("VIL"), "InvoiceId": invoice,
        "ProjectId": proj["ProjectId"], "Amount": 10}))
    resp = fo.post(f"/PendingVendorInvoices(dataAreaId='usmf',InvoiceId='{invoice}')/"
                   f"{ACTION}Post")
    assert resp.status_code == 400 and FINISHED in resp.json()["error"]["message"]


def test_unknown_action_is_404(fo: httpx.Client) -> None:
    assert fo.post(f"/ProjectsV2/{ACTION}Explode").status_code == 404



def test_invoice_proposal_waits_for_linked_unbilled_sales_to_be_journalized(
        fo: httpx.Client) -> None:
    proj = project(fo)
    invoice, proposal = uid("INV"), uid("PIP")
    unbilled = actual(fo, proj, TransType="UnbilledSales", Amount=700)
    created(fo.post("/InvoiceProposals", json={
        "InvoiceProposalId": proposal, "SourceInvoiceId": invoice,
        "ProjectContractId": proj["ProjectContractId"]}))
    billed = actual(fo, proj, TransType="BilledSales", Amount=700, InvoiceId=invoice)
    created(fo.post("/TransactionRelationships", json={
        "ConnectionId": uid("TC"), "Transaction1Id": billed["ActualId"],
        "Transaction1Role": "BilledSales", "Transaction2Id": unbilled["ActualId"],
        "Transaction2Role": "UnbilledSales"}))
    _import(fo)
    post = f"/InvoiceProposals(dataAreaId='usmf',InvoiceProposalId='{proposal}')/{ACTION}Post"
    refused = fo.post(post)
    assert refused.status_code == 400 and unbilled["ActualId"] in refused.text
    assert _post_journal(fo, _journal_line(fo, unbilled["ActualId"])["JournalId"]).status_code == 200
    assert fo.post(post).status_code == 200


def test_billed_sales_without_an_open_invoice_proposal_is_refused(fo: httpx.Client) -> None:
    row = actual(fo, project(fo), TransType="BilledSales", InvoiceId=uid("INV"))
    _import(fo)
    after = staged(fo, row)
    assert after["ImportStatus"] == "Invalid"
    assert "No open invoice proposal" in after["ImportError"]


def test_a_journal_holds_at_most_200_lines(fo: httpx.Client) -> None:
    proj = project(fo)
    design = category_id(fo, "Design")
    parts = [BatchRequest("POST", "ActualsStaging", {"Content-Type": "application/json"},
                          json.dumps({"ProjectDataAreaId": "usmf", "ActualId": uid("ACT"),
                                      "TransType": "Cost", "TransactionClassification": "Time",
                                      "ProjectId": proj["ProjectId"],
                                      "TransactionCategory": design, "Amount": 1,
                                      "TransactionCurrencyId": "USD",
                                      "DocumentDate": "2026-07-01"}).encode())
             for _ in range(201)]
    body, content_type = format_batch_request([ChangeSet("cs", parts)])
    assert fo.post("/$batch", content=body,
                   headers={"Content-Type": content_type}).status_code == 200
    result = _import(fo, PeriodUnit="All")
    sizes = sorted(fo.get(f"/IntegrationJournals(dataAreaId='usmf',JournalId='{j}')").json()[
        "NumOfLines"] for j in result["Journals"])
    assert sizes == [1, 200]
