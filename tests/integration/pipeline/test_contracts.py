"""The contract and configuration maps end to end: real processes, a real broker, both emulators.

One stack for the file (module scope); the tests run in file order and share it. The first
builds a contract whose children reach the processor before their parents can be written (the
contract and the project are created without the number that makes them syncable, children are
added, and only then are the parents numbered), with the Finance sink stopped: nothing that
references an unwritten row may even become a command. Then the sink starts, everything lands
in dependency order, and a deleted funding source is deleted in Finance.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite.apiclient import ApiSession
from dualwrite.stack import Stack
from emulators.dataverse.seed import seed_id
from streams.maps.contracts import CONTRACT_MAPS
from tests.support.pipeline import caught_up, create_row, read_topic, running_stack, wait_for
from topics import cdc_topic, decode_ack, decode_command, read_headers

pytestmark = pytest.mark.integration

DRAIN = 180.0
USMF = seed_id("cdm_companies", "usmf")
CUSTOMER = seed_id("accounts", "usmf/US-001")
SUFFIX = uuid.uuid4().hex[:6].upper()
CONTRACT = f"PC-{SUFFIX}"
PROJECT = f"PRJ-{SUFFIX}"
WORKER_GROUP = "dualwrite-streams"
UNDER_TEST = {*(m.name for m in CONTRACT_MAPS), "projects"}
EVERY_PROCESS_BUT_THE_FINANCE_SINK = ("worker", "sink-dataverse", "source-dataverse", "source-finance")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("contracts"), pipeline=False) as running:
        running.start_pipeline(EVERY_PROCESS_BUT_THE_FINANCE_SINK)
        yield running


@pytest.fixture(scope="module")
def made() -> dict[str, str]:
    """Dataverse ids of the rows the first test creates, for the tests after it."""
    return {}


def bootstrap(stack: Stack) -> str:
    return stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]


def start_finance_sink(stack: Stack) -> None:
    if "sink-finance" not in stack.sup.children:
        stack.start_pipeline(("sink-finance",))


def create(dv: ApiSession, entity_set: str, primary_key: str, body: dict[str, Any]) -> str:
    return create_row(dv, entity_set, primary_key, body)


def patch(dv: ApiSession, target: str, body: dict[str, Any]) -> None:
    response = dv.request("PATCH", target, json=body, headers={"If-Match": "*"})
    assert response.status_code < 300, response.text


def finance_rows(fo: ApiSession, entity: str, where: str) -> list[dict[str, Any]]:
    return fo.get_all(entity, {"cross-company": "true", "$filter": where})


def commands(stack: Stack) -> list[Any]:
    return [decode_command(m.value()) for m in read_topic(bootstrap(stack), "sync.commands.finance")]


def acks(stack: Stack) -> list[Any]:
    return [(m.timestamp()[1], decode_ack(m.value()))
            for m in read_topic(bootstrap(stack), "sync.applied.finance")]


def dead_letters(stack: Stack) -> list[dict[str, str]]:
    """Dead letters of the maps under test, or of no map (undecodable records). Other maps'
    letters are their own tests' business (they share the default registry and this stack)."""
    return [h for h in (read_headers(m.headers()) for m in read_topic(bootstrap(stack), "sync.dlq"))
            if h.get("dlq.map") in UNDER_TEST or not h.get("dlq.map")]


def ours(command: Any) -> bool:
    return CONTRACT in str(command.key) or command.key.get("ProjectId") == PROJECT or \
        command.fields.get("ProjectContractId") == CONTRACT


