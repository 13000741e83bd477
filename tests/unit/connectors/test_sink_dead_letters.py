"""What the sink engine dead-letters for a coalesced write (issue 8, finding 9).

The engine runs with its Kafka edges replaced: a fake producer that keeps what it was given and
fake consumed messages; the writer is a stub that refuses everything.
"""

from __future__ import annotations

import pytest

from connectors.common import sink as sink_module
from connectors.common.errors import Rejected
from connectors.common.kafka import KafkaConfig, KafkaRecord
from connectors.common.sink import SinkEngine, SinkSettings, _Entry
from connectors.common.sinkstate import Write
from connectors.common.writer import Done, Failed, Outcome
from dualwrite.ops.dlq import dead_letter, retry_plan
from tests.unit.connectors.fakes import command
from topics import Command, decode_command, encode, read_headers

pytestmark = pytest.mark.unit

TOPIC = "sync.commands.finance"


class FakeMessage:
    def __init__(self, cmd: Command, offset: int) -> None:
        self._value, self._key, self._offset = encode(cmd), cmd.record_key.encode(), offset

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


class FakeProducer:
    def __init__(self, *_: object, **__: object) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, list[tuple[str, str | bytes | None]] | None]] = []

    async def produce_all(self, records: list[tuple[str, bytes | None, bytes | None,
                                                    list[tuple[str, str | bytes | None]] | None]]) -> None:
        self.records += records


class Refuses:
    """A writer that rejects every write (and remembers what it was asked to write)."""

    def __init__(self) -> None:
        self.written: list[Command] = []

    async def write(self, units: list[list[Write]], *_: object) -> list[Outcome]:
        out: list[Outcome] = []
        for unit in units:
            for w in unit:
                self.written.append(w.command)
                out.append(Failed(w, Rejected("HTTP 400", 400, "bad field", "Http400")))
        return out


class Accepts(Refuses):
    async def write(self, units: list[list[Write]], *_: object) -> list[Outcome]:
        return [Done(w) for unit in units for w in unit]


def engine(writer: object, monkeypatch: pytest.MonkeyPatch,
           settings: SinkSettings | None = None) -> tuple[SinkEngine, FakeProducer]:
    monkeypatch.setattr(sink_module, "AsyncProducer", FakeProducer)
    eng = SinkEngine(settings or SinkSettings(target="finance"), KafkaConfig(), writer)  # type: ignore[arg-type]
    assert isinstance(eng.producer, FakeProducer)
    return eng, eng.producer


async def apply(eng: SinkEngine, commands: list[Command]) -> None:
    entries = [_Entry(FakeMessage(c, i), c) for i, c in enumerate(commands)]  # type: ignore[arg-type]
    await eng._apply(commands, [], entries)


async def test_a_rejected_merged_write_is_dead_lettered_as_attempted_and_re_drivable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = command("P-1", 1, fields={"ProjectName": "Old", "Description": "kept from v1"})
    second = command("P-1", 2, fields={"ProjectName": "New"})
    writer = Refuses()
    eng, producer = engine(writer, monkeypatch)
    await apply(eng, [first, second])

    (attempted,) = writer.written
    assert attempted.fields == {"ProjectName": "New", "Description": "kept from v1"}
    (letter,) = [r for r in producer.records if r[0] == "sync.dlq"]
    _, key, value, headers = letter
    assert key == second.record_key.encode()
    dead = decode_command(value)
    assert dead == attempted  # the merged command, not v2's original bytes (which lack Description)
    names = read_headers([(k, v if isinstance(v, bytes) or v is None else v.encode()) for k, v in headers or []])
    assert names["dlq.value"] == "merged-command"
    assert names["dlq.superseded"] == first.command_id
    assert names["dlq.original.topic"] == TOPIC and names["dlq.error.class"] == "Http400"

    # `dualwrite dlq retry` sends exactly that value back to the commands topic.
    record = KafkaRecord("sync.dlq", 0, 7, key, value,
                         [(k, v if isinstance(v, bytes) or v is None else v.encode()) for k, v in headers or []], 1)
    (redriven,) = retry_plan([dead_letter(record)]).records
    assert redriven[0] == TOPIC and decode_command(redriven[2]).fields == attempted.fields


async def test_a_write_that_superseded_nothing_keeps_its_original_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    only = command("P-1", 1)
    eng, producer = engine(Refuses(), monkeypatch)
    await apply(eng, [only])
    (letter,) = [r for r in producer.records if r[0] == "sync.dlq"]
    assert letter[2] == encode(only)
    assert "dlq.value" not in {k for k, _ in letter[3] or []}


async def test_accepted_merged_writes_are_acked_not_dead_lettered(monkeypatch: pytest.MonkeyPatch) -> None:
    eng, producer = engine(Accepts(), monkeypatch)
    await apply(eng, [command("P-1", 1), command("P-1", 2)])
    assert [r[0] for r in producer.records] == ["sync.applied.finance"]


class AcceptsOddly(Refuses):
    """The target applied the write but answered with an ETag no ack can hold."""

    async def write(self, units: list[list[Write]], *_: object) -> list[Outcome]:
        return [Done(w, etag={"not": "a string"}) for unit in units for w in unit]  # type: ignore[arg-type]


async def test_an_answer_that_cannot_be_acked_is_a_dead_letter_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    eng, producer = engine(AcceptsOddly(), monkeypatch)
    await apply(eng, [command("P-1", 1)])
    (letter,) = producer.records
    assert letter[0] == "sync.dlq"
    assert dict(letter[3] or [])["dlq.error.class"] == b"ValidationError"


class RefusesInOddText(Refuses):
    """The target refuses with an error body holding a lone surrogate (valid in its JSON text)."""

    async def write(self, units: list[list[Write]], *_: object) -> list[Outcome]:
        return [Failed(w, Rejected("HTTP 400: bad value \ud800 in ProjectName", 400, "", "Http400"))
                for unit in units for w in unit]


async def test_a_refusal_in_text_that_utf8_cannot_hold_is_still_a_dead_letter(monkeypatch: pytest.MonkeyPatch) -> None:
    eng, producer = engine(RefusesInOddText(), monkeypatch)
    await apply(eng, [command("P-1", 1)])
    (letter,) = producer.records
    assert letter[0] == "sync.dlq"
    assert b"bad value \\ud800 in ProjectName" in dict(letter[3] or [])["dlq.error.message"]  # type: ignore[operator]
