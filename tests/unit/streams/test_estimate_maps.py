"""The estimate maps (domain.md 1.2 "Labor", "Expense", "Material", 1.7): a realistic resource
assignment becomes the expected hour estimate staging row and waits for its project and task in
Finance; an expense or material estimate line waits for its partner line, and the two maps split
the estimate lines by transaction class, each line in exactly one of them."""

from __future__ import annotations

from typing import Any

import pytest

from streams.maps import default_registry, key_fact, present_fact, row_fact
from streams.maps.estimates import EXPENSE_ESTIMATES, HOUR_ESTIMATES, MATERIAL_ESTIMATES
from streams.pending import Drop, Emit, Need, Pending, Step, plan
from streams.transform import Mapped, NeedFacts, TransformError, transform
from tests.unit.streams import rows
from topics import CommandSource, target_key

pytestmark = pytest.mark.unit

MAPS = default_registry()
ASSIGNMENT = "ra-guid-1"
TASK = "t-guid-1"
RESOURCE = "br-guid-1"
PROJECT_KEY: dict[str, Any] = {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}
TASK_KEY: dict[str, Any] = {**PROJECT_KEY, "Task": "1.2"}
TASK_KEY_FACT = key_fact("project_tasks", TASK)
TASK_PRESENT = present_fact(target_key("ProjectTasks", TASK_KEY))
LOOKUPS: dict[str, dict[str, Any]] = {rows.PROJECT_KEY_FACT: PROJECT_KEY, TASK_KEY_FACT: TASK_KEY}


def assignment(**extra: Any) -> dict[str, Any]:
    return {"msdyn_resourceassignmentid": ASSIGNMENT, "_msdyn_projectid_value": rows.PROJECT,
            "_msdyn_taskid_value": TASK, "_msdyn_bookableresourceid_value": RESOURCE,
            "_msdyn_resourcecategory_value": "brc-guid-1", "msdyn_hours": 40.0,
            "msdyn_plannedcost": 4000.0, "msdyn_plannedsales": 6000.0,
            "msdyn_scheduledstart": "2026-03-02T00:00:00Z", "msdyn_scheduledend": "2026-03-06",
            "transactioncurrencyid": "USD", **extra}


def walk(item: Pending, facts: dict[str, dict[str, Any]]) -> tuple[list[str], Step]:
    return rows.walk(item, facts, MAPS)


def pending(row: dict[str, Any]) -> Pending:
    source = CommandSource(system="dataverse", table="msdyn_resourceassignments", id=ASSIGNMENT,
                           version=5, ts_ms=1_000)
    return Pending(id=f"hour_estimates:{ASSIGNMENT}:5", map="hour_estimates", op="upsert",
                   row=row, source=source, born_ms=0)


def test_a_resource_assignment_becomes_an_hour_estimate_staging_row() -> None:
    assert transform(HOUR_ESTIMATES, assignment(), {}) == NeedFacts((rows.PROJECT_KEY_FACT, TASK_KEY_FACT))
    out = transform(HOUR_ESTIMATES, assignment(), LOOKUPS)
    assert isinstance(out, Mapped)
    assert out.record_key == f"HourEstimateStaging(SourceId='{ASSIGNMENT}',dataAreaId='usmf')"
    assert out.fields == {"dataAreaId": "usmf", "SourceId": ASSIGNMENT, "ProjectId": "PRJ-1",
                          "TaskId": "1.2", "ResourceId": RESOURCE, "Duration": 40.0,
                          "PlannedCostAmount": 4000.0, "PlannedSalesAmount": 6000.0,
                          "SalesCurrency": "USD", "StartDate": "2026-03-02"}


def test_an_hour_estimate_waits_for_its_project_and_task_in_finance() -> None:
    facts = {**LOOKUPS, rows.PROJECT_PRESENT: {"target_id": "1"}}
    waited, step = walk(pending(assignment()), facts)
    assert waited == [rows.PROJECT_KEY_FACT, TASK_KEY_FACT, rows.PROJECT_PRESENT]
    assert step == Need(TASK_PRESENT)
    waited, step = walk(pending(assignment()), {**facts, TASK_PRESENT: {"target_id": "2"}})
    assert isinstance(step, Emit)
    assert step.publish == ((key_fact("hour_estimates", ASSIGNMENT),
                             {"dataAreaId": "usmf", "SourceId": ASSIGNMENT}),)


def test_a_project_level_estimate_waits_for_its_project_only() -> None:
    waited, step = walk(pending(assignment(_msdyn_taskid_value=None)),
                        {**LOOKUPS, rows.PROJECT_PRESENT: {"target_id": "1"}})
    assert waited == [rows.PROJECT_KEY_FACT, rows.PROJECT_PRESENT]
    assert isinstance(step, Emit) and step.mapped.fields["TaskId"] is None


