"""`streams.engine` without a broker: where its gate records go, its marks, one change through
ingest and the gatekeeper in place. The producer is a recorder (Kafka is the integration
tier's: `tests/integration/streams/test_engine.py`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streams import StreamsConfig, create_app
from streams.engine import MARK_KEY, Engine, _Record
from streams.handlers import Position
from streams.maps import present_fact
from streams.wire import TickMsg, encode_gate
from topics import cdc_topic, commands_topic, decode_command, encode_key
from topics.partitioner import partition_of

from . import rows
from .test_ingest import event

pytestmark = pytest.mark.unit


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, dict[str, Any]]] = []

    def produce(self, topic: str, value: bytes | None, key: bytes | None, **kwargs: Any) -> None:
        self.sent.append((topic, key, value, kwargs))


def _engine(tmp_path: Path, owned: set[int]) -> tuple[Engine, _Producer]:
    app = create_app(StreamsConfig(app_id="unit-engine", data_dir=tmp_path, partitions=3))
    engine = Engine(app)
    producer = _Producer()
    engine.producer = producer  # type: ignore[assignment]
    for p in owned:
        engine.stores.open(p)
    engine.owned = owned
    return engine, producer


def test_a_gate_record_of_an_owned_partition_stays_in_the_batch_and_another_crosses_the_topic(tmp_path: Path) -> None:
    engine, producer = _engine(tmp_path, {0})
    mine = next(f"k{i}".encode() for i in range(100) if partition_of(f"k{i}".encode(), 3) == 0)
    theirs = next(f"k{i}".encode() for i in range(100) if partition_of(f"k{i}".encode(), 3) == 2)
    tick = TickMsg(ts_ms=1)
    engine.send_gate(mine, None, tick)
    engine.send_gate(theirs, None, tick)
    engine.send_gate(theirs, b"as encoded", tick, partition=0)  # an explicit partition decides
    assert list(engine.local) == [(mine, None, 0, tick), (theirs, b"as encoded", 0, tick)]
    # What leaves is encoded: here, and by ingest (its value is sent as it is).
    assert [(t, k, v, kw) for t, k, v, kw in producer.sent] == [("unit-engine-gate", theirs, encode_gate(tick), {})]
    engine.send_gate(theirs, b"by ingest", tick)
    assert producer.sent[-1][2] == b"by ingest"


def test_other_records_are_produced_to_their_topic(tmp_path: Path) -> None:
    engine, producer = _engine(tmp_path, {0, 1, 2})
    engine.send("commands.finance", b"k", b"v")
    engine.send("dlq", b"k", b"v", headers=[("h", b"1")])
    assert [(t, kw) for t, _k, _v, kw in producer.sent] == [
        (commands_topic("finance"), {}), ("sync.dlq", {"headers": [("h", b"1")]})]


def test_marks_increase_in_the_order_records_are_handled_and_pass_any_offset(tmp_path: Path) -> None:
    engine, _ = _engine(tmp_path, {0})
    marks = [engine._mark() for _ in range(1000)]
    assert marks == sorted(set(marks))
    assert marks[0] > 2**50  # above any Kafka offset Faust's agents recorded as a mark
    at = Position("k", 0, 5, 0, clock=marks[0])
    assert at.mark == marks[0] and Position("k", 0, 5, 0).mark == 5 and Position("k", 0, 5, 0, "t").mark == -6


def test_the_next_owner_of_a_partition_marks_above_the_last_mark_its_parked_slots_hold(tmp_path: Path) -> None:
    """A slot takes a release marked above the record being handled for a later one: a worker
    whose clock is behind the partition's last owner (another host, a clock set back) must not
    mark below what the slots hold, or a change parked again there would be skipped."""
    ahead, _ = _engine(tmp_path, {0, 1, 2})
    producer, consumer = _Committing(), _Consumer(cdc_topic("dataverse", "msdyn_projects"))
    ahead.producer, ahead.consumer = producer, consumer  # type: ignore[assignment]
    ahead._clock = time.time_ns() // 1000 + 3_600_000_000  # an hour ahead of this host
    record = _Record(consumer.topic, 1, 8, encode_key(rows.PROJECT), event("msdyn_projects", rows.project(), 7), None)
    assert asyncio.run(ahead._committed([_Message(record)], tick=False)) is True  # type: ignore[list-item]
    parked_in = partition_of(rows.COMPANY_FACT.encode(), 3)  # it waits for its company
    last = ahead._clock
    ahead.stores.at(parked_in)
    assert ahead.stores["parked"].get(rows.COMPANY_FACT) is not None
    assert ahead.stores["states"].get(MARK_KEY) == last
    for p in {0, 1, 2} - {parked_in}:  # no parked slot written there: no mark kept
        ahead.stores.at(p)
        assert ahead.stores["states"].get(MARK_KEY) is None
    ahead.stores.close()
    taker, _ = _engine(tmp_path, {0, 1, 2})
    taker._resume_clock([parked_in])
    assert taker._mark() > last


def test_a_project_whose_facts_are_known_becomes_a_command_in_one_pass(tmp_path: Path) -> None:
    """The company and the customer are known to the view: the change is decided where it is
    consumed, its gate records handled in place; one command and nothing on the gate topic."""
    engine, producer = _engine(tmp_path, {0, 1, 2})
    engine.view.fill(rows.COMPANY_FACT, {"cdm_companycode": "usmf"})
    engine.view.fill(rows.ACCOUNT_FACT, {"accountnumber": "US-001"})
    record = _Record(cdc_topic("dataverse", "msdyn_projects"), 1, 0, encode_key(rows.PROJECT),
                     event("msdyn_projects", rows.project(), 7), None)
    asyncio.run(engine._record(record))
    topics = [t for t, *_ in producer.sent]
    assert topics == [commands_topic("finance")], topics
    command = decode_command(producer.sent[0][2] or b"")
    assert command.key == {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}
    # What the batch wrote waits for its commit: the row's state in the partition of its gate key.
    written = {(topic, p) for topic, p, _k, _v in engine.stores.changelog()}
    assert ("unit-engine-versions-changelog", 1) in written
    assert ("unit-engine-targets-changelog", partition_of(rows.PROJECT_PRESENT.encode(), 3)) in written
    assert present_fact(command.record_key) == rows.PROJECT_PRESENT


@pytest.mark.parametrize(("key", "value", "error"), [
    (b"\xff\xfe", encode_gate(TickMsg(ts_ms=1)), "UnicodeDecodeError"),
    (b"tick", b'{"kind": "nonsense"}', "ValidationError"),
    (b"tick", b"not json", "ValidationError"),
])
def test_a_gate_topic_record_that_cannot_be_read_is_a_dead_letter_and_the_line_goes_on(
        tmp_path: Path, key: bytes, value: bytes, error: str) -> None:
    engine, producer = _engine(tmp_path, {0, 1, 2})
    asyncio.run(engine._record(_Record("unit-engine-gate", 1, 7, key, value, None)))
    ((topic, dead_key, dead_value, kwargs),) = producer.sent
    headers = dict(kwargs["headers"])
    assert (topic, dead_key, dead_value) == ("sync.dlq", key, value)
    assert headers["dlq.stage"] == b"gate" and headers["dlq.error.class"] == error.encode()
    assert (headers["dlq.original.topic"], headers["dlq.original.offset"]) == (b"unit-engine-gate", b"7")


class _Refusing(_Producer):
    """A transactional producer whose commit the group refuses (a rebalance under way)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def flush(self, *_: Any) -> int:
        return 0

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], _metadata: object) -> None:
        self.calls.append(f"offsets {[(tp.partition, tp.offset) for tp in offsets]}")

    def commit_transaction(self, *_: Any) -> None:
        raise KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION, "the group moved on",
                                        txn_requires_abort=True))

    def abort_transaction(self, *_: Any) -> None:
        self.calls.append("abort")


