"""A transaction member the processor will not write reaches the sink as a ``skip``: it completes
the change set's count, so the members that are written go at once, and nothing is written or
acked for it.

The engine runs with its Kafka edges replaced: a consumer handing out one window, a producer
that keeps what it was given, and a writer that accepts everything and remembers it.
"""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import TopicPartition

from connectors.common.sink import SinkEngine, SinkSettings
from connectors.common.sinkstate import Write
from connectors.common.writer import Outcome
from tests.unit.connectors.fakes import command
from tests.unit.connectors.test_sink_dead_letters import TOPIC, Accepts, FakeMessage, engine
from topics import Command

pytestmark = pytest.mark.unit


class OneWindow:
    """A consumer that hands out the given commands once, then nothing."""

    def __init__(self, commands: list[Command], first_offset: int = 0) -> None:
        self.messages = [FakeMessage(c, first_offset + i) for i, c in enumerate(commands)]
        self.committed: list[int] = []

    def consume(self, *_: object) -> list[FakeMessage]:
        out, self.messages = self.messages, []
        return out

    def commit(self, offsets: list[object], asynchronous: bool = True) -> None:
        self.committed += [o.offset for o in offsets]  # type: ignore[attr-defined]

    def assignment(self) -> list[object]:
        return []

    def position(self, partitions: list[object]) -> list[object]:
        return []  # nothing fetched yet: no position


class Records(Accepts):
    async def write(self, units: list[list[Write]], *_: object) -> list[Outcome]:
        self.written += [w.command for unit in units for w in unit]
        return await super().write(units)


def skip(key: str, tx_size: int) -> Command:
    written = command(key, 1, txid="t", tx_size=tx_size)
    return written.model_copy(update={"op": "skip", "fields": {}, "key": {"skip": f"guid-{key}"}})


async def window(eng: SinkEngine, commands: list[Command], first_offset: int = 0) -> OneWindow:
    consumer = OneWindow(commands, first_offset)
    eng._consumer = consumer  # type: ignore[assignment]
    await eng.step()
    return consumer


async def test_a_skip_completes_its_transaction_at_once_and_is_never_written(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = Records()
    eng, producer = engine(writer, monkeypatch)
    members = [command("P-1", 1, txid="t", tx_size=3), skip("P-2", 3), command("P-3", 1, txid="t", tx_size=3)]
    consumer = await window(eng, members)
    assert not eng._held  # not waiting tx_wait_s for a member that never comes
    assert [c.key["ProjectId"] for c in writer.written] == ["P-1", "P-3"]
    assert [r[1] for r in producer.records] == [b"ProjectsV2(ProjectId='P-1',dataAreaId='usmf')",
                                               b"ProjectsV2(ProjectId='P-3',dataAreaId='usmf')"]
    assert consumer.committed == [3]


async def test_without_its_skip_a_transaction_is_held(monkeypatch: pytest.MonkeyPatch) -> None:
    writer = Records()
    eng, _ = engine(writer, monkeypatch)
    consumer = await window(eng, [command("P-1", 1, txid="t", tx_size=3), command("P-3", 1, txid="t", tx_size=3)])
    assert len(eng._held) == 2 and writer.written == [] and consumer.committed == []


def test_a_skip_outside_a_transaction_or_with_fields_is_refused() -> None:
    with pytest.raises(ValueError, match="skip command stands for a transaction's member"):
        Command.model_validate({**skip("P-2", 3).model_dump(), "tx_size": None})
    with pytest.raises(ValueError, match="skip command stands for a transaction's member"):
        Command.model_validate({**skip("P-2", 3).model_dump(), "fields": {"ProjectName": "x"}})


class Assigned(OneWindow):
    """One window's consumer that owns partition 0 and whose commits the group never confirms."""

    def assignment(self) -> list[object]:
        return [TopicPartition(TOPIC, 0)]


async def test_a_commit_the_group_never_confirmed_is_sent_again_from_an_idle_window(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The group deleted and re-created (a replay), the last asynchronous commit refused, no later
    # record on the partition: without a second send the group would stay short for good.
    eng, _ = engine(Records(), monkeypatch)
    eng._commits.resend_after_s = 0.0
    consumer = Assigned([command("P-1", 1), command("P-2", 1)], 42)
    eng._consumer = consumer  # type: ignore[assignment]
    await eng.step()
    assert consumer.committed == [44]
    await eng.step()  # nothing new on the partition: the unconfirmed commit goes again
    assert consumer.committed == [44, 44]
    eng._on_commit(None, [TopicPartition(TOPIC, 0, 44)])  # confirmed
    await eng.step()
    assert consumer.committed == [44, 44]


async def test_records_finished_while_an_earlier_one_was_held_are_committed_when_it_is_released(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A replay test: a transaction member held for its missing peers, the records after it on
    # its partition finished in the same window; 30 s later the member was released and the
    # commit went just past it, never past the others: the group stayed two records short.
    eng, _ = engine(Records(), monkeypatch, SinkSettings(target="finance", tx_wait_s=0.01))
    first = await window(eng, [command("P-1", 1, txid="t", tx_size=2), command("P-2", 1)], 7)
    assert len(eng._held) == 1 and first.committed == [7]  # not past the held member
    await asyncio.sleep(0.02)  # past tx_wait_s: it goes as far as it got
    second = await window(eng, [], 9)
    assert not eng._held and second.committed == [9]  # past P-2 too, finished a window ago
