"""Estimates: FO derives project forecasts from the estimate staging rows dual-write writes.

Run synchronously with every write to a staging row (same transaction, same txid), as FO's
entity logic does when the row is saved:

- ``HourEstimateStaging`` (ProjCDSEstimateHoursImport) -> one ``HourForecasts`` row
  (ProjForecastEmpl) per staging row, ``TransId`` = ``SourceId``; prices are per hour
  (planned amount / duration). Deleting the staging row deletes the forecast.
- ``ExpenseEstimateStaging`` (ProjCDSEstimateExpenseImport) -> ``ExpenseForecasts``
  (ProjForecastCost). Dataverse keeps the cost and the sales estimate as two lines; FO merges
  the pair into ONE forecast. The pair is recognised by project, task, transaction category
  and document date [inf: the FO pairing rule is not published]; the forecast's ``TransId`` is
  derived from that pair key, so a line arriving later merges into the same forecast.
"""

from __future__ import annotations

import hashlib

from emulators.finance import tables
from emulators.finance.entities import entity_named
from emulators.finance.writer import Row, Writer

__all__ = ["expense_pair_id", "sync_expense_forecast", "sync_hour_forecast"]

_PAIR_FIELDS = ("dataAreaId", "ProjectId", "TaskId", "TransactionCategory", "DocumentDate")


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


def expense_pair_id(row: Row) -> str:
    """The forecast TransId shared by a cost line and its sales line (pure)."""
    text = "|".join(str(row.get(f) or "") for f in _PAIR_FIELDS)
    return "EF-" + hashlib.sha1(text.encode()).hexdigest()[:12].upper()


def _rebuild_pair(writer: Writer, sample: Row) -> None:
    forecasts = entity_named("ExpenseForecasts")
    where = " AND ".join(f'"{f}" IS ?' for f in _PAIR_FIELDS)
    lines = tables.select(writer.conn, entity_named("ExpenseEstimateStaging"), where,
                          [sample.get(f) for f in _PAIR_FIELDS])
    key = {"dataAreaId": sample["dataAreaId"], "TransId": expense_pair_id(sample)}
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
              "SalesEstimateLineId": sales["EstimateLineId"] if sales else None}
    if existing is None:
        writer.insert(forecasts, {**key, **values})
    else:
        writer.update(forecasts, key, values)


def sync_expense_forecast(writer: Writer, before: Row | None, after: Row | None) -> None:
    """Re-derive the forecast of the pair the line left and of the pair it joined."""
    groups = {expense_pair_id(r): r for r in (before, after) if r is not None}
    for sample in groups.values():
        _rebuild_pair(writer, sample)
