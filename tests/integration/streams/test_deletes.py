"""Deletes through a real broker and worker: a delete is addressed by the key its record was
written under, never by its before image (a source that restarted has none to give)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.streams import scenario as s
from tests.integration.streams.harness import Cdc, Reader, WorkerProcess
from topics import cdc_topic, encode_key

pytestmark = pytest.mark.integration

TASK_KEY = {"dataAreaId": "usmf", "ProjectId": "PRJ-0001", "Task": "1"}
TASKS = "msdyn_projecttasks"


def task_writes(reader: Reader) -> list[tuple[str, int]]:
    return [(c.op, c.source.version) for c in reader.commands() if c.entity == "ProjectTasks"]


def delete_without_image(cdc: Cdc, version: int) -> None:
    """What a source sends after a restart emptied its image cache, then the tombstone."""
    cdc.change("dataverse", TASKS, s.TASK_ID, None, version, op="d", before=None)
    cdc.raw(cdc_topic("dataverse", TASKS), encode_key(s.TASK_ID), None)


def project_written(cdc: Cdc, reader: Reader, worker: WorkerProcess) -> None:
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    reader.poll_until(lambda r: any(c.entity == "ProjectsV2" for c in reader.commands()),
                      timeout=90, worker=worker)
    [project] = [c for c in reader.commands() if c.entity == "ProjectsV2"]
    s.ack(cdc, project)


def wait_for_task_writes(reader: Reader, worker: WorkerProcess, count: int) -> list[Any]:
    reader.poll_until(lambda r: len(task_writes(reader)) >= count, timeout=90, worker=worker)
    reader.drain(3)  # nothing more may follow
    return [c for c in reader.commands() if c.entity == "ProjectTasks"]


def test_delete_without_a_before_image_deletes_the_task_written_earlier(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    project_written(cdc, finance_commands, worker)
    cdc.change("dataverse", TASKS, s.TASK_ID, s.task_row(), 3, op="c")
    wait_for_task_writes(finance_commands, worker, 1)

    delete_without_image(cdc, 4)
    tasks = wait_for_task_writes(finance_commands, worker, 2)
    assert task_writes(finance_commands) == [("upsert", 3), ("delete", 4)], worker.tail()
    assert tasks[1].key == TASK_KEY and tasks[1].fields == {}
    assert tasks[1].record_key == tasks[0].record_key


def test_a_create_whose_delete_arrived_while_it_waited_is_never_written(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    # The task's create waits for its project; its delete (no image) arrives meanwhile.
    cdc.change("dataverse", TASKS, s.TASK_ID, s.task_row(), 3, op="c")
    delete_without_image(cdc, 4)
    finance_commands.drain(4)
    assert finance_commands.commands() == []

    project_written(cdc, finance_commands, worker)
    # A later task of the same project is written: the gate has moved past the waiting ones.
    cdc.change("dataverse", TASKS, "task-later", s.task_row("task-later", "2"), 5, op="c")
    finance_commands.poll_until(lambda r: ("upsert", 5) in task_writes(finance_commands), timeout=90,
                                worker=worker)
    finance_commands.drain(3)
    # The deleted task's create is dropped (its record is gone), so no row is made and there is
    # nothing for its delete to remove.
    assert task_writes(finance_commands) == [("upsert", 5)], worker.tail()


def test_waiting_delete_never_undoes_a_newer_write_of_the_record(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    cdc.change("dataverse", TASKS, s.TASK_ID, s.task_row(), 3, op="c")
    delete_without_image(cdc, 4)
    # The same record written again after its delete (a re-created key).
    cdc.change("dataverse", TASKS, s.TASK_ID, s.task_row(name="Design again"), 5, op="c")

    project_written(cdc, finance_commands, worker)
    finance_commands.poll_until(lambda r: ("upsert", 5) in task_writes(finance_commands), timeout=90,
                                worker=worker)
    finance_commands.drain(3)  # nothing more may follow
    tasks = [c for c in finance_commands.commands() if c.entity == "ProjectTasks"]
    # Version 3 may be written first or, when version 5 is released ahead of it, be stale and
    # dropped; either way the delete (version 4) never follows the newer write.
    assert task_writes(finance_commands) in ([("upsert", 3), ("upsert", 5)], [("upsert", 5)]), worker.tail()
    assert tasks[-1].fields["Name"] == "Design again"


def test_a_record_taking_a_deleted_key_with_the_same_values_is_written(worker, cdc, finance_commands):
    """Task A is written and deleted; Finance's feed then shows A's row from before the delete
    (the feed and the acks reach the gate by different paths); task B takes the same WBS id
    with the same values. B must be written: the row is gone, whatever the late feed row says."""
    s.seed_lookups(cdc)
    project_written(cdc, finance_commands, worker)
    cdc.change("dataverse", TASKS, s.TASK_ID, s.task_row(), 3, op="c")
    [a_write] = wait_for_task_writes(finance_commands, worker, 1)
    s.ack(cdc, a_write, target_id="5637145001")
    delete_without_image(cdc, 4)
    a_delete = wait_for_task_writes(finance_commands, worker, 2)[1]
    s.ack(cdc, a_delete, target_id="5637145001")
    cdc.change("finance", "ProjectTasks", "5637145001", {**a_write.fields, "RecId": 5637145001}, 11,
               op="c")
    time.sleep(2)  # let the late feed row reach the gate first
    cdc.change("dataverse", TASKS, "task-b", s.task_row("task-b"), 5, op="c")

    finance_commands.poll_until(lambda r: ("upsert", 5) in task_writes(finance_commands), timeout=90,
                                worker=worker)
    [b_write] = [c for c in finance_commands.commands() if c.source.version == 5]
    assert b_write.key == TASK_KEY and b_write.fields["Name"] == a_write.fields["Name"]
