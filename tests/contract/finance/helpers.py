"""Small builders for contract tests: unique ids and the rows most scenarios need."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

ACTION = "Microsoft.Dynamics.DataEntities."


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8].upper()}"


def created(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def project(fo: httpx.Client, company: str = "usmf", **fields: Any) -> dict[str, Any]:
    """A contract for a seeded customer and a project on it."""
    customer = "US-001" if company == "usmf" else "DE-001"
    contract = uid("PC")
    created(fo.post("/ProjectContractHeaders", json={
        "dataAreaId": company, "ProjectContractId": contract, "Name": "Contract",
        "CustomerAccountNumber": customer, "SalesCurrencyCode": "USD"}))
    return created(fo.post("/ProjectsV2", json={
        "dataAreaId": company, "ProjectId": uid("P"), "ProjectName": "Project",
        "ProjectContractId": contract, "CustomerAccountNumber": customer,
        "ProjectStage": "InProcess", "ProjectedStartDate": "2026-01-01", **fields}))


def category_id(fo: httpx.Client, name: str) -> str:
    rows = fo.get("/TransactionCategories", params={"$filter": f"Name eq '{name}'"}).json()
    return str(rows["value"][0]["CategoryId"])


def actual(fo: httpx.Client, proj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A staged cost actual of 8 hours of Design at 100 USD on 2026-03-15."""
    body = {"ProjectDataAreaId": proj["dataAreaId"], "ActualId": uid("ACT"),
            "TransType": "Cost", "TransactionClassification": "Time",
            "ProjectId": proj["ProjectId"], "TransactionCategory": category_id(fo, "Design"),
            "Quantity": 8, "UnitOfMeasure": "h", "UnitPrice": 100, "Amount": 800,
            "TransactionCurrencyId": "USD", "DocumentDate": "2026-03-15",
            "AccountingDate": "2026-03-15", "BillingType": "Chargeable", **fields}
    return created(fo.post("/ActualsStaging", json=body))


def staged(fo: httpx.Client, row: dict[str, Any]) -> dict[str, Any]:
    resp = fo.get(f"/ActualsStaging(ProjectDataAreaId='{row['ProjectDataAreaId']}',"
                  f"ActualId='{row['ActualId']}')", params={"cross-company": "true"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def feed_since(fo: httpx.Client, since: int, entities: str | None = None) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"since": since, "top": 10000}
    if entities:
        params["entities"] = entities
    resp = fo.get("/ChangeFeed", params=params)
    assert resp.status_code == 200, resp.text
    value: list[dict[str, Any]] = resp.json()["value"]
    return value


def watermark(fo: httpx.Client) -> int:
    """The feed's current high-water mark (read to the end)."""
    since = 0
    while True:
        body = fo.get("/ChangeFeed", params={"since": since, "top": 10000}).json()
        if body["watermark"] == since:
            return since
        since = int(body["watermark"])
