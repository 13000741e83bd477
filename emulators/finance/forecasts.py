"""Estimates: FO derives project forecasts from the estimate staging rows dual-write writes.

Run synchronously with every write to a staging row (same transaction, same txid), as FO's
entity logic does when the row is saved:

- ``HourEstimateStaging`` (ProjCDSEstimateHoursImport) -> one ``HourForecasts`` row
  (ProjForecastEmpl) per staging row, ``TransId`` = ``SourceId``; prices are per hour
  (planned amount / duration). Deleting the staging row deletes the forecast.
- ``ExpenseEstimateStaging`` (ProjCDSEstimateExpenseImport) -> ``ExpenseForecasts``
  (ProjForecastCost), and ``MaterialEstimateStaging`` (ProjForecastSalesImport) ->
  ``ItemForecasts`` (ForecastSales). Dataverse keeps the cost and the sales estimate as two
  lines; FO merges the pair into ONE forecast. The pair is recognised by project, task,
  transaction category and document date, and for material also by item [inf: the FO pairing
  rule is not published]; the forecast's ``TransId`` is derived from that pair key, so a line
  arriving later merges into the same forecast, and a line leaving the pair (deleted, or moved
  to another date) re-derives it from the line left, or deletes it when none is. One pairing
  (`_Pairing`) serves both; only the forecast's fields differ. An item forecast's sales unit is
  the line's unit, or else the released product's sales unit (FO defaults it from the item).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from emulators.finance import tables
from emulators.finance.entities import entity_named
from emulators.finance.writer import Row, Writer

__all__ = ["expense_pair_id", "item_pair_id", "sync_expense_forecast", "sync_hour_forecast",
           "sync_item_forecast"]


def _per_hour(amount: object, hours: object) -> float:
    h = float(hours or 0.0)  # type: ignore[arg-type]
    return round(float(amount or 0.0) / h, 4) if h else 0.0  # type: ignore[arg-type]


def sync_hour_forecast(writer: Writer, before: Row | None, after: Row | None) -> None:
    forecasts = entity_named("HourForecasts")
    source = after or before
    assert source is not None
    key = {"dataAreaId": source["dataAreaId"], "TransId": source["SourceId"]}
    existing = writer.get(forecasts, key)
    if after is None:
        if existing is not None:
            writer.delete(forecasts, key)
        return
    values = {"ProjectId": after["ProjectId"], "ActivityNumber": after["TaskId"],
              "ResourceId": after["ResourceId"], "Hours": after["Duration"],
              "CostPrice": _per_hour(after["PlannedCostAmount"], after["Duration"]),
              "SalesPrice": _per_hour(after["PlannedSalesAmount"], after["Duration"]),
              "CurrencyCode": after["SalesCurrency"], "ModelId": after["ForecastModel"],
              "SchedFromDate": after["StartDate"]}
    if existing is None:
        writer.insert(forecasts, {**key, **values})
    else:
        writer.update(forecasts, key, values)


# The forecast's own fields, from (writer, the pair's first line, its cost line, its sales line).
_Values = Callable[[Writer, Row, Row | None, Row | None], dict[str, object]]


@dataclass(frozen=True)
class _Pairing:
    """A staging entity whose cost and sales lines FO merges into one row of ``forecast``."""

    staging: str
    forecast: str
    fields: tuple[str, ...]  # equal in both lines of a pair
    prefix: str  # of the forecast's TransId
    values: _Values

    def pair_id(self, row: Row) -> str:
        """The forecast TransId shared by a cost line and its sales line (pure)."""
        text = "|".join(str(row.get(f) or "") for f in self.fields)
        return self.prefix + hashlib.sha1(text.encode()).hexdigest()[:12].upper()

    def sync(self, writer: Writer, before: Row | None, after: Row | None) -> None:
        """Re-derive the forecast of the pair the line left and of the pair it joined."""
        groups = {self.pair_id(r): r for r in (before, after) if r is not None}
        for sample in groups.values():
            self._rebuild(writer, sample)

    def _rebuild(self, writer: Writer, sample: Row) -> None:
        forecasts = entity_named(self.forecast)
        where = " AND ".join(f'"{f}" IS ?' for f in self.fields)
        lines = tables.select(writer.conn, entity_named(self.staging), where,
                              [sample.get(f) for f in self.fields])
        key = {"dataAreaId": sample["dataAreaId"], "TransId": self.pair_id(sample)}
        existing = writer.get(forecasts, key)
        if not lines:
            if existing is not None:
                writer.delete(forecasts, key)
            return
        cost = next((r for r in lines if r["TransType"] == "Cost"), None)
        sales = next((r for r in lines if r["TransType"] != "Cost"), None)
        first = cost or sales
        assert first is not None
        values = {"ProjectId": first["ProjectId"], "ActivityNumber": first["TaskId"],
                  "CategoryId": first["TransactionCategory"], "Qty": first["Quantity"],
                  "CostPrice": cost["Price"] if cost else 0.0,
                  "SalesPrice": sales["Price"] if sales else 0.0,
                  "CurrencyCode": first["CurrencyId"], "ModelId": first["ModelId"],
                  "TransDate": first["DocumentDate"],
                  "CostEstimateLineId": cost["EstimateLineId"] if cost else None,
                  "SalesEstimateLineId": sales["EstimateLineId"] if sales else None,
                  **self.values(writer, first, cost, sales)}
        if existing is None:
            writer.insert(forecasts, {**key, **values})
        else:
            writer.update(forecasts, key, values)


def _nothing_more(writer: Writer, first: Row, cost: Row | None, sales: Row | None) -> dict[str, object]:
    return {}


def _item(writer: Writer, first: Row, cost: Row | None, sales: Row | None) -> dict[str, object]:
    unit = first.get("Unit")
    if not unit:
        product = writer.get(entity_named("ReleasedProductsV2"),
                             {"dataAreaId": first["dataAreaId"], "ItemNumber": first["ItemId"]})
        unit = product["SalesUnitSymbol"] if product is not None else None
    return {"ItemId": first["ItemId"], "SalesUnit": unit}


_PAIR_FIELDS = ("dataAreaId", "ProjectId", "TaskId", "TransactionCategory", "DocumentDate")
_EXPENSE = _Pairing("ExpenseEstimateStaging", "ExpenseForecasts", _PAIR_FIELDS, "EF-", _nothing_more)
_ITEM = _Pairing("MaterialEstimateStaging", "ItemForecasts", (*_PAIR_FIELDS, "ItemId"), "IF-", _item)

expense_pair_id = _EXPENSE.pair_id
item_pair_id = _ITEM.pair_id
sync_expense_forecast = _EXPENSE.sync
sync_item_forecast = _ITEM.sync
