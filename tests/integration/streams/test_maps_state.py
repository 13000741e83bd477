"""Paused maps keep their commands waiting; two-way customer names resolve conflicts."""

from __future__ import annotations

import asyncio
import time

import pytest

from dualwrite.ops.status import StatusOptions, gather
from dualwrite.settings import KafkaSettings, Settings
from streams import StreamsConfig, default_registry, read_parked
from tests.integration.streams import scenario as s
from tests.integration.streams.harness import Reader
from topics import MapState, encode

pytestmark = pytest.mark.integration


def set_state(cdc, map_name: str, state: str) -> None:
    cdc.raw("sync.control", map_name.encode(),
            encode(MapState(map=map_name, state=state, ts_ms=int(time.time() * 1000))))


def test_paused_map_waits_and_resumes_in_order(worker, cdc, finance_commands, kafka_bootstrap,
                                               prefix, unique):
    set_state(cdc, "project_tasks", "paused")
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    s.ack(cdc, finance_commands.commands()[0])

    config = StreamsConfig(bootstrap_servers=kafka_bootstrap, app_id=f"streams-{unique}")
    deadline = time.monotonic() + 60
    parked = []
    while time.monotonic() < deadline:
        parked = asyncio.run(read_parked(config))
        if any(p.waits_for.startswith("paused:project_tasks@") for p in parked):
            break
        time.sleep(1)
    [entry] = [p for p in parked if p.map == "project_tasks"]
    assert entry.waits_for.startswith("paused:project_tasks@") and entry.age_s >= 0
    assert [c.entity for c in finance_commands.commands()] == ["ProjectsV2"]

    # `dualwrite status` shows the paused map, the worker's group and the parked task.
    report = gather(Settings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap)),
                    StatusOptions(app_id=f"streams-{unique}", topic_prefix=prefix, timeout_s=10,
                                  max_parked_age_s=0),
                    [m.name for m in default_registry().maps], default_registry())
    assert {m.map: m.state for m in report.maps}["project_tasks"] == "paused"
    [worker_group] = [g for g in report.groups if g.group == f"streams-{unique}"]
    assert worker_group.members == 1 and worker_group.role == "worker"
    assert report.parked_available
    [summary] = [p for p in report.parked if p.map == "project_tasks"]
    assert summary.count == 1 and summary.oldest_change_id == entry.change_id
    assert summary.oldest_waits_for.startswith("paused:project_tasks@")
    assert summary.oldest_hint == "map project_tasks is paused: `dualwrite maps resume project_tasks`"
    assert "map project_tasks is paused" in report.problems

    set_state(cdc, "project_tasks", "running")
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
    assert [c.entity for c in finance_commands.commands()] == ["ProjectsV2", "ProjectTasks"]


def test_two_way_name_flows_back_and_the_master_wins(worker, cdc, finance_commands,
                                                     kafka_bootstrap, prefix, unique):
    dataverse = Reader(kafka_bootstrap, prefix + "sync.commands.dataverse", f"dv-{unique}")
    try:
        now = int(time.time() * 1000)
        s.seed_lookups(cdc)
        customer = {"dataAreaId": "usmf", "CustomerAccount": "US-001", "Name": "Adatum",
                    "CustomerGroupId": "30", "SalesCurrencyCode": "USD"}
        cdc.change("finance", "CustomersV3", "usmf|US-001", customer, 1, op="c", ts_ms=now - 60_000)
        dataverse.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
        [account] = dataverse.commands()
        assert account.key == {"accountnumber": "US-001", "_msdyn_company_value": s.COMPANY_ID}
        assert account.fields["msdyn_company@odata.bind"] == f"/cdm_companies({s.COMPANY_ID})"

        # A user renames the account in Dataverse: the two-way name flows back to Finance.
        edited = {**s.account_row(), "name": "Adatum Corp", "msdyn_customergroupid": "30",
                  "transactioncurrencyid": "USD"}
        cdc.change("dataverse", "accounts", s.ACCOUNT_ID, edited, 2, ts_ms=now)
        finance_commands.poll_until(lambda r: len(r) >= 1, timeout=60, worker=worker)
        [back] = finance_commands.commands()
        assert back.entity == "CustomersV3"
        assert back.key == {"dataAreaId": "usmf", "CustomerAccount": "US-001"}
        assert back.fields["Name"] == "Adatum Corp"

        # Finance (the master) renames within the window: its value wins in Dataverse...
        cdc.change("finance", "CustomersV3", "usmf|US-001", {**customer, "Name": "Contoso Corp"},
                   2, ts_ms=now + 1_000)
        dataverse.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
        assert dataverse.commands()[1].fields["name"] == "Contoso Corp"
        # ...and a Dataverse rename inside the same window loses: nothing goes to Finance.
        cdc.change("dataverse", "accounts", s.ACCOUNT_ID, {**edited, "name": "Loser"}, 3,
                   ts_ms=now + 2_000)
        finance_commands.drain(5)
        assert len(finance_commands.commands()) == 1
    finally:
        dataverse.close()
