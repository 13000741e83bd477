"""A sink places each ack in its row's gate partition (`topics.ack_partition`) once the cluster
lists the ack topic's partitions. A sink started before that (its topics applied after it) asks
again from its windows, every `PLACE_RETRY_S`, instead of leaving every ack to librdkafka's
partitioner (and the worker's gate hop) until it restarts.

The engine runs with its Kafka edges replaced: a producer that answers a partition count from a
list and remembers what it placed, a consumer with nothing to hand out, the project's `FakeClock`.
"""

from __future__ import annotations

import pytest

from connectors.common import sink as sink_module
from connectors.common.clock import FakeClock
from connectors.common.kafka import KafkaConfig
from connectors.common.sink import PLACE_RETRY_S, SinkEngine, SinkSettings
from tests.unit.connectors.test_sink_dead_letters import Accepts
from topics import ack_partition

pytestmark = pytest.mark.unit


class Listing:
    """A producer whose cluster lists the ack topic with the partitions given, one answer a call."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = answers
        self.asked = 0
        self.placed: dict[str, object] = {}

    def partitions(self, topic: str, timeout: float = 10.0) -> int:
        self.asked += 1
        return self.answers.pop(0)

    def place(self, topic: str, partition_of: object) -> None:
        self.placed[topic] = partition_of

    async def produce_all(self, records: list[object]) -> None:
        assert not records  # an empty window produces nothing


class Idle:
    def consume(self, *_: object) -> list[object]:
        return []

    def assignment(self) -> list[object]:
        return []

    def position(self, partitions: list[object]) -> list[object]:
        return []  # nothing fetched yet: no position


def started(monkeypatch: pytest.MonkeyPatch, answers: list[int]) -> tuple[SinkEngine, Listing, FakeClock]:
    monkeypatch.setattr(sink_module, "AsyncProducer", lambda *_, **__: Listing(answers))
    monkeypatch.setattr(sink_module, "read_compacted", lambda *_: {})
    monkeypatch.setattr(sink_module, "commands_consumer", lambda *_, **__: Idle())
    clock = FakeClock()
    eng = SinkEngine(SinkSettings(target="finance"), KafkaConfig(), Accepts(), clock=clock)  # type: ignore[arg-type]
    return eng, eng.producer, clock  # type: ignore[return-value]


async def test_a_sink_started_before_its_ack_topic_is_listed_places_acks_once_it_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    eng, producer, clock = started(monkeypatch, [0, 0, 3])
    await eng.start()
    assert producer.placed == {}  # not listed: librdkafka places them meanwhile

    await eng.step()
    assert producer.asked == 1  # not asked again before PLACE_RETRY_S

    clock.advance(PLACE_RETRY_S)
    await eng.step()
    assert (producer.asked, producer.placed) == (2, {})  # still not listed

    clock.advance(PLACE_RETRY_S)
    await eng.step()
    placer = producer.placed["sync.applied.finance"]
    key = "ProjectsV2(dataAreaId='usmf',ProjectID='PRJ-0001')"
    assert placer(key.encode()) == ack_partition(key, 3)  # type: ignore[operator]

    clock.advance(10 * PLACE_RETRY_S)
    await eng.step()
    assert producer.asked == 3  # placed: never asked again


async def test_a_sink_whose_ack_topic_is_listed_places_acks_from_its_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    eng, producer, clock = started(monkeypatch, [3])
    await eng.start()
    assert list(producer.placed) == ["sync.applied.finance"]
    clock.advance(10 * PLACE_RETRY_S)
    await eng.step()
    assert producer.asked == 1
