"""Finance emulator: forecasts from estimate staging rows, fixed-price estimate projects."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.contract.finance.helpers import created, feed_since, project, uid, watermark

pytestmark = pytest.mark.contract


def _forecasts(fo: httpx.Client, collection: str, project_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = fo.get(f"/{collection}", params={
        "$filter": f"ProjectId eq '{project_id}'"}).json()["value"]
    return rows


def test_hour_estimate_creates_updates_and_deletes_its_forecast(fo: httpx.Client) -> None:
    proj = project(fo)
    source = uid("RA")
    before = watermark(fo)
    created(fo.post("/HourEstimateStaging", json={
        "SourceId": source, "ProjectId": proj["ProjectId"], "TaskId": "1.1",
        "Duration": 40, "PlannedCostAmount": 4000, "PlannedSalesAmount": 6000,
        "SalesCurrency": "USD", "ForecastModel": "CURRENT", "StartDate": "2026-02-02"}))
    [forecast] = _forecasts(fo, "HourForecasts", proj["ProjectId"])
    assert (forecast["TransId"], forecast["Hours"], forecast["CostPrice"],
            forecast["SalesPrice"]) == (source, 40.0, 100.0, 150.0)
    entries = feed_since(fo, before)
    assert [e["entity"] for e in entries] == ["HourEstimateStaging", "HourForecasts"]
    assert len({e["txid"] for e in entries}) == 1
    url = f"/HourEstimateStaging(dataAreaId='usmf',SourceId='{source}')"
    assert fo.patch(url, json={"Duration": 20}).status_code == 204
    assert _forecasts(fo, "HourForecasts", proj["ProjectId"])[0]["CostPrice"] == 200.0
    assert fo.delete(url).status_code == 204
    assert _forecasts(fo, "HourForecasts", proj["ProjectId"]) == []


def test_expense_cost_and_sales_estimates_merge_into_one_forecast(fo: httpx.Client) -> None:
    proj = project(fo)
    common = {"ProjectId": proj["ProjectId"], "TaskId": "1.2", "TransactionCategory": "TRAVEL",
              "Quantity": 3, "CurrencyId": "USD", "ModelId": "CURRENT",
              "DocumentDate": "2026-04-01"}
    cost_id, sales_id = uid("EL"), uid("EL")
    created(fo.post("/ExpenseEstimateStaging", json={**common, "EstimateLineId": cost_id,
                                                     "TransType": "Cost", "Price": 200}))
    created(fo.post("/ExpenseEstimateStaging", json={**common, "EstimateLineId": sales_id,
                                                     "TransType": "Sales", "Price": 260}))
    [forecast] = _forecasts(fo, "ExpenseForecasts", proj["ProjectId"])
    assert (forecast["CostPrice"], forecast["SalesPrice"], forecast["Qty"]) == (200.0, 260.0, 3.0)
    assert (forecast["CostEstimateLineId"], forecast["SalesEstimateLineId"]) == (cost_id, sales_id)
    fo.delete(f"/ExpenseEstimateStaging(dataAreaId='usmf',EstimateLineId='{sales_id}')")
    [forecast] = _forecasts(fo, "ExpenseForecasts", proj["ProjectId"])
    assert forecast["SalesPrice"] == 0.0 and forecast["SalesEstimateLineId"] is None


def test_first_milestone_creates_a_fixed_price_revenue_estimate_project(fo: httpx.Client) -> None:
    proj = project(fo)
    line = uid("CL")
    created(fo.post("/ProjectContractLines", json={
        "ProjectContractId": proj["ProjectContractId"], "ContractLineId": line,
        "Description": "Fixed fee", "BillingMethod": "FixedPrice",
        "LineProjectId": proj["ProjectId"], "LineAmount": 10000}))
    for n in (1, 2):
        created(fo.post("/OnAccountTransactions", json={
            "TransactionId": uid("MS"), "ProjectContractId": proj["ProjectContractId"],
            "ContractLineRef": line, "InvoiceDate": f"2026-0{n}-28", "Amount": 5000,
            "CurrencyId": "USD", "Description": f"Milestone {n}"}))
    rows = fo.get("/FixedPriceRevenueEstimateProjects", params={
        "$filter": f"ContractLineId eq '{line}'"}).json()["value"]
    assert len(rows) == 1 and rows[0]["ProjectId"] == proj["ProjectId"]
    assert rows[0]["EstimateProjectId"].startswith("FPRE-")
