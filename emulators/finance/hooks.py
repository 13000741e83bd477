"""FO entity logic that runs when a row is written over OData, in the same transaction.

``after_write(writer, entity, before, after)`` is called after every OData create (before is
None), update, and delete (after is None). Hooks are registered per entity:

- ``TransactionCategories`` created: the shared categories (``categories.py``).
- ``OnAccountTransactions`` created: the first billing milestone of a contract line makes FO
  create a fixed-price revenue estimate project for the line (``FixedPriceRevenueEstimateProjects``).
- ``HourEstimateStaging`` / ``ExpenseEstimateStaging`` / ``MaterialEstimateStaging`` written:
  the forecasts (``forecasts.py``).

Business actions (import, posting) write through ``Writer`` directly and trigger no hooks.
"""

from __future__ import annotations

from collections.abc import Callable

from emulators.finance import categories, forecasts, tables
from emulators.finance.entities import entity_named
from emulators.finance.schema import Entity
from emulators.finance.writer import Row, Writer

__all__ = ["after_write", "before_create"]

Hook = Callable[[Writer, Row | None, Row | None], None]


def _shared_categories(writer: Writer, before: Row | None, after: Row | None) -> None:
    if before is None and after is not None:
        categories.create_shared_categories(writer, after)


def _fixed_price_estimate(writer: Writer, before: Row | None, after: Row | None) -> None:
    if before is not None or after is None or not after.get("ContractLineRef"):
        return
    company = after["dataAreaId"]
    line = writer.get(entity_named("ProjectContractLines"), {
        "dataAreaId": company, "ProjectContractId": after["ProjectContractId"],
        "ContractLineId": after["ContractLineRef"]})
    estimates = entity_named("FixedPriceRevenueEstimateProjects")
    key = {"dataAreaId": company, "ProjectContractId": after["ProjectContractId"],
           "ContractLineId": after["ContractLineRef"]}
    if line is None or writer.get(estimates, key) is not None:
        return
    number = tables.next_number(writer.conn, f"FixedPriceEstimate:{company}")
    writer.insert(estimates, {**key, "ProjectId": line["LineProjectId"],
                              "EstimateProjectId": f"FPRE-{number:06d}"})


_HOOKS: dict[str, Hook] = {
    "TransactionCategories": _shared_categories,
    "OnAccountTransactions": _fixed_price_estimate,
    "HourEstimateStaging": forecasts.sync_hour_forecast,
    "ExpenseEstimateStaging": forecasts.sync_expense_forecast,
    "MaterialEstimateStaging": forecasts.sync_item_forecast,
}


def before_create(writer: Writer, ent: Entity, values: Row) -> None:
    """Defaults FO assigns on create (the transaction category id)."""
    if ent.name == "TransactionCategories" and not values.get("CategoryId"):
        values["CategoryId"] = categories.new_category_id(writer.conn,
                                                          str(values.get("IntegrationId") or ""))


def after_write(writer: Writer, ent: Entity, before: Row | None, after: Row | None) -> None:
    hook = _HOOKS.get(ent.name)
    if hook is not None:
        hook(writer, before, after)
