"""A 1,500-line invoice lands whole and in order (issue 11): real processes, a real broker, both
emulators, everything done through the Dataverse API as its users would.

Dual-write's real-time limit is 1,000 invoice lines; the stream has none. 1,500 time entries of
one contract project are approved (in ``$batch`` requests of 1,000, Dataverse's limit), their
unbilled-sales actuals land in Finance staging, then one proforma invoice confirmed over all of
them: Dataverse's confirmation is one transaction of 6,001 rows, of which the invoice header,
1,500 billed-sales actuals and their 1,500 connections are written to Finance (the Skip Sync
reversals and their connections are not): 3,001 writes, more than the 1,000 the Finance sink
puts in one change set (``SinkSettings.max_change_set``, default) and than the Finance emulator
takes in one ``$batch`` (``EmulatorConfig.max_batch_requests``, default): it refuses a larger
one, so a write the sink sent too big would be a dead letter. One stack for the module.

What made it possible: a parking slot keeps its changes in bounded chunks beside it
(`streams.gate`; it used to be one JSON value that passed Kafka's 1 MB limit and crash-looped
the worker), and a released member carries its change set's size rather than every member's id
(each gate hop stays small). The sink's part is also proven alone on a real broker by
``tests/integration/connectors/test_big_transaction.py``.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.common.sink import SinkSettings
from dualwrite.apiclient import ApiSession
from dualwrite.stack import Stack
from emulators.common.batch import (
    BatchPart,
    BatchRequest,
    BatchResponse,
    format_batch_request,
    parse_batch_response,
)
from tests.support.pipeline import read_topic, running_stack, wait_for
from tests.support.projectops import (
    APPROVE,
    BILLED,
    UNBILLED,
    ContractProject,
    confirm_proforma,
    contract_project,
    dataverse_actuals,
    finance_rows,
    time_entry,
)
from topics import read_headers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

LINES = 1500
DV_BATCH = 1000  # Dataverse's documented limit of requests per $batch
DRAIN = 300.0
CAP = SinkSettings(target="finance").max_change_set
SUFFIX = uuid.uuid4().hex[:6].upper()
CONTRACT, PROJECT, INVOICE = f"PC-{SUFFIX}", f"PRJ-{SUFFIX}", f"INV-{SUFFIX}"
UNDER_TEST = ("actuals", "transaction_relationships", "invoices")
FEED = ("InvoiceProposals", "ActualsStaging", "TransactionRelationships")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("big_invoice")) as running:
        yield running


def approve_many(dv: ApiSession, ids: ContractProject, count: int) -> None:
    """``count`` time entries created and approved, a create and its approval per entry, as
    requests (each its own transaction) of ``$batch`` requests of at most 1,000."""
    requests: list[BatchPart] = []
    for i in range(count):
        entry = str(uuid.uuid4())
        row = {"msdyn_timeentryid": entry,
               **time_entry(ids.project, ids.task, ids.line, f"2026-11-{1 + i % 28:02d}", minutes=60)}
        requests += [BatchRequest("POST", "msdyn_timeentries", {"Content-Type": "application/json"},
                                  json.dumps(row).encode()),
                     BatchRequest("POST", f"msdyn_timeentries({entry})/{APPROVE}", {}, b"")]
    for start in range(0, len(requests), DV_BATCH):
        body, content_type = format_batch_request(requests[start:start + DV_BATCH])
        response = dv.request("POST", "$batch", content=body, headers={"Content-Type": content_type})
        assert response.status_code == 200, response.text
        parts = parse_batch_response(response.content, response.headers["Content-Type"])
        assert all(isinstance(p, BatchResponse) and p.status < 300 for p in parts), \
            [p for p in parts if not isinstance(p, BatchResponse) or p.status >= 300][:1]


def staged(fo: ApiSession) -> dict[str, dict[str, Any]]:
    return {r["ActualId"]: r for r in finance_rows(fo, "ActualsStaging", f"ProjectId eq '{PROJECT}'")}


def feed(fo: ApiSession) -> list[dict[str, Any]]:
    """Finance's change feed of the entities written, from the start."""
    since, out = 0, []
    while True:
        response = fo.request("GET", "ChangeFeed", params={"since": str(since), "top": "10000",
                                                           "entities": ",".join(FEED)})
        assert response.status_code == 200, response.text
        body = response.json()
        out += body["value"]
        if int(body["watermark"]) == since:
            return out
        since = int(body["watermark"])


