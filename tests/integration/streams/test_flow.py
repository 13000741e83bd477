"""Projects and tasks flow to Finance through a real broker and a real worker process."""

from __future__ import annotations

import pytest

from streams.maps.model import key_fact
from streams.wire import AppliedMsg, FactMsg, decode_gate
from tests.integration.streams import scenario as s
from tests.integration.streams.harness import Reader

pytestmark = pytest.mark.integration


def of(commands, entity):
    return [c for c in commands if c.entity == entity]


def test_project_task_and_child_task_reach_finance_in_dependency_order(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    # The child's change comes first (another partition of the tasks' topic may be ahead).
    cdc.change("dataverse", "msdyn_projecttasks", s.CHILD_TASK_ID,
               s.task_row(s.CHILD_TASK_ID, "1.1", parent=s.TASK_ID, name="Design review"), 2, op="c")
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")

    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    project = of(finance_commands.commands(), "ProjectsV2")
    assert len(project) == 1, worker.tail()
    assert project[0].key == {"dataAreaId": "usmf", "ProjectId": "PRJ-0001"}
    assert project[0].fields == {
        "dataAreaId": "usmf", "ProjectId": "PRJ-0001", "ProjectName": "Fabrikam rollout",
        "ProjectStage": "InProcess", "ProjectedStartDate": "2026-01-05",
        "ProjectedEndDate": "2026-06-30", "CustomerAccountNumber": "US-001",
        "IntegrationSourceDataId": s.PROJECT_ID, "ProjectContractId": None, "ProjectGroupId": "TM",
        "ProjectManagerPersonnelNumber": None}
    # The tasks wait for their project to be present in Finance.
    finance_commands.drain(3)
    assert of(finance_commands.commands(), "ProjectTasks") == []

    s.ack(cdc, project[0])
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
    # The child also waits for its parent to be present in Finance.
    finance_commands.drain(3)
    tasks = of(finance_commands.commands(), "ProjectTasks")
    assert len(tasks) == 1, worker.tail()
    assert tasks[0].key == {"dataAreaId": "usmf", "ProjectId": "PRJ-0001", "Task": "1"}
    assert tasks[0].fields["Name"] == "Design"
    assert tasks[0].fields["ParentTask"] is None

    s.ack(cdc, tasks[0], target_id="5637144577")
    finance_commands.poll_until(lambda r: len(r) >= 3, timeout=60, worker=worker)
    finance_commands.drain(1)
    tasks = of(finance_commands.commands(), "ProjectTasks")
    assert [t.key["Task"] for t in tasks] == ["1", "1.1"], worker.tail()
    assert tasks[1].fields["ParentTask"] == "1"
    assert tasks[1].fields["Name"] == "Design review"


def test_a_task_changed_after_its_project_was_renumbered_is_written_under_the_new_number(
        worker, cdc, finance_commands):
    """The task row never changes its project: only the project's number does. The task's
    next command must carry the new Finance key, whichever way the lookup is answered (the
    worker's view of lookup rows, or the gate)."""
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    s.ack(cdc, of(finance_commands.commands(), "ProjectsV2")[0])
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")
    finance_commands.poll_until(lambda r: len(of(finance_commands.commands(), "ProjectTasks")) >= 1,
                                timeout=60, worker=worker)
    [first] = of(finance_commands.commands(), "ProjectTasks")
    assert first.key["ProjectId"] == "PRJ-0001"

    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID,
               {**s.project_row(), "msdyn_projectnumber": "PRJ-0002"}, 8)
    finance_commands.poll_until(lambda r: len(of(finance_commands.commands(), "ProjectsV2")) >= 2,
                                timeout=60, worker=worker)
    renumbered = of(finance_commands.commands(), "ProjectsV2")[1]
    assert renumbered.key["ProjectId"] == "PRJ-0002"
    s.ack(cdc, renumbered, target_id="5637144577")
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(name="Design, renamed"), 4)
    finance_commands.poll_until(lambda r: len(of(finance_commands.commands(), "ProjectTasks")) >= 2,
                                timeout=60, worker=worker)
    second = of(finance_commands.commands(), "ProjectTasks")[1]
    assert second.key == {"dataAreaId": "usmf", "ProjectId": "PRJ-0002", "Task": "1"}
    assert second.fields["Name"] == "Design, renamed"


def test_a_version_that_waited_while_a_newer_one_renumbered_the_project_is_not_written(
        worker, cdc, finance_commands):
    """Version 7 waits for a customer row not seen yet; version 8 names a known customer and a
    new number, and is written at once. When the customer row arrives version 7 is released: it
    must not write the project under its old number (a row that nothing would ever delete)."""
    s.seed_lookups(cdc)
    late = "a0000000-0000-0000-0000-000000000002"
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, {**s.project_row(), "_msdyn_customer_value": late},
               7, op="c")
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, {**s.project_row(), "msdyn_projectnumber": "PRJ-0002"}, 8)
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    cdc.change("dataverse", "accounts", late, {**s.account_row(), "accountid": late, "accountnumber": "US-002"},
               2, op="c")
    finance_commands.drain(5)
    projects = of(finance_commands.commands(), "ProjectsV2")
    assert [(c.key["ProjectId"], c.source.version) for c in projects] == [("PRJ-0002", 8)], worker.tail()


