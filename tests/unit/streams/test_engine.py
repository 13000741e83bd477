"""`streams.engine` without a broker: where its gate records go, its marks, one change through
ingest and the gatekeeper in place. The producer is a recorder (Kafka is the integration
tier's: `tests/integration/streams/test_engine.py`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from streams import StreamsConfig, create_app
from streams.engine import Engine, _Record
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
