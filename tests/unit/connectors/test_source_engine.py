"""The source loop with a scripted reader and an in-memory producer (no Kafka, no HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.common.clock import FakeClock
from connectors.common.errors import PositionExpired
from connectors.common.kafka import KafkaConfig
from connectors.common.source import BadRecord, Change, Page, SourceEngine, SourceSettings
from topics import ChangeEvent, Source, SourceOffset, decode_event, decode_model

pytestmark = pytest.mark.unit


class MemoryProducer:
    """Records every produce in order; deliveries succeed at once."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes | None, bytes | None, Any]] = []

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> asyncio.Future[None]:
        self.records.append((topic, key, value, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def produce_all(self, records: list[tuple[str, bytes | None, bytes | None, Any]]) -> None:
        for record in records:
            await self.produce(*record)

    def close(self) -> None:
        pass


def change(key: str, version: int, op: str = "u", snapshot: str = "false") -> Change:
    source = Source(system="dataverse", table="accounts", version=str(version), ts_ms=1, snapshot=snapshot)
    if op == "d":
        return Change(key, ChangeEvent(before={"accountid": key}, after=None, op="d", ts_ms=1, source=source))
    return Change(key, ChangeEvent(after={"accountid": key, "v": version}, op=op, ts_ms=1, source=source))


class ScriptedReader:
    system = "dataverse"

    def __init__(self, snapshot_pages: list[Page], changes: list[Page | Exception]) -> None:
        self.snapshot_pages = snapshot_pages
        self.script = list(changes)
        self.snapshots = 0
        self.asked: list[str] = []

    async def snapshot(self, table: str) -> AsyncIterator[Page]:
        self.snapshots += 1
        for page in self.snapshot_pages:
            yield page

    async def changes(self, table: str, position: str) -> Page:
        self.asked.append(position)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    async def aclose(self) -> None:
        pass


def engine(reader: ScriptedReader) -> tuple[SourceEngine, MemoryProducer]:
    producer = MemoryProducer()
    settings = SourceSettings(system="dataverse", tables=("accounts",), dlq_topic="dlq", offsets_topic="offsets")
    return SourceEngine(settings, KafkaConfig(), reader, FakeClock(), producer), producer  # type: ignore[arg-type]


def summary(producer: MemoryProducer) -> list[tuple[str, str | None, str | None]]:
    out: list[tuple[str, str | None, str | None]] = []
    for topic, _key, value, _ in producer.records:
        if topic == "offsets":
            out.append((topic, decode_model(SourceOffset, value).position, None))
        elif topic == "dlq":
            out.append((topic, None, None))
        else:
            event = decode_event(value)
            out.append((topic, event.op if event else "tombstone", event.source.snapshot if event else None))
    return out


async def test_snapshot_marks_the_final_event_last_and_checkpoints_after_it() -> None:
    pages = [Page([change("a", 1, "r", "true"), change("b", 2, "r", "true")], "", True),
             Page([change("c", 3, "r", "true"), BadRecord(b"{}", "no id")], "tok-3", False)]
    reader = ScriptedReader(pages, [])
    source, producer = engine(reader)
    assert await source.step("accounts") is True
    topic = "dataverse.cdc.accounts"
    assert summary(producer) == [(topic, "r", "true"), (topic, "r", "true"), ("dlq", None, None),
                                 (topic, "r", "last"), ("offsets", "tok-3", None)]
    dlq_headers = dict(producer.records[2][3])
    assert dlq_headers["dlq.stage"] == b"source" and dlq_headers["dlq.error.message"] == b"no id"
    assert source.positions["accounts"] == "tok-3"


async def test_changes_then_delete_with_tombstone_then_checkpoint() -> None:
    reader = ScriptedReader([], [Page([change("a", 5), change("a", 6, "d")], "tok-6", False),
                                 Page([], "tok-6", False)])
    source, producer = engine(reader)
    source.positions["accounts"] = "tok-4"
    assert await source.step("accounts") is False
    assert await source.step("accounts") is False  # nothing new: no second checkpoint
    topic = "dataverse.cdc.accounts"
    assert summary(producer) == [(topic, "u", "false"), (topic, "d", "false"), (topic, "tombstone", None),
                                 ("offsets", "tok-6", None)]
    assert producer.records[2][1] == producer.records[1][1]  # tombstone shares the key
    assert reader.asked == ["tok-4", "tok-6"]


async def test_expired_position_takes_a_fresh_snapshot() -> None:
    reader = ScriptedReader([Page([change("a", 9, "r", "true")], "tok-9", False)],
                            [PositionExpired("token too old")])
    source, producer = engine(reader)
    source.positions["accounts"] = "tok-1"
    await source.step("accounts")
    assert reader.snapshots == 1 and source.positions["accounts"] == "tok-9"
    assert summary(producer)[-1] == ("offsets", "tok-9", None)


async def test_checkpoint_waits_for_every_delivery() -> None:
    """A failed delivery must leave the checkpoint where it was."""

    class FailingProducer(MemoryProducer):
        def produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Any = None) -> asyncio.Future[None]:
            future = super().produce(topic, key, value, headers)
            if topic != "offsets":
                failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                failed.set_exception(RuntimeError("broker down"))
                return failed
            return future

    reader = ScriptedReader([], [Page([change("a", 5)], "tok-5", False)])
    source, _ = engine(reader)
    source.producer = FailingProducer()  # type: ignore[assignment]
    source.checkpoints._producer = source.producer
    source.positions["accounts"] = "tok-4"
    with pytest.raises(RuntimeError):
        await source.step("accounts")
    assert source.positions["accounts"] == "tok-4"
    assert [r[0] for r in source.producer.records] == ["dataverse.cdc.accounts"]  # type: ignore[attr-defined]