class _Consumer:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.seeks: list[tuple[str, int, int]] = []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(self.topic, 1)]

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 9) for tp in tps]

    def consumer_group_metadata(self) -> object:
        return object()

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 4) for tp in tps]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class _Message:
    """What `Consumer.consume` returns, for one CDC record."""

    def __init__(self, record: _Record) -> None:
        self.r = record

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self.r.topic

    def partition(self) -> int:
        return self.r.partition

    def offset(self) -> int:
        return self.r.offset

    def key(self) -> bytes | None:
        return self.r.key

    def value(self) -> bytes | None:
        return self.r.value

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def test_a_batch_whose_transaction_the_group_refuses_is_aborted_forgotten_and_read_again(tmp_path: Path) -> None:
    engine, _ = _engine(tmp_path, {0, 1, 2})
    producer, consumer = _Refusing(), _Consumer(cdc_topic("dataverse", "msdyn_projects"))
    engine.producer, engine.consumer = producer, consumer  # type: ignore[assignment]
    engine.view.fill(rows.COMPANY_FACT, {"cdm_companycode": "usmf"})
    engine.view.fill(rows.ACCOUNT_FACT, {"accountnumber": "US-001"})
    record = _Record(consumer.topic, 1, 8, encode_key(rows.PROJECT), event("msdyn_projects", rows.project(), 7), None)
    aborted = _sample("dualwrite_streams_batches_aborted_total")
    assert asyncio.run(engine._committed([_Message(record)], tick=False)) is False  # type: ignore[list-item]
    assert producer.calls == ["begin", "offsets [(1, 9)]", "abort"]
    assert _sample("dualwrite_streams_batches_aborted_total") == aborted + 1
    assert engine.stores.pending() == 0 and not engine.local  # its table writes are gone
    engine.stores.at(1)
    assert engine.stores["versions"].get(f"dataverse:msdyn_projects:{rows.PROJECT}") is None
    assert consumer.seeks == [(consumer.topic, 1, 4)]  # read again from the committed offset
    assert engine._positions == {}  # the refused offsets were never committed
    assert engine.view.get(rows.COMPANY_FACT) is None  # a cache the batch may have taught, emptied


def _sample(name: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name) or 0.0


class _Committing(_Refusing):
    def commit_transaction(self, *_: Any) -> None:
        self.calls.append("commit")


