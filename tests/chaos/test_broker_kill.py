"""A cluster, not one broker: the pipeline runs against a local three-node KRaft cluster
(replication 3, ``min.insync.replicas`` 2); one node is SIGKILLed mid-run and restarted, then
another, both while changes flow. Every producer uses ``acks=all``, so nothing acknowledged lives on one broker only: the
pipeline keeps going through each loss and both systems end exactly as in a calm run."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dualwrite.kafka import LocalKafka
from dualwrite.scenario import Scenario
from tests.support.chaos import KillSchedule, assert_exact_end_state, play
from tests.support.pipeline import running_stack

pytestmark = pytest.mark.chaos

DOWN_FOR_S = 12.0  # past the broker session timeout (9 s): the controller fences the node


def kill_and_restart(kafka: LocalKafka, node_id: int) -> Callable[[], None]:
    def action() -> None:
        node = kafka.nodes[node_id - 1]
        pid = node.pid()
        assert pid is not None, f"node {node_id} is not running"
        os.kill(pid, signal.SIGKILL)
        time.sleep(DOWN_FOR_S)
        status = kafka.status()
        assert status.pids[node_id - 1] is None and status.running, status.describe()
        assert kafka.up(timeout=120).complete, kafka.status().describe()

    return action


@pytest.mark.timeout(1200)
def test_sigkill_one_broker_then_another_and_end_state_is_exact(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    with running_stack(tmp_path, brokers=3) as stack:
        kafka = LocalKafka(tmp_path / "kafka")  # the cluster's stored layout: all three nodes
        assert kafka.brokers == 3 and kafka.status().complete
        scenario = Scenario(stack.dataverse(), stack.finance(), seed=12)
        first, second = rng.sample([1, 2, 3], 2)
        schedule = KillSchedule(rng, [(f"broker-{first}", kill_and_restart(kafka, first)),
                                      (f"broker-{second}", kill_and_restart(kafka, second))],
                                pause=(3.0, 10.0))
        # Mid-run: once changes flow end to end, not while the processes are still starting
        # (its own API session: the scenario's is busy in this thread).
        finance = stack.finance()
        schedule.start(when=lambda: any(r["ProjectId"].startswith(scenario.prefix) for r in
                                        finance.get_all("ProjectsV2", {"cross-company": "true"})))
        # The activity goes on until both nodes were killed and are back.
        play(stack, scenario, [], changes=1500, kill_sources=False,
             until=lambda: len(schedule.done) == 2)
        assert schedule.finish(timeout=240) == [f"broker-{first}", f"broker-{second}"]
        assert kafka.status().complete
        assert_exact_end_state(stack, scenario, [])
