"""The batch engine (`streams.engine`) on a real broker: each batch one Kafka transaction, so a
worker killed anywhere leaves no trace of its open batch. Commands are read committed (as the
sinks read them): each change's command exactly once, across SIGKILLs and across workers."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.streams import scenario as s
from tests.integration.streams.harness import Cdc, Reader, WorkerProcess

pytestmark = pytest.mark.integration

N = 1500


def _project(i: int) -> tuple[str, dict]:
    guid = f"p{i:07d}-0000-0000-0000-000000000000"
    return guid, {**s.project_row(f"Project {i}"), "msdyn_projectid": guid, "msdyn_projectnumber": f"PRJ-{i:05d}"}


def _send(cdc: Cdc, numbers: range, version: int = 10) -> set[str]:
    """Project creates, produced in one go; the command ids they must make."""
    for i in numbers:
        guid, row = _project(i)
        cdc.change("dataverse", "msdyn_projects", guid, row, version + i, op="c", flush=False)
    cdc.producer.flush(30)
    return {f"projects:{_project(i)[0]}:{version + i}" for i in numbers}


def _batch_worker(kafka_bootstrap: str, app_id: str, prefix: str, tmp_path: Path, name: str) -> WorkerProcess:
    proc = WorkerProcess(kafka_bootstrap, app_id, prefix, tmp_path / name, tmp_path / f"{name}.log")
    proc.args += ["--engine", "batch", "--instance-id", name, "--log-level", "info"]
    return proc


@pytest.fixture
def workers(kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    made = [_batch_worker(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path, name) for name in ("w1", "w2")]
    yield made
    for w in made:
        w.stop()


def _exactly_once(reader: Reader, expected: set[str], workers: list[WorkerProcess], timeout: float = 180) -> None:
    def check() -> None:
        for w in workers:
            if w.proc is not None and w.proc.poll() is not None:
                w.check()

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and {c.command_id for c in reader.commands()} < expected:
        check()
        reader.drain(1)
    reader.drain(3)  # anything a duplicate would add comes within this
    counts = Counter(c.command_id for c in reader.commands())
    tails = "\n".join(w.tail() for w in workers)
    assert set(counts) == expected, (len(set(counts)), len(expected), tails)
    assert [cid for cid, n in counts.items() if n > 1] == [], tails


def test_every_command_exactly_once_across_sigkills_mid_batch(
        workers: list[WorkerProcess], cdc: Cdc, finance_commands: Reader) -> None:
    worker = workers[0]
    s.seed_lookups(cdc)
    expected = _send(cdc, range(N))
    worker.start()
    for kills in range(3):  # killed while it works through the backlog, at a different point each time
        seen = len(finance_commands.commands())
        finance_commands.poll_until(lambda r, seen=seen: len(r) >= seen + 1, timeout=90, worker=worker)
        time.sleep(0.05 * kills)
        worker.kill()
        expected |= _send(cdc, range(N + 100 * kills, N + 100 * (kills + 1)))
        worker.start()
    _exactly_once(finance_commands, expected, [worker])


def test_tables_recovered_from_the_changelogs_alone_keep_deduplicating(
        workers: list[WorkerProcess], cdc: Cdc, finance_commands: Reader, tmp_path: Path) -> None:
    """RocksDB lost (a new machine): the tables are read back from their changelogs, and a
    replay of changes already handled makes no command."""
    worker = workers[0]
    s.seed_lookups(cdc)
    expected = _send(cdc, range(200))
    worker.start()
    _exactly_once(finance_commands, expected, [worker])
    worker.kill()
    shutil.rmtree(tmp_path / "w1")
    before = len(finance_commands.commands())
    _send(cdc, range(200))  # the same versions again
    expected |= _send(cdc, range(200, 210))
    worker.start()
    _exactly_once(finance_commands, expected, [worker])
    assert len(finance_commands.commands()) == before + 10, worker.tail()
    assert "caught up" in worker.tail()


def test_two_workers_share_the_partitions_and_a_killed_ones_move_to_the_other(
        workers: list[WorkerProcess], cdc: Cdc, finance_commands: Reader, kafka_bootstrap: str,
        unique: str) -> None:
    """A gate key of the other worker's partition crosses the gate topic; killing one worker
    (its partitions move after the session timeout) leaves every command exactly once."""
    s.seed_lookups(cdc)
    for w in workers:
        w.start()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not all("Joined group" in w.tail() for w in workers):
        for w in workers:
            w.check()
        time.sleep(0.5)
    expected = _send(cdc, range(N))
    finance_commands.poll_until(lambda r: len(r) >= 50, timeout=90)
    workers[1].kill()
    expected |= _send(cdc, range(N, N + 200))
    _exactly_once(finance_commands, expected, workers[:1], timeout=240)
    gate = Reader(kafka_bootstrap, f"streams-{unique}-gate", f"gate-{unique}")
    try:
        crossed = gate.drain(3)
    finally:
        gate.close()
    assert crossed, "no gate record crossed the topic between the two workers"


def test_an_ack_in_any_partition_is_handled_where_it_is_read(
        workers: list[WorkerProcess], cdc: Cdc, finance_commands: Reader, kafka_bootstrap: str,
        unique: str) -> None:
    """One worker owns every gate partition: an ack the sink did not place (a sink of an earlier
    release) releases the task waiting for its project without crossing the gate topic."""
    worker = workers[0]
    worker.start()
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")
    finance_commands.poll_until(lambda r: any(c.entity == "ProjectsV2" and c.op == "upsert"
                                              for c in finance_commands.commands()), timeout=90, worker=worker)
    (project,) = [c for c in finance_commands.commands() if c.entity == "ProjectsV2" and c.op == "upsert"]
    s.ack(cdc, project, placed=False)
    finance_commands.poll_until(lambda r: any(c.entity == "ProjectTasks" for c in finance_commands.commands()),
                                timeout=60, worker=worker)
    assert [c.key["Task"] for c in finance_commands.commands() if c.entity == "ProjectTasks"] == ["1"], worker.tail()
    gate = Reader(kafka_bootstrap, f"streams-{unique}-gate", f"gate-{unique}")
    try:
        assert gate.drain(3) == []
    finally:
        gate.close()


def test_a_read_committed_position_passes_what_is_never_delivered(kafka_bootstrap: str, unique: str) -> None:
    """What the engine's first batch counts on (`Engine._read_to_the_end`) and its commits too:
    a partition whose committed offset is followed only by a commit marker, or by an aborted
    transaction and its marker, delivers no record, and the consumer's position reaches the
    partition's end anyway."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"markers-{unique}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # kept: the future needs its handle
    (done,) = admin.create_topics([NewTopic(topic, 2, 1)]).values()
    done.result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": f"markers-{unique}"})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"committed", b"k", partition=0)
    producer.produce(topic, b"committed", b"k", partition=1)
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(topic, b"aborted", b"k", partition=1)
    producer.flush(30)
    producer.abort_transaction(30)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"markers-{unique}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        # A record and its commit marker; then an aborted record and its marker. A read-committed
        # consumer is told the last stable offset, which passes the abort once the coordinator
        # has written its markers (after `abort_transaction` returns).
        ends, deadline = [], time.monotonic() + 30
        while ends != [2, 4] and time.monotonic() < deadline:
            ends = [consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in tps]
            time.sleep(0.1)
        assert ends == [2, 4]
        # Committed past each partition's committed record: only markers and aborted records follow.
        consumer.commit(offsets=[TopicPartition(topic, 0, 1), TopicPartition(topic, 1, 1)], asynchronous=False)
        consumer.subscribe([topic])
        delivered, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline:
            delivered += [m for m in consumer.consume(10, 0.2) if m.error() is None]
            if [tp.offset for tp in consumer.position(tps)] == ends:
                break
        assert delivered == []
        assert [tp.offset for tp in consumer.position(tps)] == ends
    finally:
        consumer.close()
