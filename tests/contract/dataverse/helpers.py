"""Small builders shared by the Dataverse contract tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from emulators.dataverse.seed import seed_id

USMF = seed_id("cdm_companies", "usmf")
DEMF = seed_id("cdm_companies", "demf")
CUSTOMER = seed_id("accounts", "usmf/US-001")
ORG_US = seed_id("msdyn_organizationalunits", "Contoso US")
ORG_DE = seed_id("msdyn_organizationalunits", "Contoso DE")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def entity_id(response: httpx.Response) -> str:
    """The guid in a create/upsert answer's ``OData-EntityId`` header."""
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def create(client: httpx.Client, entity_set: str, body: dict[str, Any]) -> str:
    response = client.post(entity_set, json=body)
    assert response.status_code == 204, response.text
    return entity_id(response)


def project(client: httpx.Client, number: str | None = None, **extra: Any) -> str:
    body = {"msdyn_projectnumber": number or unique("PRJ"), "msdyn_subject": "Contract test",
            "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
            "msdyn_customer@odata.bind": f"/accounts({CUSTOMER})",
            "transactioncurrencyid": "USD", "statecode": 0, **extra}
    return create(client, "msdyn_projects", body)


def task(client: httpx.Client, project_id: str, wbs: str = "1", leaf: bool = True) -> str:
    return create(client, "msdyn_projecttasks", {
        "msdyn_project@odata.bind": f"/msdyn_projects({project_id})", "msdyn_wbsid": wbs,
        "msdyn_subject": f"Task {wbs}", "msdyn_isleaf": leaf})


def contract_with_line(client: httpx.Client, project_id: str) -> tuple[str, str]:
    """A project contract and its T&M line for ``project_id``; returns (salesorderid, lineid)."""
    order = create(client, "salesorders", {
        "ordernumber": unique("PC"), "name": "Contract",
        "customerid@odata.bind": f"/accounts({CUSTOMER})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        "transactioncurrencyid": "USD"})
    line = create(client, "salesorderdetails", {
        "salesorderid@odata.bind": f"/salesorders({order})",
        "msdyn_project@odata.bind": f"/msdyn_projects({project_id})", "msdyn_linenumber": "1",
        "msdyn_billingmethod": 192350000, "transactioncurrencyid": "USD"})
    response = client.patch(f"msdyn_projects({project_id})",
                            json={"msdyn_salesorderid@odata.bind": f"/salesorders({order})"})
    assert response.status_code == 204, response.text
    return order, line


def delta_start(client: httpx.Client, entity_set: str) -> str:
    """Start change tracking on ``entity_set``, read every page, return the delta link."""
    response = client.get(entity_set, headers={"Prefer": "odata.track-changes"})
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        if "@odata.deltaLink" in body:
            return str(body["@odata.deltaLink"])
        response = client.get(body["@odata.nextLink"], headers={"Prefer": "odata.track-changes"})


def follow(client: httpx.Client, link: str, **headers: str) -> tuple[list[dict[str, Any]], str]:
    """All entries behind a delta link (following nextLinks) and the next delta link."""
    entries: list[dict[str, Any]] = []
    while True:
        response = client.get(link, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["value"]
        if "@odata.deltaLink" in body:
            return entries, str(body["@odata.deltaLink"])
        link = body["@odata.nextLink"]