def test_children_created_before_their_parents_can_sync_land_after_them(stack: Stack, made: dict[str, str]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    # Parents without their number: the maps' filters hold them back until they are numbered.
    made["order"] = order = create(dv, "salesorders", "salesorderid", {
        "name": "Rollout contract", "customerid@odata.bind": f"/accounts({CUSTOMER})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})", "transactioncurrencyid": "USD"})
    made["project"] = project = create(dv, "msdyn_projects", "msdyn_projectid", {
        "msdyn_subject": "Rollout", "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})",
        "msdyn_salesorderid@odata.bind": f"/salesorders({order})", "statecode": 0})
    made["line"] = line = create(dv, "salesorderdetails", "salesorderdetailid", {
        "salesorderid@odata.bind": f"/salesorders({order})",
        "msdyn_project@odata.bind": f"/msdyn_projects({project})", "msdyn_linenumber": "1",
        "productdescription": "Implementation", "msdyn_billingmethod": 192350001,
        "extendedamount": 25000, "transactioncurrencyid": "USD"})
    made["milestone"] = create(dv, "msdyn_contractlinescheduleofvalues", "msdyn_contractlinescheduleofvalueid", {
        "msdyn_contract@odata.bind": f"/salesorders({order})",
        "msdyn_contractlineid@odata.bind": f"/salesorderdetails({line})", "msdyn_name": "Go-live",
        "msdyn_amount": 12500, "msdyn_invoicedate": "2027-03-31", "transactioncurrencyid": "USD"})
    made["funding"] = create(dv, "msdyn_projectcontractsplitbillingrules",
                             "msdyn_projectcontractsplitbillingruleid", {
        "msdyn_name": "Forest Wholesales 100%", "msdyn_salesorder@odata.bind": f"/salesorders({order})",
        "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})", "msdyn_percentage": 100})
    patch(dv, f"msdyn_projects({project})", {"msdyn_projectnumber": PROJECT})
    patch(dv, f"salesorders({order})", {"ordernumber": CONTRACT})

    # The header is sent; the Finance sink is stopped, so Finance holds no header, and nothing
    # that references it (the project, the line, the milestone, the funding source) is sent.
    wait_for(lambda: any(c.entity == "ProjectContractHeaders" and ours(c) for c in commands(stack)),
             DRAIN, "the contract header's command")
    # Every change made so far has been through the worker (its CDC records and the gate records
    # they led to are committed), so a child that did not wait would have been sent by now.
    read = [cdc_topic("dataverse", t) for t in ("salesorders", "msdyn_projects", "salesorderdetails",
                                                "msdyn_contractlinescheduleofvalues",
                                                "msdyn_projectcontractsplitbillingrules")]
    wait_for(lambda: caught_up(bootstrap(stack), WORKER_GROUP, [*read, f"{WORKER_GROUP}-gate"]), DRAIN,
             "the worker to process every change")
    sent = {c.entity for c in commands(stack) if ours(c)}
    assert sent == {"ProjectContractHeaders"}, sent

    start_finance_sink(stack)
    where = f"ProjectContractId eq '{CONTRACT}'"
    (milestone_row,) = wait_for(lambda: finance_rows(fo, "OnAccountTransactions", where), DRAIN,
                                "the milestone in Finance")
    (header,) = finance_rows(fo, "ProjectContractHeaders", where)
    assert (header["dataAreaId"], header["Name"], header["CustomerAccountNumber"],
            header["SalesCurrencyCode"], header["IntegrationSourceDataId"]) == \
        ("usmf", "Rollout contract", "US-001", "USD", order)
    (project_row,) = finance_rows(fo, "ProjectsV2", f"ProjectId eq '{PROJECT}'")
    assert (project_row["ProjectContractId"], project_row["ProjectGroupId"]) == (CONTRACT, "TM")
    (line_row,) = finance_rows(fo, "ProjectContractLines", where)
    assert (line_row["ContractLineId"], line_row["BillingMethod"], line_row["LineProjectId"],
            line_row["LineAmount"], line_row["LineSequenceNumber"]) == (line, "FixedPrice", PROJECT, 25000.0, 1)
    assert (milestone_row["TransactionId"], milestone_row["ContractLineRef"], milestone_row["Amount"],
            milestone_row["InvoiceDate"][:10]) == (made["milestone"], line, 12500.0, "2027-03-31")
    (funding,) = wait_for(lambda: finance_rows(fo, "ProjectFundingSources", f"ProjectContractID eq '{CONTRACT}'"),
                          DRAIN, "the funding source in Finance")
    assert (funding["FundingSourceId"], funding["CustomerOrOrganization"], funding["FundingType"]) == \
        ("US-001", "US-001", "Customer")
    # Finance's own reaction to a fixed-price line's first milestone.
    assert finance_rows(fo, "FixedPriceRevenueEstimateProjects", where)

    # Not by luck of the sink's order: each child's command was produced only after Finance
    # acknowledged what it references (the processor learned it is present).
    acked: dict[str, int] = {}
    for ts, ack in acks(stack):
        if ack.op == "upsert" and (CONTRACT in str(ack.key) or ack.key.get("ProjectId") == PROJECT):
            acked[ack.entity] = min(ts, acked.get(ack.entity, ts))
    sent_at: dict[str, int] = {}
    for m in read_topic(bootstrap(stack), "sync.commands.finance"):
        command = decode_command(m.value())
        if ours(command):
            sent_at[command.entity] = min(m.timestamp()[1], sent_at.get(command.entity, m.timestamp()[1]))
    assert sent_at["ProjectsV2"] >= acked["ProjectContractHeaders"]
    assert sent_at["ProjectFundingSources"] >= acked["ProjectContractHeaders"]
    assert sent_at["ProjectContractLines"] >= max(acked["ProjectContractHeaders"], acked["ProjectsV2"])
    assert sent_at["OnAccountTransactions"] >= acked["ProjectContractLines"]
    assert dead_letters(stack) == []


def test_an_edit_flows_and_a_deleted_funding_source_is_deleted_in_finance(stack: Stack, made: dict[str, str]) -> None:
    start_finance_sink(stack)
    dv, fo = stack.dataverse(), stack.finance()
    where = f"ProjectContractID eq '{CONTRACT}'"
    wait_for(lambda: finance_rows(fo, "ProjectFundingSources", where), DRAIN, "the funding source")
    patch(dv, f"salesorders({made['order']})", {"name": "Rollout contract, phase 1"})
    response = dv.request("DELETE", f"msdyn_projectcontractsplitbillingrules({made['funding']})")
    assert response.status_code == 204, response.text

    wait_for(lambda: not finance_rows(fo, "ProjectFundingSources", where), DRAIN,
             "the funding source to be deleted in Finance")
    wait_for(lambda: finance_rows(fo, "ProjectContractHeaders", f"ProjectContractId eq '{CONTRACT}' and "
                                  "Name eq 'Rollout contract, phase 1'"), DRAIN, "the renamed header")
    assert finance_rows(fo, "ProjectContractLines", f"ProjectContractId eq '{CONTRACT}'")  # untouched
    assert dead_letters(stack) == []


def test_categories_and_bookable_resources_reach_finance(stack: Stack) -> None:
    start_finance_sink(stack)
    dv, fo = stack.dataverse(), stack.finance()
    code = f"TCN-{SUFFIX}"
    create(dv, "msdyn_transactioncategories", "msdyn_transactioncategoryid",
           {"msdyn_integrationid": code, "msdyn_name": "Workshops", "statecode": 0})
    (category,) = wait_for(lambda: finance_rows(fo, "TransactionCategories", f"CategoryId eq '{code}'"),
                           DRAIN, "the new category in Finance")
    assert category["Name"] == "Workshops"
    # Finance creates the shared categories of a new category itself (Hour, Fee, Item, Expense).
    shared = finance_rows(fo, "SharedCategories", f"TransactionCategoryId eq '{code}'")
    assert sorted(r["TransactionType"] for r in shared) == ["Expense", "Fee", "Hour", "Item"]

    # The seeded bookable resources (usmf) arrive as worker resources with their personnel number.
    resources = wait_for(lambda: (lambda got: got if len(got) == 2 else None)(
        finance_rows(fo, "ProjectWorkerResources", "dataAreaId eq 'usmf'")), DRAIN, "the worker resources")
    assert {(r["Name"], r["PersonnelNumber"]) for r in resources} == {("Alice Adams", "000101"),
                                                                       ("Bob Brown", "000102")}
    assert {r["ResourceId"] for r in resources} == {seed_id("bookableresources", "Alice Adams"),
                                                    seed_id("bookableresources", "Bob Brown")}
    assert dead_letters(stack) == []


def test_a_project_manager_becomes_their_bookable_resources_personnel_number(stack: Stack) -> None:
    """Projects V2 ProjectManagerPersonnelNumber: the manager (a system user) -> the user's
    bookable resource -> its personnel number. A manager who is no bookable resource (Carla)
    leaves the field empty; the project is written all the same, not parked."""
    start_finance_sink(stack)
    dv, fo = stack.dataverse(), stack.finance()
    managed = {f"PRJ-{SUFFIX}-A": "alice@contoso.example", f"PRJ-{SUFFIX}-C": "carla@contoso.example"}
    for number, login in managed.items():
        create(dv, "msdyn_projects", "msdyn_projectid", {
            "msdyn_projectnumber": number, "msdyn_subject": f"Managed by {login}",
            "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
            "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})",
            "msdyn_projectmanager@odata.bind": f"/systemusers({seed_id('systemusers', login)})",
            "statecode": 0})
    where = " or ".join(f"ProjectId eq '{number}'" for number in managed)
    written = wait_for(lambda: (lambda got: got if len(got) == 2 else None)(
        finance_rows(fo, "ProjectsV2", f"dataAreaId eq 'usmf' and ({where})")), DRAIN,
        "both managed projects in Finance")
    assert {r["ProjectId"]: r["ProjectManagerPersonnelNumber"] or None for r in written} == {
        f"PRJ-{SUFFIX}-A": "000101", f"PRJ-{SUFFIX}-C": None}
    assert dead_letters(stack) == []


def test_a_deleted_contract_takes_its_lines_and_milestones_out_of_finance_children_first(
        stack: Stack, made: dict[str, str]) -> None:
    start_finance_sink(stack)
    dv, fo = stack.dataverse(), stack.finance()
    where = f"ProjectContractId eq '{CONTRACT}'"
    wait_for(lambda: finance_rows(fo, "OnAccountTransactions", where), DRAIN, "the milestone")
    # Dataverse deletes the lines (and their milestones) with the contract and unlinks the
    # project, in one transaction; Finance refuses to delete a row another row still references.
    response = dv.request("DELETE", f"salesorders({made['order']})")
    assert response.status_code == 204, response.text

    wait_for(lambda: not finance_rows(fo, "ProjectContractHeaders", where), DRAIN,
             "the contract header to be deleted in Finance")
    assert finance_rows(fo, "ProjectContractLines", where) == []
    assert finance_rows(fo, "OnAccountTransactions", where) == []
    (project_row,) = finance_rows(fo, "ProjectsV2", f"ProjectId eq '{PROJECT}'")
    assert project_row["ProjectContractId"] is None
    assert dead_letters(stack) == []