def dead_letters(stack: Stack) -> list[dict[str, str]]:
    """Dead letters of the maps under test, or of no map (undecodable records)."""
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
    return [h for h in (read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq"))
            if h.get("dlq.map") in UNDER_TEST or not h.get("dlq.map")]


def test_a_1500_line_invoice_lands_whole_header_first_in_change_sets_within_the_cap(stack: Stack) -> None:
    dv, fo = stack.dataverse(), stack.finance()
    ids = contract_project(dv, CONTRACT, PROJECT)
    # The project, its task and contract line in Finance before the time is approved, as they
    # are long before an invoice of this size.
    wait_for(lambda: finance_rows(fo, "ProjectContractLines", f"ProjectContractId eq '{CONTRACT}'")
             and finance_rows(fo, "ProjectTasks", f"ProjectId eq '{PROJECT}'"), DRAIN,
             "the project, its task and contract line in Finance")
    approve_many(dv, ids, LINES)
    unbilled = {a["msdyn_actualid"] for a in dataverse_actuals(dv, ids.project)
                if a["msdyn_transactiontypecode"] == UNBILLED}
    assert len(unbilled) == LINES
    # The invoice bills actuals applied in Finance: all of them there first, so the
    # confirmation's writes reach the sink as one transaction (none waits for an actual).
    wait_for(lambda: unbilled <= set(staged(fo)), DRAIN, f"the {LINES} unbilled-sales actuals in staging")

    invoice = confirm_proforma(dv, ids.order, INVOICE)
    billed = {a["msdyn_actualid"] for a in dataverse_actuals(dv, ids.project)
              if a["msdyn_transactiontypecode"] == BILLED}
    connections = {c["msdyn_transactionconnectionid"]: c["msdyn_transaction2"]
                   for c in dv.get_all("msdyn_transactionconnections")
                   if c["msdyn_transaction2"] in billed}
    assert len(billed) == len(connections) == LINES

    # Everything lands: the header, every billed actual, every original -> billed relationship.
    (header,) = wait_for(lambda: finance_rows(fo, "InvoiceProposals", f"InvoiceProposalId eq '{INVOICE}'"),
                         DRAIN, "the invoice proposal in Finance")
    rows = wait_for(lambda: (lambda got: got if billed <= set(got) else None)(staged(fo)), DRAIN,
                    f"the {LINES} billed-sales actuals in staging")
    relationships = wait_for(
        lambda: (lambda got: got if set(connections) <= set(got) else None)(
            {r["ConnectionId"]: r for r in fo.get_all("TransactionRelationships", {"cross-company": "true"})}),
        DRAIN, f"the {LINES} relationships in Finance")
    assert (header["SourceInvoiceId"], header["ProjectContractId"]) == (invoice, CONTRACT)
    assert {(rows[b]["TransType"], rows[b]["InvoiceId"]) for b in billed} == {("BilledSales", invoice)}
    assert {relationships[c]["Transaction2Id"] for c in connections} == billed
    assert set(relationships) == set(connections)  # the reversals' connections never go

    # In order, by Finance's own versions: the header after every unbilled-sales actual it
    # bills, before every billed-sales actual that waits for it.
    assert max(rows[u]["RecVersion"] for u in unbilled) < header["RecVersion"] < \
        min(rows[b]["RecVersion"] for b in billed)

    # In change sets of at most the cap, header first: each change set is one Finance
    # transaction (one txid in its feed). The billed actuals follow the header's ack and the
    # connections both actuals' acks, so the 3,001 writes come in several change sets (the
    # header's own, then the billed actuals', then the connections'), none above the cap.
    ours = [e for e in feed(fo) if e["key"].get("InvoiceProposalId") == INVOICE
            or e["key"].get("ActualId") in billed or e["key"].get("ConnectionId") in connections]
    by_tx: dict[str, list[dict[str, Any]]] = {}
    for entry in sorted(ours, key=lambda e: int(e["version"])):
        by_tx.setdefault(entry["txid"], []).append(entry)
    parts = list(by_tx.values())
    writes = 1 + 2 * LINES
    assert sum(len(p) for p in parts) == writes and max(len(p) for p in parts) <= CAP, [len(p) for p in parts]
    assert len(parts) >= math.ceil(writes / CAP) > 1
    assert parts[0][0]["entity"] == "InvoiceProposals"
    # No request to Finance was refused as too large (or anything else): no dead letters.
    assert dead_letters(stack) == []
