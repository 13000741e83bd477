"""Actuals, their transaction relationships and hour estimates end to end: real processes, a real
broker, both emulators, everything done through the Dataverse API as its users would.

One stack for the file (module scope); the tests run in file order and share it. The first sets
up a contract, a project on it (without the number that makes it syncable), a leaf task, a
T&M contract line, a resource assignment, an approved time entry (Dataverse creates its cost and
unbilled-sales actuals), a material actual in a unit and a Skip Sync actual: none of them may
become a command while the project is not in Finance. Once the project is numbered everything
lands, each command produced only after Finance acknowledged what it references. The second
confirms a proforma invoice (Dataverse bills the unbilled sales: a billed-sales actual, a Skip
Sync reversal and a connection to each): the billed actual and its relationship land, the
reversal and its connection never do. The third asks `dualwrite reconcile`'s logic: in sync.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite.apiclient import ApiSession
from dualwrite.stack import Stack
from emulators.dataverse.seed import seed_id
from tests.support.pipeline import (
    caught_up,
    create_row,
    read_topic,
    replay_everything,
    running_stack,
    wait_for,
)
from tests.support.projectops import (
    ALICE,
    BILLED,
    CONFIRM,
    COST,
    CUSTOMER,
    DEVELOPER,
    UNBILLED,
    USMF,
    act,
    approve_time,
    confirm_proforma,
    contract_project,
    dataverse_actuals,
    finance_rows,
)
from topics import cdc_topic, decode_ack, decode_command, read_headers

pytestmark = pytest.mark.integration

DRAIN = 180.0
HOURS = seed_id("msdyn_transactioncategories", "TCN-0000001000-D3B43")
MATERIALS = seed_id("msdyn_transactioncategories", "TCN-0000001002-C3D4E")
EACH = seed_id("uoms", "Each")
SUFFIX = uuid.uuid4().hex[:6].upper()
CONTRACT = f"PC-{SUFFIX}"
PROJECT = f"PRJ-{SUFFIX}"
WORKER_GROUP = "dualwrite-streams"
UNDER_TEST = ("hour_estimates", "expense_estimates", "actuals", "transaction_relationships", "invoices")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("actuals")) as running:
        yield running


@pytest.fixture(scope="module")
def made() -> dict[str, str]:
    """Dataverse ids of the rows the first test creates, for the tests after it."""
    return {}


def bootstrap(stack: Stack) -> str:
    return stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]


def create(dv: ApiSession, entity_set: str, primary_key: str, body: dict[str, Any]) -> str:
    return create_row(dv, entity_set, primary_key, body)


def staged(fo: ApiSession) -> dict[str, dict[str, Any]]:
    return {r["ActualId"]: r for r in finance_rows(fo, "ActualsStaging", f"ProjectId eq '{PROJECT}'")}


def on_topic(stack: Stack, table: str) -> set[str]:
    """Record ids on a Dataverse table's CDC topic."""
    return {json.loads(m.key())["id"] for m in read_topic(bootstrap(stack), cdc_topic("dataverse", table))
            if m.key()}


def wait_on_topic(stack: Stack, table: str, ids: set[str]) -> None:
    wait_for(lambda: ids <= on_topic(stack, table), DRAIN, f"the new {table} on their CDC topic")


def dead_letters(stack: Stack) -> list[dict[str, str]]:
    """Dead letters of the maps under test, or of no map (undecodable records)."""
    return [h for h in (read_headers(m.headers()) for m in read_topic(bootstrap(stack), "sync.dlq"))
            if h.get("dlq.map") in UNDER_TEST or not h.get("dlq.map")]


def ours(entity: str, key: dict[str, Any], fields: dict[str, Any]) -> bool:
    return PROJECT in (key.get("ProjectId"), fields.get("ProjectId")) or \
        key.get("ProjectContractId") == CONTRACT or \
        entity in ("ActualsStaging", "HourEstimateStaging", "TransactionRelationships")


def named(entity: str, key: dict[str, Any]) -> str:
    """An actual by its id, any other row by its entity (this file writes one of each)."""
    return str(key["ActualId"]) if entity == "ActualsStaging" else entity


