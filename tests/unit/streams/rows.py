"""Source and target rows used across the unit tests."""

from __future__ import annotations

from typing import Any

from streams.maps import MapRegistry, key_fact, present_fact, row_fact
from streams.pending import Need, Pending, Step, plan
from topics import target_key

COMPANY = "c-guid-1"
ACCOUNT = "a-guid-1"
PROJECT = "p-guid-1"

COMPANY_FACT = row_fact("dataverse", "cdm_companies", COMPANY)
ACCOUNT_FACT = row_fact("dataverse", "accounts", ACCOUNT)
PROJECT_KEY_FACT = key_fact("projects", PROJECT)
PROJECT_PRESENT = present_fact(target_key("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}))
COMPANY_PRESENT = present_fact(target_key("cdm_companies", {"cdm_companycode": "usmf"}))
PARENT_TASK = "t-guid-parent"
PARENT_ROW_FACT = row_fact("dataverse", "msdyn_projecttasks", PARENT_TASK)
PARENT_PRESENT = present_fact(target_key("ProjectTasks", {"dataAreaId": "usmf", "ProjectId": "PRJ-1",
                                                          "Task": "1"}))


def legal_entity(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "Name": "Contoso USA", "AccountingCurrency": "USD", **extra}


def customer(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "CustomerAccount": "US-001", "Name": "Adatum",
            "CustomerGroupId": "30", "SalesCurrencyCode": "USD", **extra}


def project(**extra: Any) -> dict[str, Any]:
    return {"msdyn_projectid": PROJECT, "msdyn_projectnumber": "PRJ-1", "msdyn_subject": "Rollout",
            "_msdyn_owningcompany_value": COMPANY, "_msdyn_customer_value": ACCOUNT,
            "msdyn_scheduledstart": "2026-01-05T00:00:00Z", "msdyn_finish": "2026-06-30",
            "statecode": 0, "versionnumber": 7, **extra}


def task(**extra: Any) -> dict[str, Any]:
    return {"msdyn_projecttaskid": "t-guid-1", "_msdyn_project_value": PROJECT, "msdyn_wbsid": "1.2",
            "msdyn_subject": "Design", "_msdyn_parenttask_value": None, **extra}


def account_in_dataverse(**extra: Any) -> dict[str, Any]:
    return {"accountid": ACCOUNT, "accountnumber": "US-001", "name": "Adatum",
            "msdyn_customergroupid": "30", "transactioncurrencyid": "USD",
            "_msdyn_company_value": COMPANY, **extra}


def walk(item: Pending, facts: dict[str, dict[str, Any]], maps: MapRegistry) -> tuple[list[str], Step]:
    """Plan the item, handing it each fact it asks for that ``facts`` holds: (the facts it
    waited for, in order; the step where it stopped)."""
    waited: list[str] = []
    while True:
        step = plan(item, maps)
        if not isinstance(step, Need) or step.key not in facts:
            return waited, step
        waited.append(step.key)
        item = item.with_fact(step.key, facts[step.key])
