"""The invoices map and its document rule (domain.md 1.3): a confirmed proforma invoice is written
after its contract, its funding source and every unbilled-sales actual it bills; in the
confirmation's change set it comes first, before the billed-sales actuals that wait for it."""

from __future__ import annotations

from typing import Any

import pytest

from streams.config import StreamsConfig
from streams.effects import GateSend
from streams.factview import KNOWN, FactView
from streams.handlers import Context, Position, on_pending
from streams.maps import default_registry, key_fact, present_fact
from streams.pending import Emit, Pending, billed_by, change_set_order
from streams.wire import PendingMsg
from tests.unit.streams import rows
from topics import CommandSource, target_key

pytestmark = pytest.mark.unit

MAPS = default_registry()
INVOICE, ORDER, ORIGINAL, BILLED, REVERSAL = "inv-1", "so-1", "act-orig", "act-billed", "act-rev"
CONTRACT_KEY = {"dataAreaId": "usmf", "ProjectContractId": "PC-1"}
FACTS: dict[str, dict[str, Any]] = {
    key_fact("contract_headers", ORDER): CONTRACT_KEY,
    rows.ACCOUNT_FACT: {"accountnumber": "US-001"},
    present_fact(target_key("ProjectContractHeaders", CONTRACT_KEY)): {"target_id": "1"},
    present_fact(target_key("ProjectFundingSources", {"dataAreaId": "usmf", "ProjectContractID": "PC-1",
                                                      "FundingSourceId": "US-001"})): {"target_id": "2"},
}
ORIGINAL_KEY = {"ProjectDataAreaId": "usmf", "ActualId": ORIGINAL}


def change(map_name: str, table: str, record_id: str, order: int, **row: Any) -> Pending:
    source = CommandSource(system="dataverse", table=table, id=record_id, version=9, ts_ms=1, txid="tx1")
    return Pending(id=f"{map_name}:{record_id}:9", map=map_name, op="upsert", row=row, source=source,
                   tx_total=4, tx_order=order, born_ms=0)


def invoice(**extra: Any) -> Pending:
    row = {"invoiceid": INVOICE, "invoicenumber": "INV-1", "name": "Proforma", "statuscode": 100001,
           "_salesorderid_value": ORDER, "_customerid_value": rows.ACCOUNT, "msdyn_invoicedate": "2026-12-01",
           "transactioncurrencyid": "USD", **extra}
    return change("invoices", "invoices", INVOICE, 4, **row)


def connection(record_id: str, second: str, role: int, order: int) -> Pending:
    return change("transaction_relationships", "msdyn_transactionconnections", record_id, order,
                  msdyn_transactionconnectionid=record_id, msdyn_transaction1=ORIGINAL, msdyn_transaction2=second,
                  msdyn_transaction2role=role)


def test_the_confirmation_s_billed_connections_name_what_the_invoice_bills() -> None:
    members = [connection("c-rev", REVERSAL, 192350001, 2), connection("c-billed", BILLED, 192350002, 3)]
    assert billed_by(invoice(), [*members, invoice()], MAPS) == (ORIGINAL,)
    assert billed_by(members[0], members, MAPS) == ()  # no document: bills nothing


def test_the_invoice_waits_for_each_billed_actual_in_staging_then_is_written() -> None:
    waited, step = rows.walk(invoice().model_copy(update={"after": (ORIGINAL,), "tx_members": ("x",)}),
                             {**FACTS, key_fact("actuals", ORIGINAL): ORIGINAL_KEY}, MAPS)
    assert waited[-1] == key_fact("actuals", ORIGINAL)
    assert step.key == present_fact(target_key("ActualsStaging", ORIGINAL_KEY))  # type: ignore[union-attr]
    present = present_fact(target_key("ActualsStaging", ORIGINAL_KEY))
    _, step = rows.walk(invoice().model_copy(update={"after": (ORIGINAL,), "tx_members": ("x",)}),
                        {**FACTS, key_fact("actuals", ORIGINAL): ORIGINAL_KEY, present: {"target_id": "7"}}, MAPS)
    assert isinstance(step, Emit)
    assert step.mapped.fields == {"dataAreaId": "usmf", "InvoiceProposalId": "INV-1", "SourceInvoiceId": INVOICE,
                                  "ProjectContractId": "PC-1", "FundingSourceId": "US-001",
                                  "InvoiceDate": "2026-12-01", "SalesCurrency": "USD",
                                  "InvoiceHeaderText": "Proforma"}


