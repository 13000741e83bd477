"""Project vendor invoices end to end (domain.md 1.5): real processes, a real broker, both
emulators, everything done through the two APIs as their users would.

One stack for the file (module scope); the tests run in file order and share it. The first posts
a pending vendor invoice in Finance with two project lines and one without a project: Dataverse
shows the header and exactly the two project lines, bound right and written in one change set
(one Dataverse transaction); an invoice of only non-project lines never appears; Dataverse
approves the lines, their Material actuals reach Finance staging and are journal-posted. The
second walks the four documented failure modes (unit, product, vendor, transaction category
missing in Dataverse): each invoice is posted first, waits named in `dualwrite status`, and
lands the moment the missing record arrives, nothing lost or duplicated. The third: a line on an
inactive category is refused by Dataverse and dead-lettered with Dataverse's message.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite import finance_jobs
from dualwrite.apiclient import ApiSession
from dualwrite.stack import Stack
from emulators.dataverse.seed import seed_id
from tests.support.pipeline import (
    caught_up,
    create_row,
    parked,
    read_topic,
    running_stack,
    wait_for,
)
from tests.support.projectops import USMF, finance_rows, project_in_finance
from topics import read_headers

pytestmark = pytest.mark.integration

TX_WAIT_S = 10.0  # the sinks' `tx_wait_s` here (30 s by default): a header waits its parked line past it
DRAIN = 120.0
SUFFIX = uuid.uuid4().hex[:6].upper()
PROJECT = f"PRJ-{SUFFIX}"
MATERIALS = "TCN-0000001002-C3D4E"  # active in Dataverse, brought to Finance by its map
RETIRED = "TCN-0000001099-E5F6A"  # inactive in Dataverse
MATERIAL_CATEGORY, RETIRED_CATEGORY = f"MAT-{SUFFIX}", f"RET-{SUFFIX}"
EACH = seed_id("uoms", "Each")
LINES = ("vendor_invoices", "vendor_invoice_lines")
UNDER_TEST = (*LINES, "actuals")
WORKER_GROUP = "dualwrite-streams"
CLASS_MATERIAL, COST = 192350002, 192350000


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    wait = {f"DUALWRITE_{api}__SINK_TX_WAIT_S": str(TX_WAIT_S) for api in ("DATAVERSE", "FINANCE")}
    with running_stack(tmp_path_factory.mktemp("vendor-invoices"), extra_env=wait) as running:
        yield running


@pytest.fixture(scope="module")
def made() -> dict[str, str]:
    """Dataverse ids of the rows the first test creates, for the tests after it."""
    return {}


def finance_post(fo: ApiSession, target: str, body: dict[str, Any]) -> dict[str, Any]:
    response = fo.request("POST", target, json=body)
    assert response.status_code < 300, response.text
    return dict(response.json()) if response.content else {}


def dualwrite(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "dualwrite", *args], env={**os.environ, **stack.env},
                          capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def dead_letters(stack: Stack) -> list[dict[str, str]]:
    return [h for h in (read_headers(m.headers()) for m in read_topic(
        stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"], "sync.dlq"))
        if h.get("dlq.map") in UNDER_TEST or not h.get("dlq.map")]


def post_invoice(fo: ApiSession, invoice: str, lines: list[dict[str, Any]], vendor: str = "US-101") -> None:
    """A pending vendor invoice with its lines, then posted (Finance exports the project lines)."""
    finance_post(fo, "PendingVendorInvoices", {
        "dataAreaId": "usmf", "InvoiceId": invoice, "VendorAccount": vendor,
        "InvoiceNumber": f"N-{invoice}", "InvoiceDate": "2026-11-05T12:00:00Z", "Currency": "USD"})
    for n, line in enumerate(lines, start=1):
        finance_post(fo, "PendingVendorInvoiceLines", {
            "dataAreaId": "usmf", "ExternalInvoiceLine": f"{invoice}-{n}", "InvoiceId": invoice,
            "LineNumber": n, "ProjectId": PROJECT, "ActivityNumber": "1",
            "ProjectCategoryId": MATERIAL_CATEGORY, "ItemId": "D0001", "Unit": "ea",
            "Quantity": 2.0, "UnitPrice": 30.0, "Amount": 60.0, **line})
    finance_post(fo, f"PendingVendorInvoices(dataAreaId='usmf',InvoiceId='{invoice}')"
                     "/Microsoft.Dynamics.DataEntities.Post", {})


def headers_of(dv: ApiSession, invoice: str) -> list[dict[str, Any]]:
    return dv.get_all("msdyn_projectvendorinvoices", {"$filter": f"msdyn_externalinvoice eq '{invoice}'"})


def lines_of(dv: ApiSession, header: str) -> list[dict[str, Any]]:
    return dv.get_all("msdyn_projectvendorinvoicelines", {"$filter": f"_msdyn_vendorinvoice_value eq {header}"})


def landed(dv: ApiSession, invoice: str, lines: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The invoice's header and lines in Dataverse once all ``lines`` are there."""
    found = headers_of(dv, invoice)
    if not found:
        return None
    got = lines_of(dv, found[0]["msdyn_projectvendorinvoiceid"])
    return (found[0], got) if len(got) >= lines else None


