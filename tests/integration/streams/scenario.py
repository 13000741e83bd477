"""Rows of a small Project Operations tenant, as the Dataverse and Finance feeds show them."""

from __future__ import annotations

import time
from typing import Any

from tests.integration.streams.harness import PARTITIONS
from topics import Applied, Command, ack_partition, applied_topic, encode

COMPANY_ID = "c0000000-0000-0000-0000-000000000001"
ACCOUNT_ID = "a0000000-0000-0000-0000-000000000001"
PROJECT_ID = "p0000000-0000-0000-0000-000000000001"
TASK_ID = "t0000000-0000-0000-0000-000000000001"
CHILD_TASK_ID = "t0000000-0000-0000-0000-000000000002"


def company_row() -> dict[str, Any]:
    return {"cdm_companyid": COMPANY_ID, "cdm_companycode": "usmf", "cdm_name": "Contoso USA",
            "accountingcurrency": "USD", "versionnumber": 1}


def account_row() -> dict[str, Any]:
    return {"accountid": ACCOUNT_ID, "accountnumber": "US-001", "name": "Adatum",
            "_msdyn_company_value": COMPANY_ID, "versionnumber": 1}


def project_row(name: str = "Fabrikam rollout", statecode: int = 0) -> dict[str, Any]:
    return {"msdyn_projectid": PROJECT_ID, "msdyn_projectnumber": "PRJ-0001",
            "msdyn_subject": name, "_msdyn_owningcompany_value": COMPANY_ID,
            "_msdyn_customer_value": ACCOUNT_ID, "msdyn_scheduledstart": "2026-01-05T00:00:00Z",
            "msdyn_finish": "2026-06-30T00:00:00Z", "statecode": statecode, "versionnumber": 7}


def task_row(task_id: str = TASK_ID, wbs: str = "1", parent: str | None = None,
             name: str = "Design") -> dict[str, Any]:
    return {"msdyn_projecttaskid": task_id, "_msdyn_project_value": PROJECT_ID, "msdyn_wbsid": wbs,
            "msdyn_subject": name, "_msdyn_parenttask_value": parent}


def seed_lookups(cdc: Any) -> None:
    cdc.change("dataverse", "cdm_companies", COMPANY_ID, company_row(), 1, op="c")
    cdc.change("dataverse", "accounts", ACCOUNT_ID, account_row(), 1, op="c")


def ack(cdc: Any, command: Command, target_id: str = "5637144576", *, placed: bool = True) -> None:
    """What the sink publishes once the target acknowledged the write, in the partition the
    sink places it (`topics.ack_partition`; ``placed=False``: in another one, as a sink of an
    earlier release would have)."""
    applied = Applied(command_id=command.command_id, map=command.map, target=command.target,
                      entity=command.entity, key=command.key, op=command.op,
                      source_version=command.source.version, source_system=command.source.system,
                      source_table=command.source.table, source_id=command.source.id,
                      fingerprint=command.fingerprint, target_id=target_id,
                      applied_ts_ms=int(time.time() * 1000))
    partition = ack_partition(command.record_key, PARTITIONS)
    if not placed:
        partition = (partition + 1) % PARTITIONS
    cdc.raw(applied_topic(command.target), command.record_key.encode(), encode(applied), partition=partition)