def test_a_committed_batch_is_measured_for_prometheus(tmp_path: Path) -> None:
    """Its records, its time, Kafka's part of it, and when the worker last committed: a worker
    commits at every tick even idle, so a stuck one shows."""
    engine, _ = _engine(tmp_path, {0, 1, 2})
    producer, consumer = _Committing(), _Consumer(cdc_topic("dataverse", "msdyn_projects"))
    engine.producer, engine.consumer = producer, consumer  # type: ignore[assignment]
    record = _Record(consumer.topic, 1, 8, encode_key(rows.PROJECT), event("msdyn_projects", rows.project(), 7), None)
    before = {name: _sample(name) for name in ("dualwrite_streams_batch_records_count",
                                               "dualwrite_streams_batch_records_sum",
                                               "dualwrite_streams_batch_seconds_count",
                                               "dualwrite_streams_batch_commit_seconds_count")}
    assert asyncio.run(engine._committed([_Message(record)] * 3, tick=False)) is True  # type: ignore[list-item]
    assert producer.calls == ["begin", "offsets [(1, 9)]", "commit"]
    after = {name: _sample(name) for name in before}
    assert {name: after[name] - before[name] for name in before} == {
        "dualwrite_streams_batch_records_count": 1, "dualwrite_streams_batch_records_sum": 3,
        "dualwrite_streams_batch_seconds_count": 1, "dualwrite_streams_batch_commit_seconds_count": 1}
    assert abs(_sample("dualwrite_streams_last_batch_commit_timestamp_seconds") - time.time()) < 60


class _Fetched:
    def __init__(self, topic: str, partition: int) -> None:
        self._tp = (topic, partition)

    def topic(self) -> str:
        return self._tp[0]

    def partition(self) -> int:
        return self._tp[1]


class _Fetches:
    """Hands out scripted fetches, one a consume call (an empty one when the script is out), and
    the consumer's positions (``positions``; unknown, -1001, for any other partition)."""

    def __init__(self, fetches: list[list[_Fetched]], positions: dict[tuple[str, int], int] | None = None) -> None:
        self.fetches = fetches
        self.positions = positions or {}
        self.calls = 0

    def consume(self, num_messages: int, timeout: float) -> list[_Fetched]:
        self.calls += 1
        return self.fetches.pop(0) if self.fetches else []

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.positions.get((tp.topic, tp.partition), -1001))
                for tp in tps]


def test_the_first_batch_after_an_assignment_waits_for_every_partition_with_records(tmp_path: Path) -> None:
    """A replay: the project partition's fetch came first, the company's row a fetch later.
    One batch holds both, so the project is not taken before the row it looks up."""
    engine, _ = _engine(tmp_path, {0})
    projects, companies = cdc_topic("dataverse", "msdyn_projects"), cdc_topic("dataverse", "cdm_companies")
    engine._awaited = {(projects, 2): 30, (companies, 0): 1}
    first, later = [_Fetched(projects, 2)] * 3, [_Fetched(companies, 0)]
    engine.consumer = _Fetches([first, [], later, [_Fetched(projects, 2)]],  # type: ignore[assignment]
                               {(projects, 2): 3, (companies, 0): 0})
    assert engine._take() == first + later
    assert not engine._awaited
    engine.consumer = _Fetches([first, later])  # type: ignore[assignment]
    assert engine._take() == first  # then batches as they come


def test_the_first_batch_waits_a_bounded_time_for_a_partition_that_delivers_nothing(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    import streams.engine

    monkeypatch.setattr(streams.engine, "FIRST_BATCH_WAIT_S", 0.2)
    engine, _ = _engine(tmp_path, {0})
    projects = cdc_topic("dataverse", "msdyn_projects")
    # Another producer's open transaction: nothing past it can be read until it ends.
    engine._awaited = {(projects, 2): 30, ("behind-an-open-transaction", 0): 7}
    first = [_Fetched(projects, 2)]
    engine.consumer = _Fetches([first], {(projects, 2): 1, ("behind-an-open-transaction", 0): 5})  # type: ignore[assignment]
    assert engine._take() == first and not engine._awaited
    assert engine.consumer.calls > 1  # type: ignore[attr-defined]


def test_the_first_batch_does_not_wait_for_a_partition_read_to_its_end_without_a_record(tmp_path: Path,
                                                                                       monkeypatch) -> None:
    """All that was left of the partition were transaction markers (or an aborted
    transaction's records): the consumer's position passed them, no record will come."""
    import streams.engine

    monkeypatch.setattr(streams.engine, "FIRST_BATCH_WAIT_S", 5.0)
    engine, _ = _engine(tmp_path, {0})
    projects, gate = cdc_topic("dataverse", "msdyn_projects"), "only-markers-left"
    engine._awaited = {(projects, 2): 30, (gate, 0): 7}
    first = [_Fetched(projects, 2)]
    engine.consumer = _Fetches([first], {(projects, 2): 1, (gate, 0): 7})  # type: ignore[assignment]
    assert engine._take() == first and not engine._awaited
    assert engine.consumer.calls == 1  # type: ignore[attr-defined]  # no wait for more