def landed_line(dv: ApiSession, invoice: str) -> dict[str, Any]:
    """The one line of a one-line invoice, once it and its header are in Dataverse."""
    _header, (line,) = wait_for(lambda: landed(dv, invoice, 1), DRAIN, f"{invoice} in Dataverse")
    return dict(line)


def transactions(dv: ApiSession, entity_set: str) -> dict[str, str]:
    """Row id -> the Dataverse transaction that last wrote it (the emulator's change tracking)."""
    response = dv.request("GET", entity_set, headers={"Prefer": "odata.track-changes"})
    assert response.status_code == 200, response.text
    key = {"msdyn_projectvendorinvoices": "msdyn_projectvendorinvoiceid",
           "msdyn_projectvendorinvoicelines": "msdyn_projectvendorinvoicelineid"}[entity_set]
    return {row[key]: row["@dualwrite.txid"] for row in response.json()["value"]}


def vendor_maps_in_sync(stack: Stack) -> bool:
    return not [r for r in stack.reconcile(LINES) if r.drift]


def waiting_for(stack: Stack, fact: str) -> dict[str, Any] | None:
    return next((p for p in parked(stack) if fact in str(p.get("oldest_waits_for"))), None)


def assert_parked_and_reported(stack: Stack, map_name: str, fact: str) -> None:
    """The change waits in `dualwrite status --json` naming the missing record, and
    `status --max-parked-age 0` exits 1 naming it."""
    entry = wait_for(lambda: waiting_for(stack, fact), DRAIN, f"a change parked on {fact}")
    assert entry["map"] == map_name, entry
    proc = dualwrite(stack, "status", "--max-parked-age", "0", "--timeout", "10")
    said = "".join((proc.stdout + proc.stderr).split())  # the console wraps long lines
    assert proc.returncode == 1 and fact in said, (proc.stdout, proc.stderr)