def test_in_the_change_set_the_invoice_comes_before_the_actual_that_references_it() -> None:
    billed = change("actuals", "msdyn_actuals", BILLED, 1, msdyn_actualid=BILLED, _msdyn_invoice_value=INVOICE)
    link = connection("c-billed", BILLED, 192350002, 3)
    ordered = change_set_order([billed, link, invoice()], MAPS)
    assert [p.source.id for p in ordered] == [INVOICE, BILLED, "c-billed"]


def test_a_draft_invoice_is_not_written() -> None:
    _, step = rows.walk(invoice(statuscode=1).model_copy(update={"tx_members": ()}), FACTS, MAPS)
    assert step.__class__.__name__ == "Drop"


def test_deletes_keep_the_source_s_children_first_order() -> None:
    """A line's delete names its contract in its image; the contract's delete must not jump ahead."""
    def gone(map_name: str, table: str, record_id: str, order: int, **row: Any) -> Pending:
        return change(map_name, table, record_id, order, **row).model_copy(update={"op": "delete"})

    line = gone("contract_lines", "salesorderdetails", "line-1", 1, _salesorderid_value=ORDER)
    contract = gone("contract_headers", "salesorders", ORDER, 2)
    assert [p.source.id for p in change_set_order([line, contract], MAPS)] == ["line-1", ORDER]


def test_a_large_confirmation_orders_its_invoice_first_and_keeps_the_rest_in_source_order() -> None:
    billed = [change("actuals", "msdyn_actuals", f"b-{n}", n + 1, msdyn_actualid=f"b-{n}",
                     _msdyn_invoice_value=INVOICE) for n in range(3000)]
    ordered = change_set_order([*billed, invoice().model_copy(update={"tx_order": 3001})], MAPS)
    assert [p.source.id for p in ordered] == [INVOICE, *(f"b-{n}" for n in range(3000))]


def test_a_reference_cycle_falls_back_to_the_source_s_order() -> None:
    first = change("project_tasks", "msdyn_projecttasks", "t-1", 1, _msdyn_parenttask_value="t-2",
                   _msdyn_project_value="p")
    second = change("project_tasks", "msdyn_projecttasks", "t-2", 2, _msdyn_parenttask_value="t-1",
                    _msdyn_project_value="p")
    assert [p.source.id for p in change_set_order([second, first], MAPS)] == ["t-1", "t-2"]


def test_a_released_invoice_collects_the_billed_actuals_facts_this_worker_knows_without_a_hop() -> None:
    """A confirmation of 1,500 lines walked two gate hops per billed actual (its key, then its
    presence in staging): about 70 s. Facts the worker's view knows are collected in place."""
    billed = tuple(f"act-{i}" for i in range(50))
    keys = {a: {"ProjectDataAreaId": "usmf", "ActualId": a} for a in billed}
    view = FactView()
    for fact, value in FACTS.items():
        view.learn(fact, value, None)
    for a, key in keys.items():
        view.learn(key_fact("actuals", a), key, 3)
        view.learn(present_fact(target_key("ActualsStaging", key)), {"target_id": a}, None)
    item = invoice().model_copy(update={"after": billed, "tx_members": ("x",)})
    here = Position(key="tx:dataverse:tx1", partition=0, offset=5, now_ms=1_000)
    context = Context(maps=MAPS, config=StreamsConfig(), gate_topic="unit-gate")

    def sends(state: dict[str, Any]) -> list[str]:
        return [e.key for e in on_pending(PendingMsg(item=item), here, state, context) if isinstance(e, GateSend)]

    emit_key = present_fact(target_key("InvoiceProposals", {"dataAreaId": "usmf", "InvoiceProposalId": "INV-1"}))
    assert sends({KNOWN: view}) == [emit_key]  # one hop: to its emit
    view.forget(present_fact(target_key("ActualsStaging", keys["act-7"])))
    assert sends({KNOWN: view}) == [present_fact(target_key("ActualsStaging", keys["act-7"]))]
    assert sends({}) == [key_fact("contract_headers", ORDER)]  # nothing known: the hop of before
