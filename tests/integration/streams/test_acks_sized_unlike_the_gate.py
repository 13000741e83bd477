"""An ack topic sized unlike the gate topic: the Faust agents never handle its acks in place
(the batch engine handles an ack wherever it is read: `test_engine.py`).

Faust's assignor gives a worker the same partitions of every topic of one partition count, and
writes a table's changelog to the partition of the record being handled: an ack in a topic of
another count may sit in a partition whose gate state another worker owns, and its table writes
would land in the wrong changelog partition. So the acks agent sends every such ack through the
gate topic, even one placed where the sink places acks, and the task waiting for its project is
released all the same.
"""

from __future__ import annotations

import pytest

from streams.wire import AppliedMsg, decode_gate
from tests.integration.streams import scenario as s
from tests.integration.streams.harness import PARTITIONS, Reader, create_topics

pytestmark = [pytest.mark.integration, pytest.mark.faust_agents]


@pytest.fixture
def prefix(kafka_bootstrap: str, unique: str) -> str:
    name = f"t{unique}."
    create_topics(kafka_bootstrap, name, sizes={"sync.applied.finance": PARTITIONS + 1})
    return name


def test_an_ack_in_a_topic_sized_unlike_the_gate_releases_the_task_through_the_gate(
        worker, cdc, finance_commands, kafka_bootstrap, unique):
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    (project,) = [c for c in finance_commands.commands() if c.entity == "ProjectsV2"]

    s.ack(cdc, project, placed=True)  # the partition the gate key hashes to, of a wider topic
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
    assert [c.key["Task"] for c in finance_commands.commands() if c.entity == "ProjectTasks"] == ["1"], \
        worker.tail()
    gate = Reader(kafka_bootstrap, f"streams-{unique}-gate", f"gate-acks-{unique}")
    try:
        crossed = [m for m in (decode_gate(r.value()) for r in gate.drain(5)) if isinstance(m, AppliedMsg)]
    finally:
        gate.close()
    assert [a.ack.command_id for a in crossed] == [project.command_id]