def test_a_posted_invoice_lands_whole_in_one_change_set_and_its_actuals_are_posted_in_finance(
        stack: Stack, made: dict[str, str]) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    project, task = project_in_finance(dv, fo, PROJECT, "Cabling", "Install", DRAIN)
    made.update(project=project, task=task)
    wait_for(lambda: finance_rows(fo, "SharedCategories", f"CategoryId eq '{MATERIALS}-3'"), DRAIN,
             "the item shared category of the Dataverse transaction category in Finance")
    finance_post(fo, "ProjectCategories", {"dataAreaId": "usmf", "CategoryId": MATERIAL_CATEGORY,
                                           "Name": "Materials", "SharedCategoryId": f"{MATERIALS}-3",
                                           "TransactionType": "Item"})
    product = wait_for(lambda: dv.get_all("products", {"$filter": "productnumber eq 'usmf-D0001'"}),
                       DRAIN, "the released product in Dataverse")[0]["productid"]
    vendor = wait_for(lambda: dv.get_all("msdyn_vendors", {"$filter": "msdyn_vendoraccountnumber eq 'US-101'"}),
                      DRAIN, "the vendor in Dataverse")[0]["msdyn_vendorid"]

    no_project = f"VN-{SUFFIX}"
    post_invoice(fo, no_project, [{"ProjectId": None, "ActivityNumber": None, "ProjectCategoryId": None}])
    invoice = f"VI-{SUFFIX}"
    post_invoice(fo, invoice, [{"Quantity": 2.0, "Amount": 60.0}, {"Quantity": 3.0, "Amount": 90.0},
                               {"ProjectId": None, "ActivityNumber": None, "ProjectCategoryId": None}])

    header, lines = wait_for(lambda: landed(dv, invoice, 2), DRAIN, "the invoice and its lines in Dataverse")
    assert (header["msdyn_invoicenumber"], header["msdyn_invoicedate"][:10], header["transactioncurrencyid"],
            header["_msdyn_vendor_value"], header["_msdyn_owningcompany_value"]) == (
        f"N-{invoice}", "2026-11-05", "USD", vendor, USMF)
    category = seed_id("msdyn_transactioncategories", MATERIALS)
    assert sorted((line["msdyn_externalinvoiceline"], line["_msdyn_project_value"],
                   line["_msdyn_projecttask_value"], line["_msdyn_transactioncategory_value"],
                   line["_msdyn_product_value"], line["_msdyn_unit_value"], line["msdyn_quantity"],
                   line["msdyn_unitprice"], line["msdyn_amount"], line["msdyn_intercompany"],
                   line["transactioncurrencyid"], line["_msdyn_owningcompany_value"]) for line in lines) == [
        (f"{invoice}-1", project, task, category, product, EACH, 2.0, 30.0, 60.0, False, "USD", USMF),
        (f"{invoice}-2", project, task, category, product, EACH, 3.0, 30.0, 90.0, False, "USD", USMF)]
    made.update(header=header["msdyn_projectvendorinvoiceid"],
                lines=",".join(line["msdyn_projectvendorinvoicelineid"] for line in lines))
    assert headers_of(dv, no_project) == []

    # Dataverse approved each line: a Material cost actual, carried to Finance staging.
    actuals = [a for a in dv.get_all("msdyn_actuals", {"$filter": f"_msdyn_project_value eq {project}"})
               if a["msdyn_transactionclassification"] == CLASS_MATERIAL]
    assert sorted((a["msdyn_transactiontypecode"], a["msdyn_amount"]) for a in actuals) == [(COST, 60.0), (COST, 90.0)]
    ids = {a["msdyn_actualid"] for a in actuals}
    staged = wait_for(lambda: (lambda rows: rows if {r["ActualId"] for r in rows} >= ids else None)(
        finance_rows(fo, "ActualsStaging", f"ProjectId eq '{PROJECT}'")), DRAIN, "the actuals in staging")
    assert {(r["TransactionClassification"], r["TransactionCategory"], r["Amount"]) for r in staged
            if r["ActualId"] in ids} == {("Material", MATERIALS, 60.0), ("Material", MATERIALS, 90.0)}
    done = finance_jobs.run_round(fo, "usmf")
    assert done.journals_posted and not done.refused, done
    posted = [line for actual in ids
              for line in finance_rows(fo, "IntegrationJournalLines", f"ActualId eq '{actual}'")]
    assert sorted((line["Status"], line["Amount"], line["OffsetAccount"]) for line in posted) == [
        ("Posted", 60.0, "ProcurementIntegration"), ("Posted", 90.0, "ProcurementIntegration")]
    assert dead_letters(stack) == []


def test_the_header_and_its_lines_were_written_by_one_dataverse_transaction(
        stack: Stack, made: dict[str, str]) -> None:
    """One change set, proved from the Dataverse side: the emulator's change tracking names the
    transaction (``@dualwrite.txid``) that wrote each row."""
    dv = stack.dataverse()
    txids = {**transactions(dv, "msdyn_projectvendorinvoices"), **transactions(dv, "msdyn_projectvendorinvoicelines")}
    assert len({txids[made["header"]], *(txids[line] for line in made["lines"].split(","))}) == 1