def test_an_estimate_without_a_project_is_refused() -> None:
    with pytest.raises(TransformError, match="dataAreaId"):
        transform(HOUR_ESTIMATES, assignment(_msdyn_projectid_value=None), LOOKUPS)


def test_the_default_registry_captures_resource_assignments() -> None:
    registry = default_registry()
    dataverse = {ep.table: ep for ep in registry.captured("dataverse")}
    assert dataverse["msdyn_resourceassignments"].primary_key == "msdyn_resourceassignmentid"
    finance = {ep.table: ep for ep in registry.captured("finance")}
    assert finance["HourEstimateStaging"].company == "dataAreaId"
    assert HOUR_ESTIMATES.direction == "to_finance" and not HOUR_ESTIMATES.two_way


# -- expense estimates: a cost line and its sales line, written together ----------------------
CATEGORY = "tc-guid-1"
CATEGORY_KEY_FACT = key_fact("transaction_categories", CATEGORY)
CATEGORY_PRESENT = present_fact(target_key("TransactionCategories", {"CategoryId": "TCN-1"}))
LINE_FACTS: dict[str, dict[str, Any]] = {
    **LOOKUPS, CATEGORY_KEY_FACT: {"CategoryId": "TCN-1"}, rows.PROJECT_PRESENT: {"target_id": "1"},
    TASK_PRESENT: {"target_id": "2"}, CATEGORY_PRESENT: {"target_id": "3"}}
PAIR = ("ExpenseEstimateStaging(DocumentDate='2026-03-02',ProjectId='PRJ-1',TaskId='1.2',"
        "TransactionCategory='TCN-1',dataAreaId='usmf')")


def line(line_id: str, type_code: int, price: float, map_name: str = "expense_estimates",
         **extra: Any) -> Pending:
    row = {"msdyn_estimatelineid": line_id, "_msdyn_project_value": rows.PROJECT, "_msdyn_task_value": TASK,
           "_msdyn_transactioncategory_value": CATEGORY, "msdyn_transactionclassification": 192350001,
           "msdyn_transactiontypecode": type_code, "msdyn_billingtype": 192350001, "msdyn_quantity": 2.0,
           "msdyn_price": price, "msdyn_documentdate": "2026-03-02", "transactioncurrencyid": "USD", **extra}
    source = CommandSource(system="dataverse", table="msdyn_estimatelines", id=line_id, version=7, ts_ms=1)
    return Pending(id=f"{map_name}:{line_id}:7", map=map_name, op="upsert", row=row,
                   source=source, born_ms=0)


def test_an_expense_line_waits_for_its_partner_and_announces_its_own_half() -> None:
    _, step = walk(line("cost-1", 192350000, 80.0), LINE_FACTS)
    assert step == Need(f"partner:expense_estimates:{PAIR}:Sales",
                        announce=(f"partner:expense_estimates:{PAIR}:Cost", {"id": "cost-1"}))


def test_with_its_partner_known_a_line_is_written_and_makes_its_own_half_known() -> None:
    facts = {**LINE_FACTS, f"partner:expense_estimates:{PAIR}:Cost": {"id": "cost-1"}}
    _, step = walk(line("sales-1", 192350005, 120.0), facts)
    assert isinstance(step, Emit)
    assert step.mapped.fields == {
        "dataAreaId": "usmf", "EstimateLineId": "sales-1", "ProjectId": "PRJ-1", "TaskId": "1.2",
        "TransType": "Sales", "BillingType": "Chargeable", "TransactionCategory": "TCN-1", "Quantity": 2.0,
        "Price": 120.0, "CurrencyId": "USD", "DocumentDate": "2026-03-02"}
    assert (f"partner:expense_estimates:{PAIR}:Sales", {"id": "sales-1"}) in step.publish


def test_material_and_time_lines_are_not_expense_estimates() -> None:
    for other_class in (192350000, 192350002):
        step = plan(line("m-1", 192350000, 5.0, msdyn_transactionclassification=other_class), MAPS)
        assert step.__class__.__name__ == "Drop"


def test_a_line_of_neither_half_is_refused() -> None:
    with pytest.raises(TransformError, match="no value map entry"):
        walk(line("x-1", 192350006, 5.0), LINE_FACTS)


