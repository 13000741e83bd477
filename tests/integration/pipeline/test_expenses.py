"""Expense management end to end (domain.md 1.4): real processes, a real broker, both emulators,
everything done through the two APIs as their users would.

One stack for the file (module scope); the tests run in file order and share it. The first makes
an expense category in Finance on the expense shared category of a transaction category born in
Dataverse: it appears in Dataverse for its legal entity only, bound to that transaction category.
The second posts an expense report in Finance on a Dataverse project: its line lands in
Dataverse bound to the project, task, expense category (the first test's) and the worker's
bookable resource; Dataverse approves it and creates its Expense-class cost actual, which the
actuals map carries to Finance staging; Finance's periodic jobs import and post it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite import finance_jobs
from dualwrite.apiclient import ApiSession
from dualwrite.stack import Stack
from emulators.dataverse.seed import seed_id
from tests.support.pipeline import read_topic, running_stack, wait_for
from tests.support.projectops import finance_rows, project_in_finance
from topics import read_headers

pytestmark = pytest.mark.integration

DRAIN = 180.0
USMF = seed_id("cdm_companies", "usmf")
ALICE = seed_id("bookableresources", "Alice Adams")  # personnel number 000101, in usmf
TRAVEL = "TCN-0000001001-A1B2C"  # a transaction category born in Dataverse
TRAVEL_ID = seed_id("msdyn_transactioncategories", TRAVEL)
SUFFIX = uuid.uuid4().hex[:6].upper()
CATEGORY = f"AIR-{SUFFIX}"
PROJECT = f"PRJ-{SUFFIX}"
REPORT = f"EXP-{SUFFIX}"
UNDER_TEST = ("expense_categories", "project_expenses", "actuals")
CLASS_EXPENSE, COST, APPROVED = 192350001, 192350000, 192350002
POST_REPORT = "ExpenseReportLines/Microsoft.Dynamics.DataEntities.PostExpenseReport"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("expenses")) as running:
        yield running


def finance_post(fo: ApiSession, target: str, body: dict[str, Any]) -> dict[str, Any]:
    response = fo.request("POST", target, json=body)
    assert response.status_code < 300, response.text
    return dict(response.json()) if response.content else {}


def dead_letters(stack: Stack) -> list[dict[str, str]]:
    return [h for h in (read_headers(m.headers()) for m in read_topic(
        stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"], "sync.dlq"))
        if h.get("dlq.map") in UNDER_TEST or not h.get("dlq.map")]


def test_an_expense_category_made_in_finance_appears_in_dataverse_for_its_company_only(stack: Stack) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    # Finance made the shared categories when the transaction category came from Dataverse.
    wait_for(lambda: finance_rows(fo, "SharedCategories", f"CategoryId eq '{TRAVEL}-4'"), DRAIN,
             "the expense shared category of the Dataverse transaction category in Finance")
    finance_post(fo, "ExpenseCategories", {"dataAreaId": "usmf", "CategoryId": CATEGORY,
                                           "Name": "Airfare", "SharedCategoryId": f"{TRAVEL}-4",
                                           "ExpenseType": "Travel"})
    (row,) = wait_for(lambda: dv.get_all("msdyn_expensecategories",
                                         {"$filter": f"msdyn_categoryid eq '{CATEGORY}'"}),
                      DRAIN, "the expense category in Dataverse")
    assert (row["msdyn_name"], row["_msdyn_company_value"], row["_msdyn_transactioncategory_value"]) == \
        ("Airfare", USMF, TRAVEL_ID)
    assert dead_letters(stack) == []


def test_a_posted_expense_reaches_dataverse_is_approved_and_its_actual_is_posted_in_finance(
        stack: Stack) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    project, task = project_in_finance(dv, fo, PROJECT, "Site survey", "Travel", DRAIN)
    # Alice's approved expense report, posted: Finance exports the project line.
    finance_post(fo, "ExpenseReportLines", {
        "dataAreaId": "usmf", "ExpenseNumber": REPORT, "LineNum": 1, "Worker": "000101",
        "ProjectId": PROJECT, "ActivityNumber": "1", "ExpenseCategoryId": CATEGORY,
        "Date": "2026-11-04", "Amount": 200.0, "Currency": "USD", "NonRecoverableTax": 10.0,
        "Status": "Approved"})
    finance_post(fo, POST_REPORT, {"dataAreaId": "usmf", "ExpenseNumber": REPORT})

    (expense,) = wait_for(lambda: dv.get_all("msdyn_expenses", {
        "$filter": f"msdyn_externalexpenseid eq '{REPORT}-1'"}), DRAIN, "the expense line in Dataverse")
    category = dv.get_all("msdyn_expensecategories", {"$filter": f"msdyn_categoryid eq '{CATEGORY}'"})
    assert {k: expense[k] for k in (
        "_msdyn_company_value", "_msdyn_project_value", "_msdyn_projecttask_value",
        "_msdyn_expensecategory_value", "_msdyn_bookableresource_value", "msdyn_amount",
        "msdyn_salestaxamount", "transactioncurrencyid", "msdyn_expensestatus")} == {
        "_msdyn_company_value": USMF, "_msdyn_project_value": project, "_msdyn_projecttask_value": task,
        "_msdyn_expensecategory_value": category[0]["msdyn_expensecategoryid"],
        "_msdyn_bookableresource_value": ALICE, "msdyn_amount": 210.0, "msdyn_salestaxamount": 10.0,
        "transactioncurrencyid": "USD", "msdyn_expensestatus": APPROVED}
    assert expense["msdyn_transactiondate"][:10] == "2026-11-04"
    (actual,) = [a for a in dv.get_all("msdyn_actuals", {"$filter": f"_msdyn_project_value eq {project}"})
                 if a["msdyn_transactionclassification"] == CLASS_EXPENSE]
    assert actual["msdyn_transactiontypecode"] == COST

    (staged,) = wait_for(lambda: finance_rows(fo, "ActualsStaging", f"ActualId eq '{actual['msdyn_actualid']}'"),
                         DRAIN, "the expense actual in Finance staging")
    assert {k: staged[k] for k in ("ProjectDataAreaId", "ProjectId", "TaskId", "TransactionClassification",
                                   "TransType", "ResourceId", "TransactionCategory", "Amount")} == {
        "ProjectDataAreaId": "usmf", "ProjectId": PROJECT, "TaskId": "1", "TransactionClassification": "Expense",
        "TransType": "Cost", "ResourceId": ALICE, "TransactionCategory": TRAVEL, "Amount": 210.0}
    # The project accountant's setup: a project category for the expense shared category.
    finance_post(fo, "ProjectCategories", {"dataAreaId": "usmf", "CategoryId": f"TRV-{SUFFIX}",
                                           "Name": "Travel", "SharedCategoryId": f"{TRAVEL}-4",
                                           "TransactionType": "Expense"})
    done = finance_jobs.run_round(fo, "usmf")
    assert done.journals_posted and not done.refused, done
    (line,) = finance_rows(fo, "IntegrationJournalLines", f"ActualId eq '{actual['msdyn_actualid']}'")
    assert (line["Status"], line["Amount"], line["OffsetAccount"]) == ("Posted", 210.0, "ExpenseIntegration")
    assert dead_letters(stack) == []