def test_each_documented_failure_mode_waits_named_and_lands_when_the_record_arrives(
        stack: Stack, made: dict[str, str]) -> None:
    """Each invoice is posted before the record it lacks exists; the record then arrives as
    dual-write's remedy says (a Finance record its map brings, or a Dataverse category)."""
    dv, fo = stack.dataverse(), stack.finance()
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]

    # Unit, product and transaction category missing in Dataverse: each invoice's line waits
    # (status shows a map's oldest wait), until its record arrives.
    unit, item = f"u{SUFFIX}".lower(), f"M{SUFFIX}"
    # Finance's own Hardware category: not in Dataverse until made there (the transaction
    # categories map then runs Dataverse -> Finance).
    (hardware,) = finance_rows(fo, "ProjectCategories", "dataAreaId eq 'usmf' and CategoryId eq 'HARDWARE'")
    (shared,) = finance_rows(fo, "SharedCategories", f"CategoryId eq '{hardware['SharedCategoryId']}'")
    code = shared["TransactionCategoryId"]
    made_in_dataverse: dict[str, str] = {}
    cases = (
        (f"VU-{SUFFIX}", {"Unit": unit}, f"uoms(msdyn_symbol='{unit}')",
         lambda: finance_post(fo, "Units", {"UnitSymbol": unit, "Description": "Test unit",
                                            "UnitClass": "Quantity"})),
        (f"VP-{SUFFIX}", {"ItemId": item}, f"products(productnumber='usmf-{item}')",
         lambda: finance_post(fo, "ReleasedProductsV2", {
             "dataAreaId": "usmf", "ItemNumber": item, "ProductNumber": item, "ProductName": "Conduit",
             "SalesUnitSymbol": "ea"})),
        (f"VC-{SUFFIX}", {"ProjectCategoryId": "HARDWARE"}, f"msdyn_transactioncategories(msdyn_integrationid='{code}')",
         lambda: made_in_dataverse.update(category=create_row(
             dv, "msdyn_transactioncategories", "msdyn_transactioncategoryid",
             {"msdyn_integrationid": code, "msdyn_name": "Hardware", "statecode": 0}))),
    )
    for n, (invoice, line, fact, make) in enumerate(cases):  # the next one posted while the last lands
        posted = time.monotonic()
        post_invoice(fo, invoice, [line])
        assert_parked_and_reported(stack, "vendor_invoice_lines", fact)
        if n == 0:
            # The header's command is at the sink; the processor sent a hold for its parked
            # line, so the sink keeps it past its `tx_wait_s`: Dataverse never shows the header
            # without its line.
            time.sleep(max(0.0, posted + TX_WAIT_S + 5 - time.monotonic()))
            assert headers_of(dv, invoice) == []
        make()
    landed_lines = {invoice: landed_line(dv, invoice) for invoice, _line, _fact, _make in cases}
    (uom,) = dv.get_all("uoms", {"$filter": f"msdyn_symbol eq '{unit}'"})
    (product,) = dv.get_all("products", {"$filter": f"productnumber eq 'usmf-{item}'"})
    assert (landed_lines[f"VU-{SUFFIX}"]["_msdyn_unit_value"], landed_lines[f"VP-{SUFFIX}"]["_msdyn_product_value"],
            landed_lines[f"VC-{SUFFIX}"]["_msdyn_transactioncategory_value"]) == (
        uom["uomid"], product["productid"], made_in_dataverse["category"])

    # Vendor missing in Dataverse. Finance refuses an invoice of a vendor it does not know, so
    # the vendor is made in Finance while the vendors map is paused (its initial sync not run).
    account, invoice = f"V{SUFFIX}", f"VV-{SUFFIX}"
    assert dualwrite(stack, "maps", "pause", "vendors", "--reason", "held for the test").returncode == 0
    wait_for(lambda: caught_up(bootstrap, WORKER_GROUP, ["sync.control", f"{WORKER_GROUP}-gate"]),
             DRAIN, "the worker to take the pause")
    try:
        finance_post(fo, "VendorsV2", {"dataAreaId": "usmf", "VendorAccountNumber": account,
                                       "Name": "Northwind Cables", "VendorGroupId": "10", "CurrencyCode": "USD"})
        post_invoice(fo, invoice, [{}, {"Quantity": 1.0, "Amount": 30.0}], vendor=account)
        assert_parked_and_reported(
            stack, "vendor_invoices",
            f"msdyn_vendors(_msdyn_company_value='{USMF}',msdyn_vendoraccountnumber='{account}')")
        assert headers_of(dv, invoice) == []
    finally:
        assert dualwrite(stack, "maps", "resume", "vendors").returncode == 0
    header, lines = wait_for(lambda: landed(dv, invoice, 2), DRAIN, "the invoice once its vendor is in Dataverse")
    (vendor,) = dv.get_all("msdyn_vendors", {"$filter": f"msdyn_vendoraccountnumber eq '{account}'"})
    assert header["_msdyn_vendor_value"] == vendor["msdyn_vendorid"] and len(lines) == 2

    # Nothing lost or duplicated: exactly the rows posted, and reconcile finds both maps in sync.
    posted = (f"VI-{SUFFIX}", f"VU-{SUFFIX}", f"VP-{SUFFIX}", f"VV-{SUFFIX}", f"VC-{SUFFIX}")
    headers = [h for h in dv.get_all("msdyn_projectvendorinvoices")
               if str(h["msdyn_externalinvoice"]).endswith(SUFFIX)]
    assert sorted(h["msdyn_externalinvoice"] for h in headers) == sorted(posted)
    all_lines = [row["msdyn_externalinvoiceline"] for row in dv.get_all("msdyn_projectvendorinvoicelines")
                 if any(str(row["msdyn_externalinvoiceline"]).startswith(f"{p}-") for p in posted)]
    assert sorted(all_lines) == sorted([f"VI-{SUFFIX}-1", f"VI-{SUFFIX}-2", f"VU-{SUFFIX}-1", f"VP-{SUFFIX}-1",
                                        f"VV-{SUFFIX}-1", f"VV-{SUFFIX}-2", f"VC-{SUFFIX}-1"])
    wait_for(lambda: vendor_maps_in_sync(stack), DRAIN, "reconcile of the vendor invoice maps in sync", interval=3.0)
    assert dead_letters(stack) == []