def test_a_child_task_changed_after_its_parent_was_renumbered_names_the_new_parent(
        worker, cdc, finance_commands):
    """The child row never changes its parent: only the parent's WBS id does (a lookup row the
    worker has seen before). The child's next command must name the parent's new id."""
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    s.ack(cdc, of(finance_commands.commands(), "ProjectsV2")[0])

    def tasks(count: int) -> list:
        finance_commands.poll_until(lambda r: len(of(finance_commands.commands(), "ProjectTasks")) >= count,
                                    timeout=60, worker=worker)
        return of(finance_commands.commands(), "ProjectTasks")

    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")
    s.ack(cdc, tasks(1)[0], target_id="5637145101")
    child = s.task_row(s.CHILD_TASK_ID, "1.1", parent=s.TASK_ID, name="Design review")
    cdc.change("dataverse", "msdyn_projecttasks", s.CHILD_TASK_ID, child, 4, op="c")
    assert tasks(2)[1].fields["ParentTask"] == "1"
    s.ack(cdc, tasks(2)[1], target_id="5637145102")

    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(wbs="3"), 5)
    renumbered = tasks(3)[2]
    assert renumbered.key["Task"] == "3"
    s.ack(cdc, renumbered, target_id="5637145103")
    cdc.change("dataverse", "msdyn_projecttasks", s.CHILD_TASK_ID, {**child, "msdyn_subject": "Review"}, 6)
    assert tasks(4)[3].fields["ParentTask"] == "3"


@pytest.mark.faust_agents
def test_a_project_sends_its_key_fact_when_its_key_changes_not_on_every_update(
        worker, cdc, finance_commands, kafka_bootstrap, unique):
    """Updates that keep the project's number send its key fact once (`streams.published`); a
    renumbering and a renumbering back each send it again, and the delete that follows addresses
    the key written last."""
    s.seed_lookups(cdc)
    numbers = ["PRJ-0001", "PRJ-0001", "PRJ-0001", "PRJ-0002", "PRJ-0002", "PRJ-0001"]
    for n, number in enumerate(numbers):
        row = {**s.project_row(name=f"Fabrikam rollout {n}"), "msdyn_projectnumber": number}
        cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, row, 7 + n, op="c" if n == 0 else "u")
        finance_commands.poll_until(lambda r, n=n: len(r) >= n + 1, timeout=90, worker=worker)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, None, 7 + len(numbers), op="d",
               before=s.project_row())
    finance_commands.poll_until(lambda r: len(r) >= len(numbers) + 1, timeout=60, worker=worker)
    commands = finance_commands.commands()
    assert [c.key["ProjectId"] for c in commands] == [*numbers, "PRJ-0001"], worker.tail()
    assert commands[-1].op == "delete"

    gate = Reader(kafka_bootstrap, f"streams-{unique}-gate", f"gate-{unique}")
    try:
        records = gate.drain(5)
    finally:
        gate.close()
    fact = key_fact("projects", s.PROJECT_ID).encode()
    sent = [decode_gate(m.value()) for m in records if m.key() == fact]
    assert [f.value["ProjectId"] for f in sent if isinstance(f, FactMsg)] == ["PRJ-0001", "PRJ-0002", "PRJ-0001"]


def _gate_acks(kafka_bootstrap, unique):
    gate = Reader(kafka_bootstrap, f"streams-{unique}-gate", f"gate-acks-{unique}")
    try:
        return [msg for msg in (decode_gate(m.value()) for m in gate.drain(5)) if isinstance(msg, AppliedMsg)]
    finally:
        gate.close()


@pytest.mark.faust_agents
@pytest.mark.parametrize("placed", [True, False], ids=["placed-by-the-sink", "placed-elsewhere"])
def test_an_ack_releases_the_task_in_place_or_through_the_gate(worker, cdc, finance_commands, kafka_bootstrap,
                                                                unique, placed):
    """The sink places an ack in the partition of its row's gate key: the worker that owns the
    row's state handles it where it reads it, and no copy crosses the gate topic. An ack in
    another partition (a sink of an earlier release) is sent through the gate, as before. Either
    way the task waiting for its project is released."""
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    project = of(finance_commands.commands(), "ProjectsV2")
    assert len(project) == 1, worker.tail()

    s.ack(cdc, project[0], placed=placed)
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
    assert [t.key["Task"] for t in of(finance_commands.commands(), "ProjectTasks")] == ["1"], worker.tail()
    through_gate = _gate_acks(kafka_bootstrap, unique)
    assert [a.ack.command_id for a in through_gate] == ([] if placed else [project[0].command_id])
