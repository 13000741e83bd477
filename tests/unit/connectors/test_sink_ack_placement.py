"""A sink places each ack in its row's gate partition (`topics.ack_partition`) once the cluster
lists the ack topic's partitions. A sink started before that (its topics applied after it) asks
again from its windows, every `PLACE_RETRY_S`, instead of leaving every ack to librdkafka's
partitioner (and the worker's gate hop) until it restarts.

The engine runs with its Kafka edges replaced: a producer that answers a partition count from a
list and remembers what it placed, a consumer with nothing to hand out, a clock moved by hand.
"""

from __future__ import annotations

import pytest

from connectors.common import sink as sink_module
from connectors.common.kafka import KafkaConfig
from connectors.common.sink import PLACE_RETRY_S, SinkEngine, SinkSettings
from tests.unit.connectors.test_sink_dead_letters import Accepts
from topics import ack_partition

pytestmark = pytest.mark.unit


class Listing:
    """A producer whose cluster lists the ack topic with the partitions given, one answer a call."""

    answers: list[int] = []

    def __init__(self, *_: object, **__: object) -> None:
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


class HandClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def started(monkeypatch: pytest.MonkeyPatch, answers: list[int]) -> tuple[SinkEngine, Listing, HandClock]:
    Listing.answers = answers
    monkeypatch.setattr(sink_module, "AsyncProducer", Listing)
    monkeypatch.setattr(sink_module, "read_compacted", lambda *_: {})
    monkeypatch.setattr(sink_module, "commands_consumer", lambda *_, **__: Idle())
    clock = HandClock()
    eng = SinkEngine(SinkSettings(target="finance"), KafkaConfig(), Accepts(), clock=clock)  # type: ignore[arg-type]
    return eng, eng.producer, clock  # type: ignore[return-value]


async def test_a_sink_started_before_its_ack_topic_is_listed_places_acks_once_it_is(
        monkeypatch: pytest.MonkeyPatch) -> None:
    eng, producer, clock = started(monkeypatch, [0, 0, 3])
    await eng.start()
    assert producer.placed == {}  # not listed: librdkafka places them meanwhile

    await eng.step()
    assert producer.asked == 1  # not asked again before PLACE_RETRY_S

    clock.now += PLACE_RETRY_S
    await eng.step()
    assert (producer.asked, producer.placed) == (2, {})  # still not listed

    clock.now += PLACE_RETRY_S
    await eng.step()
    placer = producer.placed["sync.applied.finance"]
    key = "ProjectsV2(dataAreaId='usmf',ProjectID='PRJ-0001')"
    assert placer(key.encode()) == ack_partition(key, 3)  # type: ignore[operator]

    clock.now += 10 * PLACE_RETRY_S
    await eng.step()
    assert producer.asked == 3  # placed: never asked again


async def test_a_sink_whose_ack_topic_is_listed_places_acks_from_its_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    eng, producer, clock = started(monkeypatch, [3])
    await eng.start()
    assert list(producer.placed) == ["sync.applied.finance"]
    clock.now += 10 * PLACE_RETRY_S
    await eng.step()
    assert producer.asked == 1
