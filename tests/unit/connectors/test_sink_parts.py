"""The sink engine writing a transaction larger than ``max_change_set`` (issue 11): the acks of
each part that landed are published before the next part is sent, so a retry or a crash between
parts sends again only what is not applied yet.

The engine runs with its Kafka edges replaced (a producer that keeps what it was given, fake
consumed messages) and the real Finance writer in front of a scripted ``$batch`` endpoint.
"""

from __future__ import annotations

import httpx
import pytest

from connectors.common import sink as sink_module
from connectors.common.clock import FakeClock
from connectors.common.kafka import KafkaConfig
from connectors.common.sink import SinkEngine, SinkSettings, _Entry
from connectors.finance.sink import FinanceWriter
from tests.unit.connectors.fakes import FakeApi, api_client, batch_handler, command
from tests.unit.connectors.test_sink_dead_letters import FakeMessage, FakeProducer
from tests.unit.connectors.test_writer import ROOT, change_sets, created
from topics import Command, decode_ack

pytestmark = pytest.mark.unit

KEYS = [f"T-{i}" for i in range(5)]
APPLIED = "sync.applied.finance"


class Killed(BaseException):
    """The process dies (SIGKILL) while a request is on its way."""


def transaction() -> list[Command]:
    return [command(k, 1, txid="t", tx_size=len(KEYS), fields={"ProjectName": k}) for k in KEYS]


def engine(fake: FakeApi, monkeypatch: pytest.MonkeyPatch) -> tuple[SinkEngine, FakeProducer]:
    monkeypatch.setattr(sink_module, "AsyncProducer", FakeProducer)
    clock = FakeClock()
    writer = FinanceWriter(api_client(fake, clock, base=ROOT), ROOT, batch_size=50)
    eng = SinkEngine(SinkSettings(target="finance", max_change_set=2), KafkaConfig(), writer, clock)
    assert isinstance(eng.producer, FakeProducer)
    return eng, eng.producer


async def apply(eng: SinkEngine, commands: list[Command]) -> None:
    entries = [_Entry(FakeMessage(c, i), c) for i, c in enumerate(commands)]  # type: ignore[arg-type]
    await eng._apply(commands, [], entries)


def acked(producer: FakeProducer) -> list[str]:
    return [str(decode_ack(r[2]).key["ProjectId"]) for r in producer.records if r[0] == APPLIED and r[2]]


async def test_a_landed_part_is_acked_before_the_next_and_a_retry_resends_only_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    acked_when_sent: list[list[str]] = []
    busy_once = [True]

    def answer(method: str, url: str, body: bytes) -> httpx.Response:
        if b"T-2" in body and busy_once[0]:
            busy_once[0] = False
            return httpx.Response(503, headers={"Retry-After": "2"})
        return created(method, url, body)

    batch = batch_handler(answer)

    def handler(request: httpx.Request) -> httpx.Response:
        acked_when_sent.append(acked(producer))
        return batch(request)

    fake = FakeApi(handler)
    eng, producer = engine(fake, monkeypatch)
    await apply(eng, transaction())
    assert [change_sets(r) for r in fake.calls] == [[KEYS[0:2]], [KEYS[2:4]], [KEYS[2:4]], [KEYS[4:5]]]
    # the first part's acks were published (awaited) before its second part was first sent
    assert acked_when_sent == [[], KEYS[0:2], KEYS[0:2], KEYS[0:4]]
    assert sorted(acked(producer)) == KEYS  # one ack per write, none twice
    assert not [r for r in producer.records if r[0] == "sync.dlq"]


async def test_after_a_crash_between_parts_only_what_was_not_applied_is_sent_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def dies_at_the_second_part(method: str, url: str, body: bytes) -> httpx.Response:
        if b"T-2" in body:
            raise Killed
        return created(method, url, body)

    first, producer = engine(FakeApi(batch_handler(dies_at_the_second_part)), monkeypatch)
    with pytest.raises(Killed):
        await apply(first, transaction())
    assert acked(producer) == KEYS[0:2]

    # Restarted: the applied state is read back from the acks topic; the window is redelivered.
    fake = FakeApi(batch_handler(created))
    second, _ = engine(fake, monkeypatch)
    second.state.load({r[1] or b"": r[2] for r in producer.records if r[0] == APPLIED})
    await apply(second, transaction())
    assert [change_sets(r) for r in fake.calls] == [[KEYS[2:4]], [KEYS[4:5]]]