def first_command_ms(stack: Stack) -> dict[str, int]:
    """Per `named` row of this file, when its first command was produced."""
    out: dict[str, int] = {}
    for m in read_topic(bootstrap(stack), "sync.commands.finance"):
        c = decode_command(m.value())
        if c.op in ("upsert", "delete") and ours(c.entity, c.key, c.fields):
            name = named(c.entity, c.key)
            out[name] = min(m.timestamp()[1], out.get(name, m.timestamp()[1]))
    return out


def first_ack_ms(stack: Stack) -> dict[str, int]:
    """Per `named` row of this file, when Finance first acknowledged writing it."""
    out: dict[str, int] = {}
    for m in read_topic(bootstrap(stack), "sync.applied.finance"):
        a = decode_ack(m.value())
        if a.op == "upsert" and ours(a.entity, a.key, {}):
            name = named(a.entity, a.key)
            out[name] = min(m.timestamp()[1], out.get(name, m.timestamp()[1]))
    return out


def test_actuals_and_estimates_wait_for_their_project_then_land(stack: Stack, made: dict[str, str]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    # The contract with its customer as its funding source (an invoice on the contract waits
    # for it in Finance), and the project without its number: the projects map's filter holds
    # it back.
    rollout = contract_project(dv, CONTRACT)
    made["order"], made["project"], made["task"], made["line"] = \
        rollout.order, rollout.project, rollout.task, rollout.line
    project, task, line = rollout.project, rollout.task, rollout.line
    made["assignment"] = assignment = create(dv, "msdyn_resourceassignments", "msdyn_resourceassignmentid", {
        "msdyn_projectid@odata.bind": f"/msdyn_projects({project})",
        "msdyn_taskid@odata.bind": f"/msdyn_projecttasks({task})",
        "msdyn_bookableresourceid@odata.bind": f"/bookableresources({ALICE})",
        "msdyn_resourcecategory@odata.bind": f"/bookableresourcecategories({DEVELOPER})",
        "msdyn_hours": 40, "msdyn_plannedcost": 4000, "msdyn_plannedsales": 6000,
        "msdyn_scheduledstart": "2026-11-02", "msdyn_scheduledend": "2026-11-06",
        "transactioncurrencyid": "USD"})
    approve_time(dv, project, task, line, "2026-11-02", minutes=480)
    common = {"msdyn_project@odata.bind": f"/msdyn_projects({project})",
              "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
              "msdyn_transactiontypecode": COST, "msdyn_transactionclassification": 192350002,
              "msdyn_billingtype": 192350000,
              "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({MATERIALS})",
              "msdyn_unit@odata.bind": f"/uoms({EACH})", "msdyn_documentdate": "2026-11-03",
              "msdyn_accountingdate": "2026-11-03", "msdyn_quantity": 3, "msdyn_price": 10,
              "msdyn_amount": 30, "transactioncurrencyid": "USD"}
    made["material"] = create(dv, "msdyn_actuals", "msdyn_actualid", {**common, "msdyn_skipsync": False})
    made["skipped"] = create(dv, "msdyn_actuals", "msdyn_actualid", {**common, "msdyn_skipsync": True})
    by_type = {a["msdyn_transactiontypecode"]: a for a in dataverse_actuals(dv, project)
               if a["msdyn_transactionclassification"] == 192350000}
    made["cost"] = by_type[COST]["msdyn_actualid"]
    made["unbilled"] = by_type[UNBILLED]["msdyn_actualid"]

    # Every change so far is on its CDC topic and has been through the worker: nothing of the
    # project was sent.
    captured = (("msdyn_actuals", {made["cost"], made["unbilled"], made["material"], made["skipped"]}),
                ("msdyn_resourceassignments", {assignment}))
    for table, ids in captured:
        wait_on_topic(stack, table, ids)
    read = [cdc_topic("dataverse", t) for t in ("msdyn_projects", "msdyn_projecttasks", "salesorderdetails",
                                                "msdyn_resourceassignments", "msdyn_actuals")]
    wait_for(lambda: caught_up(bootstrap(stack), WORKER_GROUP, [*read, f"{WORKER_GROUP}-gate"]), DRAIN,
             "the worker to process every change")
    assert set(first_command_ms(stack)) <= {"ProjectContractHeaders"}
    response = dv.request("PATCH", f"msdyn_projects({project})", json={"msdyn_projectnumber": PROJECT},
                          headers={"If-Match": "*"})
    assert response.status_code < 300, response.text

    want = {made["cost"], made["unbilled"], made["material"]}
    rows = wait_for(lambda: (lambda got: got if set(got) == want else None)(staged(fo)), DRAIN,
                    "the three actuals in Finance staging")
    base = {"ProjectDataAreaId": "usmf", "ProjectId": PROJECT, "TransactionCurrencyId": "USD",
            "ImportStatus": "New", "InvoiceId": None}
    time_fields = {**base, "TransactionClassification": "Time", "TaskId": "1", "ResourceId": ALICE,
                   "TransactionCategory": "TCN-0000001000-D3B43", "Quantity": 8.0,
                   "UnitOfMeasure": None, "DocumentDate": "2026-11-02", "AccountingDate": "2026-11-02"}
    expected = {
        made["cost"]: {**time_fields, "TransType": "Cost", "ContractId": None, "ContractLine": None,
                       "UnitPrice": 50.0, "Amount": 400.0, "BillingType": "Chargeable",
                       "BillingStatusId": None},
        made["unbilled"]: {**time_fields, "TransType": "UnbilledSales", "ContractId": CONTRACT,
                           "ContractLine": line, "UnitPrice": 120.0, "Amount": 960.0,
                           "BillingType": "Chargeable", "BillingStatusId": "UnbilledSalesCreated"},
        made["material"]: {**base, "TransType": "Cost", "TransactionClassification": "Material",
                           "TaskId": None, "ContractId": None, "ContractLine": None, "ResourceId": None,
                           "TransactionCategory": "TCN-0000001002-C3D4E", "Quantity": 3.0,
                           "UnitOfMeasure": "ea", "UnitPrice": 10.0, "Amount": 30.0,
                           "DocumentDate": "2026-11-03", "AccountingDate": "2026-11-03",
                           "BillingType": "NonChargeable", "BillingStatusId": None},
    }
    for actual_id, fields in expected.items():
        row = {k: (v[:10] if k.endswith("Date") and v else v) for k, v in rows[actual_id].items()}
        assert {k: row[k] for k in fields} == fields, actual_id
    assert made["skipped"] not in rows

    (estimate,) = wait_for(lambda: finance_rows(fo, "HourEstimateStaging", f"SourceId eq '{assignment}'"),
                           DRAIN, "the hour estimate in Finance")
    assert (estimate["dataAreaId"], estimate["ProjectId"], estimate["TaskId"], estimate["ResourceId"],
            estimate["Duration"], estimate["PlannedCostAmount"], estimate["PlannedSalesAmount"],
            estimate["SalesCurrency"], estimate["StartDate"][:10]) == \
        ("usmf", PROJECT, "1", ALICE, 40.0, 4000.0, 6000.0, "USD", "2026-11-02")
    # Finance's own reaction: the staging row becomes an hour forecast.
    (forecast,) = finance_rows(fo, "HourForecasts", f"TransId eq '{assignment}'")
    assert (forecast["Hours"], forecast["CostPrice"], forecast["SalesPrice"]) == (40.0, 100.0, 150.0)

    # Not by luck of the sink's order: each was produced only after Finance acknowledged what
    # it references.
    sent, acked = first_command_ms(stack), first_ack_ms(stack)
    assert sent[made["unbilled"]] >= max(acked["ProjectsV2"], acked["ProjectTasks"],
                                         acked["ProjectContractLines"])
    assert sent[made["cost"]] >= max(acked["ProjectsV2"], acked["ProjectTasks"])
    assert sent[made["material"]] >= acked["ProjectsV2"]
    assert sent["HourEstimateStaging"] >= max(acked["ProjectsV2"], acked["ProjectTasks"])
    assert dead_letters(stack) == []


def test_a_confirmed_invoice_stages_the_billed_actual_and_its_relationship(
        stack: Stack, made: dict[str, str]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    wait_for(lambda: made["unbilled"] in staged(fo), DRAIN, "the unbilled-sales actual in Finance")
    invoice = create(dv, "invoices", "invoiceid", {
        "invoicenumber": f"INV-{SUFFIX}", "name": "Proforma", "statuscode": 1,
        "customerid@odata.bind": f"/accounts({CUSTOMER})",
        "salesorderid@odata.bind": f"/salesorders({made['order']})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})", "transactioncurrencyid": "USD"})
    act(dv, f"invoices({invoice})/{CONFIRM}")
    actuals = dataverse_actuals(dv, made["project"])
    (billed,) = [a["msdyn_actualid"] for a in actuals if a["msdyn_transactiontypecode"] == BILLED]
    (reversal,) = [a["msdyn_actualid"] for a in actuals if a["msdyn_skipsync"]
                   and a["msdyn_transactiontypecode"] == UNBILLED]
    connections = {c["msdyn_transaction2"]: c["msdyn_transactionconnectionid"] for c in dv.get_all(
        "msdyn_transactionconnections", {"$filter": f"msdyn_transaction1 eq '{made['unbilled']}'"})}
    assert set(connections) == {billed, reversal}

    (relationship,) = wait_for(lambda: finance_rows(
        fo, "TransactionRelationships", f"ConnectionId eq '{connections[billed]}'"), DRAIN,
        "the original -> billed relationship in Finance")
    assert {k: relationship[k] for k in ("Transaction1Id", "Transaction1Role", "Transaction1Type",
                                         "Transaction2Id", "Transaction2Role", "Transaction2Type")} == \
        {"Transaction1Id": made["unbilled"], "Transaction1Role": "Original", "Transaction1Type": "Actual",
         "Transaction2Id": billed, "Transaction2Role": "Billed", "Transaction2Type": "Actual"}
    rows = staged(fo)
    assert (rows[billed]["TransType"], rows[billed]["InvoiceId"], rows[billed]["BillingStatusId"],
            rows[billed]["Amount"]) == ("BilledSales", invoice, "CustInvoiceCreated", 960.0)
    assert reversal not in rows and made["skipped"] not in rows
    # Written in Dataverse's confirmation before the relationship that links them: every
    # connection of that transaction has been through the worker, and the reversal's was dropped.
    read = [cdc_topic("dataverse", t) for t in ("msdyn_actuals", "msdyn_transactionconnections")]
    wait_for(lambda: caught_up(bootstrap(stack), WORKER_GROUP, [*read, f"{WORKER_GROUP}-gate"]), DRAIN,
             "the worker to process every change")
    assert finance_rows(fo, "TransactionRelationships", f"ConnectionId eq '{connections[reversal]}'") == []
    sent, acked = first_command_ms(stack), first_ack_ms(stack)
    assert sent["TransactionRelationships"] >= acked[made["unbilled"]]
    # The invoice proposal: after the unbilled-sales actual it bills, before the billed one
    # (Finance's own versions), and first in the confirmation's change set.
    (header,) = finance_rows(fo, "InvoiceProposals", f"InvoiceProposalId eq 'INV-{SUFFIX}'")
    assert (header["dataAreaId"], header["SourceInvoiceId"], header["ProjectContractId"],
            header["FundingSourceId"]) == ("usmf", invoice, CONTRACT, "US-001")
    assert rows[made["unbilled"]]["RecVersion"] < header["RecVersion"] < rows[billed]["RecVersion"]
    # One change set of the three rows written, not of every change of the confirmation: the
    # filtered reversal and its connection are not members the sink would wait for.
    placed = {c.entity: (c.tx_size, c.tx_order) for c in (
        decode_command(m.value()) for m in read_topic(bootstrap(stack), "sync.commands.finance"))
        if c.key.get("ActualId") == billed or c.key.get("ConnectionId") == connections[billed]
        or c.key.get("InvoiceProposalId") == f"INV-{SUFFIX}"}
    assert {entity: size for entity, (size, _order) in placed.items()} == dict.fromkeys(
        ("InvoiceProposals", "ActualsStaging", "TransactionRelationships"), 3)
    assert placed["InvoiceProposals"][1] == 1
    assert dead_letters(stack) == []


def dualwrite(stack: Stack, *args: str) -> str:
    """A `dualwrite` command against the stack, as an operator runs it; its stdout."""
    proc = subprocess.run([sys.executable, "-m", "dualwrite", *args], env={**os.environ, **stack.env},
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc.stdout.decode()


def test_an_invoice_waits_for_the_actuals_it_bills_then_lands_between_them(
        stack: Stack, made: dict[str, str]) -> None:
    """The rule the product is known for: with the actuals held back (their map paused), a
    confirmed invoice is not even sent; once they flow, the unbilled-sales actual lands first,
    then the invoice, then its billed-sales actual (Finance's own row versions)."""
    dv, fo = stack.dataverse(), stack.finance()
    dualwrite(stack, "maps", "pause", "actuals", "--reason", "held for the test")
    wait_for(lambda: caught_up(bootstrap(stack), WORKER_GROUP, ["sync.control", f"{WORKER_GROUP}-gate"]),
             DRAIN, "the worker to take the pause")
    try:
        approve_time(dv, made["project"], made["task"], made["line"], "2026-11-10", minutes=240)
        number = f"INV2-{SUFFIX}"
        invoice = confirm_proforma(dv, made["order"], number, "Proforma 2")
        read = [cdc_topic("dataverse", t) for t in ("msdyn_actuals", "msdyn_transactionconnections", "invoices")]
        wait_on_topic(stack, "invoices", {invoice})
        wait_for(lambda: caught_up(bootstrap(stack), WORKER_GROUP, [*read, f"{WORKER_GROUP}-gate"]), DRAIN,
                 "the worker to process the confirmation")
        # Not even sent: the processor holds it (the sink is not what keeps it out of Finance).
        sent = [decode_command(m.value()) for m in read_topic(bootstrap(stack), "sync.commands.finance")]
        assert not [c for c in sent if c.key.get("InvoiceProposalId") == number]
    finally:
        dualwrite(stack, "maps", "resume", "actuals")
    (header,) = wait_for(lambda: finance_rows(fo, "InvoiceProposals", f"InvoiceProposalId eq '{number}'"),
                         DRAIN, "the invoice once its actuals flow")
    mine = [a for a in dataverse_actuals(dv, made["project"]) if not a["msdyn_skipsync"]]
    (unbilled,) = [a["msdyn_actualid"] for a in mine if a["msdyn_transactiontypecode"] == UNBILLED
                   and a["msdyn_documentdate"][:10] == "2026-11-10"]
    (billed,) = [a["msdyn_actualid"] for a in mine if a["_msdyn_invoice_value"] == invoice]
    actuals = {UNBILLED: unbilled, BILLED: billed}
    rows = wait_for(lambda: (lambda got: got if {actuals[UNBILLED], actuals[BILLED]} <= set(got) else None)(
        staged(fo)), DRAIN, "the unbilled and billed actuals in staging")
    assert rows[actuals[UNBILLED]]["RecVersion"] < header["RecVersion"] < rows[actuals[BILLED]]["RecVersion"]
    assert dead_letters(stack) == []


def parked(stack: Stack) -> list[dict[str, Any]]:
    """What `dualwrite status --json` shows waiting in the processor."""
    proc = subprocess.run([sys.executable, "-m", "dualwrite", "status", "--json", "--timeout", "10"],
                          env={**os.environ, **stack.env}, capture_output=True, timeout=120, check=False)
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return list(json.loads(proc.stdout)["parked"])


def test_an_expense_estimate_waits_for_its_partner_then_the_pair_is_one_forecast(
        stack: Stack, made: dict[str, str]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    line = {"msdyn_project@odata.bind": f"/msdyn_projects({made['project']})",
            "msdyn_task@odata.bind": f"/msdyn_projecttasks({made['task']})",
            "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({HOURS})",
            "msdyn_transactionclassification": 192350001, "msdyn_billingtype": 192350001,
            "msdyn_quantity": 2, "msdyn_documentdate": "2026-11-09", "transactioncurrencyid": "USD"}
    cost = create(dv, "msdyn_estimatelines", "msdyn_estimatelineid",
                  {**line, "msdyn_transactiontypecode": COST, "msdyn_price": 80})
    wait_on_topic(stack, "msdyn_estimatelines", {cost})
    read = [cdc_topic("dataverse", "msdyn_estimatelines")]
    wait_for(lambda: caught_up(bootstrap(stack), WORKER_GROUP, [*read, f"{WORKER_GROUP}-gate"]), DRAIN,
             "the worker to process the cost line")
    (waiting,) = wait_for(lambda: [e for e in parked(stack) if e["map"] == "expense_estimates"], DRAIN,
                          "the cost line waiting in status")
    assert waiting["count"] == 1 and waiting["oldest_change_id"].startswith(f"expense_estimates:{cost}:")
    assert waiting["oldest_waits_for"].startswith("partner:expense_estimates:")
    assert waiting["oldest_waits_for"].endswith(":Sales") and waiting["oldest_age_s"] >= 0
    assert finance_rows(fo, "ExpenseEstimateStaging", f"ProjectId eq '{PROJECT}'") == []

    sales = create(dv, "msdyn_estimatelines", "msdyn_estimatelineid",
                   {**line, "msdyn_transactiontypecode": UNBILLED, "msdyn_price": 150})
    staged_lines = wait_for(lambda: (lambda rows: rows if len(rows) == 2 else None)(
        finance_rows(fo, "ExpenseEstimateStaging", f"ProjectId eq '{PROJECT}'")), DRAIN, "both estimate lines")
    assert {r["EstimateLineId"]: (r["TransType"], r["Price"]) for r in staged_lines} == {
        cost: ("Cost", 80.0), sales: ("Sales", 150.0)}
    (forecast,) = finance_rows(fo, "ExpenseForecasts", f"ProjectId eq '{PROJECT}'")
    assert (forecast["CostPrice"], forecast["SalesPrice"], forecast["CostEstimateLineId"],
            forecast["SalesEstimateLineId"]) == (80.0, 150.0, cost, sales)
    assert dead_letters(stack) == []


IMPORT = "ActualsStaging/Microsoft.Dynamics.DataEntities.ImportFromStaging"
POST = "Microsoft.Dynamics.DataEntities.Post"
WRITTEN_BACK = {"Voucher": "msdyn_vouchernumber", "AmountMST": "msdyn_accountingamount",
                "ExchangeRate": "msdyn_exchangerate"}


def test_posting_writes_the_accounting_back_onto_the_dataverse_actuals_and_nothing_echoes(
        stack: Stack, made: dict[str, str]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    # The project accountant's setup: a project category in the legal entity for each synced
    # transaction category used (its shared category of the actual's type), or Finance refuses
    # to import the actual.
    for category, shared, kind in (("HOURS", "TCN-0000001000-D3B43-1", "Hour"),
                                   ("MATERIALS", "TCN-0000001002-C3D4E-3", "Item")):
        made_category = fo.request("POST", "ProjectCategories", json={
            "dataAreaId": "usmf", "CategoryId": category, "Name": category.title(),
            "SharedCategoryId": shared, "TransactionType": kind})
        assert made_category.status_code < 300, made_category.text
    # Finance's periodic jobs, as its batch scheduler runs them: import, then post the journal.
    imported = fo.request("POST", IMPORT, json={"dataAreaId": "usmf"})
    assert imported.status_code == 200, imported.text
    journals = imported.json()["Journals"]
    assert journals, imported.json()
    for journal in journals:
        posted = fo.request("POST", f"IntegrationJournals(dataAreaId='usmf',JournalId='{journal}')/{POST}")
        assert posted.status_code == 200, posted.text
    journalized = {made["cost"], made["unbilled"], made["material"]}
    rows = staged(fo)
    assert all(rows[a]["Voucher"] and rows[a]["AmountMST"] is not None for a in journalized), rows

    def back_on_dataverse() -> dict[str, dict[str, Any]] | None:
        got = {a["msdyn_actualid"]: a for a in dataverse_actuals(dv, made["project"])}
        ok = all(got[a][column] == rows[a][field] for a in journalized
                 for field, column in WRITTEN_BACK.items())
        return got if ok else None

    actuals = wait_for(back_on_dataverse, DRAIN, "the vouchers and accounting amounts on the Dataverse actuals")
    assert actuals[made["cost"]]["msdyn_amount"] == 400.0  # the operational fields untouched
    # No echo either way: the Dataverse change the write-back made is no new staging write.
    read = [cdc_topic("dataverse", "msdyn_actuals"), cdc_topic("finance", "ActualsStaging")]
    wait_for(lambda: caught_up(bootstrap(stack), WORKER_GROUP, [*read, f"{WORKER_GROUP}-gate"]), DRAIN,
             "the worker to process every change")
    per_actual: dict[str, int] = {}
    for m in read_topic(bootstrap(stack), "sync.commands.finance"):
        c = decode_command(m.value())
        if c.op == "upsert" and c.entity == "ActualsStaging" and c.key["ActualId"] in journalized:
            per_actual[str(c.key["ActualId"])] = per_actual.get(str(c.key["ActualId"]), 0) + 1
    assert per_actual == dict.fromkeys(journalized, 1)
    assert dead_letters(stack) == []


def test_a_write_back_onto_an_actual_dataverse_no_longer_has_is_a_dead_letter(stack: Stack) -> None:
    fo = stack.finance()
    gone = str(uuid.uuid4())  # a staged actual whose Dataverse row is gone (rolled back, deleted)
    created = fo.request("POST", "ActualsStaging", json={
        "ProjectDataAreaId": "usmf", "ActualId": gone, "ProjectId": PROJECT, "TransType": "Cost",
        "TransactionClassification": "Time", "Amount": 1.0, "TransactionCurrencyId": "USD",
        "Voucher": "PJV-GONE", "AmountMST": 1.0})
    assert created.status_code < 300, created.text

    def refused() -> list[dict[str, str]]:
        """Dead letters of the actuals map whose record (the refused command) names ``gone``."""
        return [read_headers(m.headers()) for m in read_topic(bootstrap(stack), "sync.dlq")
                if read_headers(m.headers()).get("dlq.map") == "actuals"
                and gone.encode() in (m.value() or b"")]

    try:
        (letter,) = wait_for(refused, DRAIN, "the write-back's dead letter")
        assert "does not exist in Dataverse" in letter["dlq.error.message"], letter
        assert letter.get("dlq.http.status") == "404", letter
        assert dv_row(stack, gone) is None  # never created
    finally:
        fo.request("DELETE", f"ActualsStaging(ProjectDataAreaId='usmf',ActualId='{gone}')")


def dv_row(stack: Stack, actual_id: str) -> dict[str, Any] | None:
    response = stack.dataverse().request("GET", f"msdyn_actuals({actual_id})")
    return response.json() if response.status_code == 200 else None


def test_reconcile_finds_the_new_maps_in_sync(stack: Stack) -> None:
    def drifting() -> dict[str, dict[str, int]]:
        return {r.map: r.counts() for r in stack.reconcile(UNDER_TEST) if r.drift}

    try:
        wait_for(lambda: not drifting(), 120.0, "the new maps in sync (reconcile)", interval=3.0)
    except AssertionError:
        raise AssertionError(f"reconcile finds drift: {drifting()}") from None


def test_a_posted_invoice_proposal_brings_its_sales_tax_back_onto_the_billed_actuals(
        stack: Stack, made: dict[str, str]) -> None:
    """Approved time on the contract project, a proforma confirmed, then Finance's periodic jobs
    as its batch scheduler runs them (`dualwrite.finance_jobs.run_round`): the journal and then
    the proposal are posted, the proposal's line carries the sales tax of the contract's tax
    group, and the billed-sales actual in Dataverse gets the proposal's voucher and that tax
    (domain.md 1.3 steps 3-5). Reconcile then finds the actuals and invoices maps in sync."""
    from dualwrite.finance_jobs import run_round

    dv, fo = stack.dataverse(), stack.finance()
    letters = len(dead_letters(stack))  # the earlier test's deleted actual left one
    # The project accountant's setup in Finance (dual-write maps no tax group): CA, 7.25 %.
    taxed = fo.request("PATCH", f"ProjectContractHeaders(dataAreaId='usmf',ProjectContractId='{CONTRACT}')",
                       json={"SalesTaxGroupCode": "CA"})
    assert taxed.status_code < 300, taxed.text
    approve_time(dv, made["project"], made["task"], made["line"], "2026-11-16", minutes=300)
    number = f"INV3-{SUFFIX}"
    invoice = confirm_proforma(dv, made["order"], number, "Proforma 3")
    (billed,) = [a["msdyn_actualid"] for a in dataverse_actuals(dv, made["project"])
                 if a["_msdyn_invoice_value"] == invoice and not a["msdyn_skipsync"]]

    def posted() -> dict[str, Any] | None:
        run_round(fo, "usmf")
        found = finance_rows(fo, "InvoiceProposals", f"InvoiceProposalId eq '{number}'")
        return found[0] if found and found[0]["Status"] == "Posted" else None

    header = wait_for(posted, DRAIN, "the invoice proposal posted by Finance's jobs", interval=1.0)
    assert (header["SourceInvoiceId"], header["ProjectContractId"]) == (invoice, CONTRACT)
    lines = finance_rows(fo, "InvoiceProposalLines", f"InvoiceProposalId eq '{number}'")
    assert [(x["ActualId"], x["Amount"], x["SalesTaxAmount"]) for x in lines] == [(billed, 600.0, 43.5)]
    row = staged(fo)[billed]
    assert row["Voucher"].startswith("PIV-") and row["SalesTaxAmount"] == 43.5, row

    def back_on_dataverse() -> dict[str, Any] | None:
        (actual,) = [a for a in dataverse_actuals(dv, made["project"]) if a["msdyn_actualid"] == billed]
        return actual if (actual["msdyn_vouchernumber"], actual["msdyn_salestaxamount"]) == \
            (row["Voucher"], 43.5) else None

    actual = wait_for(back_on_dataverse, DRAIN, "the voucher and sales tax on the billed Dataverse actual")
    assert (actual["msdyn_amount"], actual["msdyn_transactiontypecode"]) == (600.0, BILLED)

    def drifting() -> dict[str, dict[str, int]]:
        return {r.map: r.counts() for r in stack.reconcile(("actuals", "invoices")) if r.drift}

    try:
        wait_for(lambda: not drifting(), 120.0, "actuals and invoices in sync (reconcile)", interval=3.0)
    except AssertionError:
        raise AssertionError(f"reconcile finds drift: {drifting()}") from None
    assert dead_letters(stack)[letters:] == []


def test_replaying_every_topic_of_these_flows_writes_nothing(stack: Stack) -> None:
    """Everything above read again from offset 0, every CDC record twice (estimates, actuals,
    connections, invoices, the write-back from Finance's feed): no write lands in either target,
    and the maps stay in sync."""
    letters = len(dead_letters(stack))
    writes = replay_everything(stack, DRAIN)
    again = dead_letters(stack)[letters:]
    assert writes["finance"] == 0
    # The one write never applied (the write-back onto the actual deleted above, a dead letter)
    # is tried again by the replay and dead-lettered again, for the same reason: it is the only
    # write either system sees.
    assert writes["dataverse"] <= len(again), (writes, again)
    assert all(h["dlq.map"] == "actuals" and "does not exist in Dataverse" in h["dlq.error.message"]
               for h in again), again
    assert not {r.map: r.counts() for r in stack.reconcile(UNDER_TEST) if r.drift}
