"""Projects and tasks flow to Finance through a real broker and a real worker process."""

from __future__ import annotations

import pytest

from tests.integration.streams import scenario as s

pytestmark = pytest.mark.integration


def of(commands, entity):
    return [c for c in commands if c.entity == entity]


def test_project_and_task_reach_finance_in_dependency_order(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")

    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    project = of(finance_commands.commands(), "ProjectsV2")
    assert len(project) == 1, worker.tail()
    assert project[0].key == {"dataAreaId": "usmf", "ProjectId": "PRJ-0001"}
    assert project[0].fields == {
        "dataAreaId": "usmf", "ProjectId": "PRJ-0001", "ProjectName": "Fabrikam rollout",
        "ProjectStage": "InProcess", "ProjectedStartDate": "2026-01-05",
        "ProjectedEndDate": "2026-06-30", "CustomerAccountNumber": "US-001",
        "IntegrationSourceDataId": s.PROJECT_ID}
    # The task waits for its project to be present in Finance.
    finance_commands.drain(3)
    assert of(finance_commands.commands(), "ProjectTasks") == []

    s.ack(cdc, project[0])
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
    tasks = of(finance_commands.commands(), "ProjectTasks")
    assert len(tasks) == 1, worker.tail()
    assert tasks[0].key == {"dataAreaId": "usmf", "ProjectId": "PRJ-0001", "Task": "1"}
    assert tasks[0].fields["Name"] == "Design"
    assert tasks[0].fields["ParentTask"] is None