def test_a_line_on_an_inactive_category_is_dead_lettered_with_dataverses_message(stack: Stack) -> None:
    """No prerequisite can fix this one: Dataverse refuses the line ("Please select an Active,
    Expense Transaction Category.")."""
    dv, fo = stack.dataverse(), stack.finance()
    wait_for(lambda: finance_rows(fo, "SharedCategories", f"CategoryId eq '{RETIRED}-3'"), DRAIN,
             "the item shared category of the retired transaction category in Finance")
    finance_post(fo, "ProjectCategories", {"dataAreaId": "usmf", "CategoryId": RETIRED_CATEGORY,
                                           "Name": "Retired", "SharedCategoryId": f"{RETIRED}-3",
                                           "TransactionType": "Item"})
    invoice = f"VR-{SUFFIX}"
    post_invoice(fo, invoice, [{"ProjectCategoryId": RETIRED_CATEGORY}])
    try:
        letter = wait_for(lambda: next((h for h in dead_letters(stack) if h.get("dlq.map") == "vendor_invoice_lines"),
                                       None), DRAIN, "the refused line in the DLQ")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; dead letters {dead_letters(stack)}; parked {parked(stack)}") from None
    assert (letter["dlq.stage"], letter["dlq.http.status"]) == ("sink", "400"), letter
    assert "Please select an Active, Expense Transaction Category." in letter["dlq.error.message"], letter
    # Its change set was rolled back whole: the header written with it is a dead letter too, with
    # the same message (dual-write fails the posting), and not in Dataverse.
    header_letters = [h for h in dead_letters(stack) if h.get("dlq.map") == "vendor_invoices"]
    assert [h["dlq.error.message"] for h in header_letters] == [letter["dlq.error.message"]]
    assert headers_of(dv, invoice) == []
    assert dv.get_all("msdyn_projectvendorinvoicelines",
                      {"$filter": f"msdyn_externalinvoiceline eq '{invoice}-1'"}) == []
