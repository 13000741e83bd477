"""The actuals and transaction relationship maps (Dataverse -> Finance staging): a realistic
approved-time actual with the facts its lookups name becomes the expected staging row, Skip
Sync rows never become one, and each change waits for the Finance rows it references
(domain.md 1.2, 1.7)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.maps import MapRegistry, TableMap, default_registry, key_fact, present_fact, row_fact
from streams.maps.actuals import ACTUAL_MAPS, ACTUALS, TRANSACTION_RELATIONSHIPS
from streams.pending import Drop, Emit, Need, Pending, Step, plan
from streams.transform import Filtered, Mapped, TransformError, transform
from tests.unit.streams import rows
from topics import CommandSource, target_key

pytestmark = pytest.mark.unit

MAPS = default_registry()

ACTUAL = "ac-guid-1"
BILLED = "ac-guid-2"
CONNECTION = "tc-guid-1"
TASK, ORDER, LINE, RESOURCE, ROLE, CATEGORY, UNIT = (
    "t-guid-1", "so-guid-1", "sod-guid-1", "br-guid-1", "brc-guid-1", "cat-guid-1", "uom-guid-1")

PROJECT_KEY: dict[str, Any] = {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}
TASK_KEY: dict[str, Any] = {**PROJECT_KEY, "Task": "1.2"}
CONTRACT_KEY: dict[str, Any] = {"dataAreaId": "usmf", "ProjectContractId": "PC-0001"}
LINE_KEY: dict[str, Any] = {**CONTRACT_KEY, "ContractLineId": LINE}
RESOURCE_KEY: dict[str, Any] = {"dataAreaId": "usmf", "ResourceId": RESOURCE}
CATEGORY_KEY: dict[str, Any] = {"CategoryId": "TCN-0000001000-D3B43"}

LOOKUPS: dict[str, dict[str, Any]] = {
    rows.PROJECT_KEY_FACT: PROJECT_KEY,
    key_fact("project_tasks", TASK): TASK_KEY,
    key_fact("contract_headers", ORDER): CONTRACT_KEY,
    key_fact("contract_lines", LINE): LINE_KEY,
    key_fact("worker_resources", RESOURCE): RESOURCE_KEY,
    row_fact("dataverse", "bookableresourcecategories", ROLE): {"name": "Developer"},
    key_fact("transaction_categories", CATEGORY): CATEGORY_KEY,
    row_fact("dataverse", "uoms", UNIT): {"msdyn_symbol": "h"},
}
IN_FINANCE = [
    rows.PROJECT_PRESENT,
    present_fact(target_key("ProjectTasks", TASK_KEY)),
    present_fact(target_key("ProjectContractHeaders", CONTRACT_KEY)),
    present_fact(target_key("ProjectContractLines", LINE_KEY)),
    present_fact(target_key("ProjectWorkerResources", RESOURCE_KEY)),
    present_fact(target_key("ResourceRoles", {"dataAreaId": "usmf", "RoleId": "Developer"})),
    present_fact(target_key("TransactionCategories", CATEGORY_KEY)),
    present_fact(target_key("Units", {"UnitSymbol": "h"})),
]


def actual(**extra: Any) -> dict[str, Any]:
    """The unbilled-sales actual an approved time entry on a T&M contract line creates."""
    return {"msdyn_actualid": ACTUAL, "msdyn_transactiontypecode": 192350005,
            "msdyn_transactionclassification": 192350000, "msdyn_billingtype": 192350001,
            "msdyn_billingstatus": 192350000, "_msdyn_project_value": rows.PROJECT,
            "_msdyn_task_value": TASK, "_msdyn_salescontract_value": ORDER,
            "_msdyn_salescontractline_value": LINE, "_msdyn_bookableresource_value": RESOURCE,
            "_msdyn_resourcecategory_value": ROLE, "_msdyn_transactioncategory_value": CATEGORY,
            "_msdyn_unit_value": UNIT, "_msdyn_owningcompany_value": rows.COMPANY,
            "_msdyn_accountcustomer_value": rows.ACCOUNT, "_msdyn_invoice_value": None,
            "msdyn_documentdate": "2026-03-02", "msdyn_accountingdate": "2026-03-02T00:00:00Z",
            "msdyn_quantity": 8.0, "msdyn_price": 150.0, "msdyn_amount": 1200.0,
            "transactioncurrencyid": "USD", "msdyn_skipsync": False, "msdyn_description": "Design",
            **extra}


def connection(**extra: Any) -> dict[str, Any]:
    """The original -> billed connection a proforma confirmation creates."""
    return {"msdyn_transactionconnectionid": CONNECTION, "msdyn_transaction1": ACTUAL,
            "msdyn_transaction1role": 192350000, "msdyn_transaction1type": 192350000,
            "msdyn_transaction2": BILLED, "msdyn_transaction2role": 192350002,
            "msdyn_transaction2type": 192350000, "msdyn_transactiontypecode": 192350006, **extra}


def pending(map_name: str, row: dict[str, Any], record_id: str, **extra: Any) -> Pending:
    source = CommandSource(system="dataverse", table=MAPS[map_name].source.table, id=record_id,
                           version=5, ts_ms=1_000, txid=extra.pop("txid", None))
    return Pending(id=f"{map_name}:{record_id}:5", map=map_name, op="upsert", row=row,
                   source=source, born_ms=0, **extra)


def walk(item: Pending, facts: dict[str, dict[str, Any]]) -> tuple[list[str], Step]:
    return rows.walk(item, facts, MAPS)


def every_fact() -> dict[str, dict[str, Any]]:
    return {**LOOKUPS, **{k: {"target_id": "1"} for k in IN_FINANCE}}


def test_an_unbilled_sales_time_actual_becomes_its_staging_row() -> None:
    out = transform(ACTUALS, actual(), LOOKUPS)
    assert isinstance(out, Mapped)
    assert out.record_key == f"ActualsStaging(ActualId='{ACTUAL}',ProjectDataAreaId='usmf')"
    assert out.fields == {
        "ProjectDataAreaId": "usmf", "ActualId": ACTUAL, "TransType": "UnbilledSales",
        "TransactionClassification": "Time", "ProjectId": "PRJ-1", "TaskId": "1.2",
        "ContractId": "PC-0001", "ContractLine": LINE, "ResourceId": RESOURCE,
        "TransactionCategory": "TCN-0000001000-D3B43", "Quantity": 8.0, "UnitOfMeasure": "h",
        "UnitPrice": 150.0, "Amount": 1200.0, "TransactionCurrencyId": "USD",
        "DocumentDate": "2026-03-02", "AccountingDate": "2026-03-02", "BillingType": "Chargeable",
        "BillingStatusId": "UnbilledSalesCreated", "InvoiceId": None}


@pytest.mark.parametrize(("column", "pairs"), [
    ("msdyn_transactiontypecode", ((192350000, "Cost"), (192350005, "UnbilledSales"),
                                   (192350006, "BilledSales"))),
    ("msdyn_transactionclassification", ((192350000, "Time"), (192350001, "Expense"),
                                         (192350002, "Material"), (192350003, "Milestone"),
                                         (192350004, "Fee"))),
    ("msdyn_billingtype", ((192350000, "NonChargeable"), (192350001, "Chargeable"),
                           (192350002, "Complimentary"), (192350003, "NotAvailable"))),
])
def test_choices_become_finance_enum_values(column: str, pairs: tuple[tuple[int, str], ...]) -> None:
    target = {"msdyn_transactiontypecode": "TransType", "msdyn_billingtype": "BillingType",
              "msdyn_transactionclassification": "TransactionClassification"}[column]
    for choice, value in pairs:
        out = transform(ACTUALS, actual(**{column: choice}), LOOKUPS)
        assert isinstance(out, Mapped) and out.fields[target] == value


def test_a_transaction_type_finance_staging_has_no_type_for_is_refused_not_guessed() -> None:
    with pytest.raises(TransformError, match="TransType"):  # resourcing unit cost
        transform(ACTUALS, actual(msdyn_transactiontypecode=192350007), LOOKUPS)


@pytest.mark.parametrize("flag", [True, 1])
def test_a_skip_sync_actual_is_never_sent(flag: object) -> None:
    assert isinstance(transform(ACTUALS, actual(msdyn_skipsync=flag), LOOKUPS), Filtered)
    assert isinstance(plan(pending("actuals", actual(msdyn_skipsync=flag), ACTUAL), MAPS), Drop)


@pytest.mark.parametrize("flag", [False, 0, None])
def test_an_actual_whose_skip_sync_is_false_or_unset_is_sent(flag: object) -> None:
    assert isinstance(transform(ACTUALS, actual(msdyn_skipsync=flag), LOOKUPS), Mapped)


def test_an_actual_waits_for_every_finance_row_it_references_then_publishes_its_key() -> None:
    waited, step = walk(pending("actuals", actual(), ACTUAL), every_fact())
    assert waited == [*LOOKUPS, *IN_FINANCE]
    assert isinstance(step, Emit)
    assert step.publish == ((key_fact("actuals", ACTUAL),
                             {"ProjectDataAreaId": "usmf", "ActualId": ACTUAL}),)


def test_an_actual_without_the_optional_references_waits_only_for_the_rest() -> None:
    cost = actual(msdyn_transactiontypecode=192350000, _msdyn_task_value=None,
                  _msdyn_salescontract_value=None, _msdyn_salescontractline_value=None,
                  _msdyn_unit_value=None)
    waited, step = walk(pending("actuals", cost, ACTUAL), every_fact())
    assert waited == [rows.PROJECT_KEY_FACT, key_fact("worker_resources", RESOURCE),
                      row_fact("dataverse", "bookableresourcecategories", ROLE),
                      key_fact("transaction_categories", CATEGORY), rows.PROJECT_PRESENT,
                      IN_FINANCE[4], IN_FINANCE[5], IN_FINANCE[6]]
    assert isinstance(step, Emit)
    assert (step.mapped.fields["TaskId"], step.mapped.fields["ContractLine"],
            step.mapped.fields["UnitOfMeasure"]) == (None, None, None)


def test_an_actual_stops_at_the_first_finance_row_missing() -> None:
    facts = every_fact()
    del facts[IN_FINANCE[5]]  # the role is not in the project's company yet
    _, step = walk(pending("actuals", actual(), ACTUAL), facts)
    assert step == Need(present_fact("ResourceRoles(RoleId='Developer',dataAreaId='usmf')"))


def test_an_actual_without_a_project_is_refused() -> None:
    with pytest.raises(TransformError, match="ProjectDataAreaId"):
        transform(ACTUALS, actual(_msdyn_project_value=None), LOOKUPS)


FIRST_KEY: dict[str, Any] = {"ProjectDataAreaId": "usmf", "ActualId": ACTUAL}
SECOND_KEY: dict[str, Any] = {"ProjectDataAreaId": "usmf", "ActualId": BILLED}
ACTUAL_FACTS: dict[str, dict[str, Any]] = {key_fact("actuals", ACTUAL): FIRST_KEY,
                                           key_fact("actuals", BILLED): SECOND_KEY}
BOTH_STAGED = [present_fact(target_key("ActualsStaging", FIRST_KEY)),
               present_fact(target_key("ActualsStaging", SECOND_KEY))]


def test_a_transaction_connection_becomes_a_relationship() -> None:
    out = transform(TRANSACTION_RELATIONSHIPS, connection(), ACTUAL_FACTS)
    assert isinstance(out, Mapped)
    assert out.record_key == f"TransactionRelationships(ConnectionId='{CONNECTION}')"
    assert out.fields == {"ConnectionId": CONNECTION, "Transaction1Id": ACTUAL,
                          "Transaction1Role": "Original", "Transaction1Type": "Actual",
                          "Transaction2Id": BILLED, "Transaction2Role": "Billed",
                          "Transaction2Type": "Actual"}


def test_a_relationship_waits_until_both_actuals_are_staged() -> None:
    facts = {**ACTUAL_FACTS, BOTH_STAGED[0]: {"target_id": "1"}}
    waited, step = walk(pending("transaction_relationships", connection(), CONNECTION), facts)
    assert waited == [*ACTUAL_FACTS, BOTH_STAGED[0]]
    assert step == Need(BOTH_STAGED[1])
    waited, step = walk(pending("transaction_relationships", connection(), CONNECTION),
                        {**facts, BOTH_STAGED[1]: {"target_id": "2"}})
    assert waited == [*ACTUAL_FACTS, *BOTH_STAGED] and isinstance(step, Emit)


def test_a_relationship_to_an_actual_of_its_own_transaction_does_not_wait_for_it_in_finance() -> None:
    item = pending("transaction_relationships", connection(), CONNECTION, txid="tx-9", tx_total=2,
                   tx_members=(BILLED, CONNECTION))
    waited, step = walk(item, {**ACTUAL_FACTS, BOTH_STAGED[0]: {"target_id": "1"}})
    assert waited == [*ACTUAL_FACTS, BOTH_STAGED[0]] and isinstance(step, Emit)


def test_a_connection_to_a_skip_sync_reversal_is_not_sent() -> None:
    reversal = connection(msdyn_transaction2role=192350001, msdyn_transactiontypecode=192350005)
    assert isinstance(transform(TRANSACTION_RELATIONSHIPS, reversal, {}), Filtered)
    assert isinstance(transform(TRANSACTION_RELATIONSHIPS, connection(msdyn_transaction2=None), {}),
                      Filtered)


def test_the_default_registry_captures_the_actual_tables_with_their_keys() -> None:
    registry: MapRegistry = default_registry()
    dataverse = {ep.table: ep for ep in registry.captured("dataverse")}
    assert dataverse["msdyn_actuals"].primary_key == "msdyn_actualid"
    assert dataverse["msdyn_transactionconnections"].primary_key == "msdyn_transactionconnectionid"
    finance = {ep.table: ep for ep in registry.captured("finance")}
    assert finance["ActualsStaging"].company == "ProjectDataAreaId"
    assert finance["TransactionRelationships"].company is None
    # Units are Finance's (the units map reads them): their presence comes from their feed.
    assert registry.presence_keys("finance", "Units") == [("UnitSymbol",)]
    assert registry.indexed("dataverse", "uoms") == ("msdyn_symbol",)
    names = [m.name for m in registry.maps]
    assert names.index("actuals") > names.index("contract_lines")
    assert names.index("transaction_relationships") == names.index("actuals") + 1
    assert {m.direction for m in ACTUAL_MAPS} == {"to_finance"}


@pytest.mark.parametrize("m", ACTUAL_MAPS, ids=lambda m: m.name)
def test_every_field_and_mapped_value_fits_the_finance_entity(m: TableMap) -> None:
    """Each target field exists on the emulator's entity, and each value a value map can
    produce is one of its enum symbols and within its size (Finance refuses the whole change
    set otherwise)."""
    from emulators.finance.entities import entity_named

    entity = entity_named(m.target.table)
    for f in (*m.key, *m.fields):
        declared = entity.get(f.target)
        assert declared is not None, f.target
        for _choice, value in f.value_map:
            assert not declared.enum or value in declared.enum, (f.target, value)
            assert declared.size is None or len(str(value)) <= declared.size, (f.target, value)