# -- material estimates: the same pairing, plus the released product ---------------------------
PRODUCT = "prod-guid-1"
PRODUCT_ROW_FACT = row_fact("dataverse", "products", PRODUCT)
PRODUCT_PRESENT = present_fact(target_key("ReleasedProductsV2", {"dataAreaId": "usmf", "ItemNumber": "D0001"}))
MATERIAL_PAIR = ("MaterialEstimateStaging(DocumentDate='2026-03-02',ItemId='D0001',ProjectId='PRJ-1',"
                 "TaskId='1.2',TransactionCategory='TCN-1',dataAreaId='usmf')")
CLASSES = {"Time": 192350000, "Expense": 192350001, "Material": 192350002, "Milestone": 192350003,
           "Fee": 192350004}


def material(line_id: str, type_code: int, price: float) -> Pending:
    return line(line_id, type_code, price, "material_estimates", _msdyn_product_value=PRODUCT,
                msdyn_transactionclassification=CLASSES["Material"])


def test_the_expense_and_material_filters_split_the_estimate_lines_by_class() -> None:
    readers = MAPS.sourced_from("dataverse", "msdyn_estimatelines")
    assert [m.name for m in readers] == ["expense_estimates", "material_estimates"]
    taken = {name: [m.name for m in readers if m.passes({"msdyn_transactionclassification": value})]
             for name, value in CLASSES.items()}
    assert taken == {"Time": [], "Expense": ["expense_estimates"], "Material": ["material_estimates"],
                     "Milestone": [], "Fee": []}


def test_an_expense_line_is_no_material_estimate() -> None:
    step = plan(line("e-1", 192350000, 5.0, "material_estimates", _msdyn_product_value=PRODUCT), MAPS)
    assert isinstance(step, Drop)


def test_a_material_line_waits_for_its_product_released_in_the_projects_company_then_its_partner() -> None:
    facts = {**LINE_FACTS, PRODUCT_ROW_FACT: {"msdyn_itemnumber": "D0001"}}
    waited, step = walk(material("mcost-1", 192350000, 11.5), facts)
    assert PRODUCT_ROW_FACT in waited and step == Need(PRODUCT_PRESENT)
    _, step = walk(material("mcost-1", 192350000, 11.5), {**facts, PRODUCT_PRESENT: {"target_id": "9"}})
    assert step == Need(f"partner:material_estimates:{MATERIAL_PAIR}:Sales",
                        announce=(f"partner:material_estimates:{MATERIAL_PAIR}:Cost", {"id": "mcost-1"}))


def test_a_material_pair_becomes_one_staging_row_per_line_with_the_item() -> None:
    facts = {**LINE_FACTS, PRODUCT_ROW_FACT: {"msdyn_itemnumber": "D0001"}, PRODUCT_PRESENT: {"target_id": "9"},
             f"partner:material_estimates:{MATERIAL_PAIR}:Cost": {"id": "mcost-1"},
             f"partner:material_estimates:{MATERIAL_PAIR}:Sales": {"id": "msales-1"}}
    written = {}
    for line_id, code, price in (("mcost-1", 192350000, 11.5), ("msales-1", 192350005, 25.0)):
        _, step = walk(material(line_id, code, price), facts)
        assert isinstance(step, Emit)
        written[step.mapped.record_key] = step.mapped.fields
    common = {"dataAreaId": "usmf", "ProjectId": "PRJ-1", "TaskId": "1.2", "BillingType": "Chargeable",
              "TransactionCategory": "TCN-1", "ItemId": "D0001", "Quantity": 2.0, "CurrencyId": "USD",
              "DocumentDate": "2026-03-02"}
    assert written == {
        "MaterialEstimateStaging(EstimateLineId='mcost-1',dataAreaId='usmf')": {
            **common, "EstimateLineId": "mcost-1", "TransType": "Cost", "Price": 11.5},
        "MaterialEstimateStaging(EstimateLineId='msales-1',dataAreaId='usmf')": {
            **common, "EstimateLineId": "msales-1", "TransType": "Sales", "Price": 25.0}}


def test_the_two_line_maps_differ_only_in_what_material_adds() -> None:
    def fields(m: Any) -> set[str]:
        return {f.target for f in m.fields}
    assert fields(MATERIAL_ESTIMATES) - fields(EXPENSE_ESTIMATES) == {"ItemId"}
    assert fields(EXPENSE_ESTIMATES) <= fields(MATERIAL_ESTIMATES)
    assert MATERIAL_ESTIMATES.partner is not None and EXPENSE_ESTIMATES.partner is not None
    assert set(MATERIAL_ESTIMATES.partner.match) - set(EXPENSE_ESTIMATES.partner.match) == {"ItemId"}
    registry = default_registry()
    assert registry.presence_keys("finance", "ReleasedProductsV2") == [("ItemNumber", "dataAreaId")]
    assert registry.indexed("dataverse", "products") == ("msdyn_itemnumber",)
