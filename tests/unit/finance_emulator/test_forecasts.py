"""FO's entity logic on estimate staging rows, over an in-memory SQLite database: a material
estimate's cost and sales lines become ONE item forecast (``ItemForecasts``), as an expense
pair becomes one expense forecast, through the same pairing (domain.md 1.2 "Material", 5.2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.common.errors import ODataError
from emulators.common.store import Store
from emulators.finance import hooks, tables
from emulators.finance.entities import entity_named
from emulators.finance.forecasts import expense_pair_id, item_pair_id
from emulators.finance.writer import IMAGES_DDL, Row, Writer

pytestmark = pytest.mark.unit

MATERIAL = entity_named("MaterialEstimateStaging")
EXPENSE = entity_named("ExpenseEstimateStaging")
PAIR: dict[str, Any] = {"dataAreaId": "usmf", "ProjectId": "PRJ-1", "TaskId": "1.2",
                        "TransactionCategory": "TCN-1", "BillingType": "Chargeable", "Quantity": 3.0,
                        "CurrencyId": "USD", "DocumentDate": "2026-04-01"}


@pytest.fixture
def writer() -> Iterator[Writer]:
    store = Store(Path(":memory:"))
    store.conn.executescript(IMAGES_DDL)
    tables.create_tables(store.conn)
    writer = Writer(store, clock_ms=lambda: 1_000)
    with store.transaction("seed"):
        writer.insert(entity_named("LegalEntities"), {"dataAreaId": "usmf", "AccountingCurrency": "USD"})
        writer.insert(entity_named("Units"), {"UnitSymbol": "ea"})
        writer.insert(entity_named("ProjectsV2"), {"dataAreaId": "usmf", "ProjectId": "PRJ-1"})
        for item in ("D0001", "D0002"):
            writer.insert(entity_named("ReleasedProductsV2"), {
                "dataAreaId": "usmf", "ItemNumber": item, "SalesUnitSymbol": "ea"})
    yield writer
    store.close()


def save(writer: Writer, values: Row, ent: Any = MATERIAL) -> Row:
    """Create a staging row as an OData POST does: the row, then FO's logic on it."""
    with writer.store.transaction("dual-write"):
        row = writer.insert(ent, values)
        hooks.after_write(writer, ent, None, row)
    return row


def change(writer: Writer, row: Row, changes: Row) -> Row:
    key = {"dataAreaId": row["dataAreaId"], "EstimateLineId": row["EstimateLineId"]}
    with writer.store.transaction("dual-write"):
        after = writer.update(MATERIAL, key, changes)
        hooks.after_write(writer, MATERIAL, row, after)
    return after


def item_forecasts(writer: Writer) -> list[Row]:
    return tables.select(writer.conn, entity_named("ItemForecasts"), "1 = 1", [])


def material(line_id: str, trans_type: str, price: float, **extra: Any) -> Row:
    return {**PAIR, "EstimateLineId": line_id, "ItemId": "D0001", "TransType": trans_type,
            "Price": price, **extra}


def test_a_material_cost_and_sales_pair_is_one_item_forecast(writer: Writer) -> None:
    cost = save(writer, material("cost-1", "Cost", 11.5))
    save(writer, material("sales-1", "Sales", 25.0))
    (forecast,) = item_forecasts(writer)
    assert forecast["TransId"] == item_pair_id(cost)
    assert {k: forecast[k] for k in ("ProjectId", "ActivityNumber", "CategoryId", "ItemId", "Qty",
                                     "CostPrice", "SalesPrice", "CurrencyCode",
                                     "CostEstimateLineId", "SalesEstimateLineId")} == {
        "ProjectId": "PRJ-1", "ActivityNumber": "1.2", "CategoryId": "TCN-1", "ItemId": "D0001",
        "Qty": 3.0, "CostPrice": 11.5, "SalesPrice": 25.0, "CurrencyCode": "USD",
        "CostEstimateLineId": "cost-1", "SalesEstimateLineId": "sales-1"}
    # No unit on the lines: FO defaults the item's sales unit.
    assert forecast["SalesUnit"] == "ea"


def test_lines_of_two_items_are_two_forecasts_and_a_line_moved_away_rebuilds_both(writer: Writer) -> None:
    save(writer, material("cost-1", "Cost", 11.5))
    sales = save(writer, material("sales-1", "Sales", 25.0))
    save(writer, material("cost-2", "Cost", 9.0, ItemId="D0002", Unit="ea"))
    assert sorted((f["ItemId"], f["CostEstimateLineId"], f["SalesEstimateLineId"])
                  for f in item_forecasts(writer)) == [("D0001", "cost-1", "sales-1"), ("D0002", "cost-2", None)]
    change(writer, sales, {"ItemId": "D0002"})
    assert sorted((f["ItemId"], f["CostEstimateLineId"], f["SalesEstimateLineId"], f["SalesPrice"])
                  for f in item_forecasts(writer)) == [("D0001", "cost-1", None, 0.0),
                                                       ("D0002", "cost-2", "sales-1", 25.0)]


def test_material_lines_make_no_expense_forecast_and_expense_pairs_are_unchanged(writer: Writer) -> None:
    save(writer, material("cost-1", "Cost", 11.5))
    expense = save(writer, {**PAIR, "EstimateLineId": "exp-1", "TransType": "Cost", "Price": 200.0}, EXPENSE)
    (forecast,) = tables.select(writer.conn, entity_named("ExpenseForecasts"), "1 = 1", [])
    assert forecast["TransId"] == expense_pair_id(expense) and forecast["CostEstimateLineId"] == "exp-1"
    assert [f["CostEstimateLineId"] for f in item_forecasts(writer)] == ["cost-1"]


def test_a_material_line_naming_no_released_item_is_refused_and_makes_no_forecast(writer: Writer) -> None:
    for item, reason in ((None, "Field 'ItemId' must be filled in"), ("X-404", "not found in the relating table")):
        with pytest.raises(ODataError, match=reason) as refused:
            save(writer, material("cost-1", "Cost", 11.5, ItemId=item))
        assert refused.value.status == 400
    assert item_forecasts(writer) == []
