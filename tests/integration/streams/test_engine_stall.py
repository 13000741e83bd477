"""A batch engine whose Kafka calls stop returning exits with 75, for its supervisor to restart.

The broker is frozen (SIGSTOP) while the worker works through a backlog: its connections stay
open and nothing answers, so the batch's produce flush and commit never return (as librdkafka's
transactional calls were seen to after a broker was lost). The worker must not hang there: its
heartbeat (`streams.watchdog.Heartbeat`, ``--stall-timeout``) ends it with `EXIT_STALLED`.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from bench.workload import produce_records, project_events
from dualwrite.kafka import LocalKafka
from dualwrite.ports import free_port
from streams.watchdog import EXIT_STALLED
from tests.integration.streams.harness import Reader, WorkerProcess, create_topics
from topics import encode, encode_key

pytestmark = pytest.mark.integration

STALL_S = 8


def test_a_worker_whose_kafka_calls_never_return_exits_to_be_restarted(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    kafka.up(timeout=120)
    broker_pid = kafka.status().pid
    assert broker_pid is not None
    prefix = "stall."
    try:
        create_topics(kafka.bootstrap, prefix)
        # A backlog the worker is still working through when the broker stops answering.
        produce_records({"bootstrap.servers": kafka.bootstrap},
                        ((prefix + topic, encode_key(key), encode(event), None)
                         for topic, key, event in project_events(20_000, 5)))
        worker = WorkerProcess(kafka.bootstrap, "stall-app", prefix, tmp_path / "state", tmp_path / "worker.log")
        worker.args[worker.args.index("--stall-timeout") + 1] = str(STALL_S)
        worker.start()
        commands = Reader(kafka.bootstrap, prefix + "sync.commands.finance", "stall-probe")
        try:
            commands.poll_until(lambda got: len(got) > 0, timeout=120, worker=worker)
            assert commands.records, worker.tail()
        finally:
            commands.close()
        assert worker.proc is not None and worker.proc.poll() is None, worker.tail()
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            code = worker.proc.wait(timeout=STALL_S + 60)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise AssertionError(f"the worker hung with its broker frozen:\n{worker.tail()}") from None
        finally:
            os.kill(broker_pid, signal.SIGCONT)
        assert code == EXIT_STALLED, worker.tail()
        assert "the batch loop made no turn" in worker.tail()
    finally:
        kafka.down()
