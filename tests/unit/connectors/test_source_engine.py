"""The source loop with a scripted reader and an in-memory producer (no Kafka, no HTTP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connectors.common.auth import ForeignOrigin
from connectors.common.clock import FakeClock
from connectors.common.errors import PositionExpired, Rejected
from connectors.common.images import ImageStore
from connectors.common.kafka import KafkaConfig
from connectors.common.source import (
    BadRecord,
    Change,
    Page,
    SourceEngine,
    SourceSettings,
    UnreadableAnswer,
    UntrustedPosition,
    record_size,
)
from topics import (
    DLQ_TRUNCATED_HEADER,
    ChangeEvent,
    Source,
    SourceOffset,
    decode_event,
    decode_model,
)

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

    async def produce_all(self, records: list[tuple[str, bytes | None, bytes | None, Any]],
                          *, flush: bool = False) -> None:
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
        self.images = ImageStore()
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


def engine(reader: ScriptedReader, kafka: KafkaConfig | None = None) -> tuple[SourceEngine, MemoryProducer]:
    producer = MemoryProducer()
    settings = SourceSettings(system="dataverse", tables=("accounts",), dlq_topic="dlq", offsets_topic="offsets")
    return SourceEngine(settings, kafka or KafkaConfig(), reader, FakeClock(), producer), producer  # type: ignore[arg-type]


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
    assert dlq_headers["dlq.stage"] == b"capture" and dlq_headers["dlq.error.message"] == b"no id"
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


def big(key: str, version: int, **after: Any) -> Change:
    source = Source(system="dataverse", table="accounts", version=str(version), ts_ms=1)
    return Change(key, ChangeEvent(after={"accountid": key, **after}, op="u", ts_ms=1, source=source))


async def test_a_row_over_the_producer_limit_is_dead_lettered_cut_to_fit_and_the_page_goes_on() -> None:
    limit = 2000  # message.max.bytes as the producer is configured (librdkafka's default is 1 MB)
    page = Page([change("a", 5), big("b", 6, note="x" * 5000), change("c", 7),
                 BadRecord(b"y" * 9000, "row without id")], "tok-7", False)
    source, producer = engine(ScriptedReader([], [page]), KafkaConfig(client={"message.max.bytes": str(limit)}))
    source.positions["accounts"] = "tok-4"
    await source.step("accounts")
    topic = "dataverse.cdc.accounts"
    assert summary(producer) == [(topic, "u", "false"), ("dlq", None, None), (topic, "u", "false"),
                                 ("dlq", None, None), ("offsets", "tok-7", None)]
    for _topic, key, value, headers in (producer.records[1], producer.records[3]):
        assert record_size(key, value, headers) <= limit  # the dead letter itself fits
    oversized, nameless = dict(producer.records[1][3]), dict(producer.records[3][3])
    assert oversized["dlq.stage"] == b"capture" and oversized["dlq.error.class"] == b"OversizedRow"
    assert int(oversized[DLQ_TRUNCATED_HEADER]) > 5000 and b"over the producer's message.max.bytes" in \
        oversized["dlq.error.message"]
    assert producer.records[1][1] == b'{"id":"b"}'  # the original key
    assert producer.records[1][2].startswith(b'{"before":null,"after":{"accountid":"b","note":"xxx')
    assert nameless[DLQ_TRUNCATED_HEADER] == b"9000" and nameless["dlq.error.message"] == b"row without id"
    assert source.positions["accounts"] == "tok-7"  # past the dead letters: they are not lost


async def test_integers_beyond_64_bits_are_dead_lettered_with_their_digits() -> None:
    page = Page([big("a", 5, amount=2**70), change("b", 6)], "tok-6", False)
    source, producer = engine(ScriptedReader([], [page]))
    source.positions["accounts"] = "tok-4"
    await source.step("accounts")
    assert [r[0] for r in producer.records] == ["dlq", "dataverse.cdc.accounts", "offsets"]
    headers = dict(producer.records[0][3])
    assert headers["dlq.error.class"] == b"UnencodableRow" and headers["dlq.stage"] == b"capture"
    assert str(2**70).encode() in producer.records[0][2]


async def test_a_key_that_cannot_be_written_is_a_dead_letter_and_the_page_goes_on() -> None:
    """A lone surrogate is valid in a JSON text, not in UTF-8: a row whose key holds one used to
    fail its whole page, again on every retry, and stop the table."""
    page = Page([change("a-\ud800", 3), change("b", 4)], "tok-5")
    source, producer = engine(ScriptedReader([], [page]))
    source.positions["accounts"] = "tok-4"
    await source.step("accounts")
    assert [r[0] for r in producer.records] == ["dlq", "dataverse.cdc.accounts", "offsets"]
    headers = dict(producer.records[0][3])
    assert headers["dlq.error.class"] == b"UnencodableRow"
    assert b"a-\\ud800" in headers["dlq.error.message"]  # the key named, escaped
    assert producer.records[1][1] == b'{"id":"b"}'


class TwoTables:
    """"good" answers a change per poll; "bad" fails every way a source can, one after another."""

    system = "dataverse"
    failures = [UnreadableAnswer("GET bad: answer is not JSON"), RuntimeError("a bug in a reader"),
                Rejected("GET bad", status=403), ForeignOrigin("next link points elsewhere"),
                ValueError("junk")] * 3

    def __init__(self) -> None:
        self.images = ImageStore()
        self.polls = 0
        self.bad_calls = 0

    async def snapshot(self, table: str) -> AsyncIterator[Page]:
        yield Page([], "tok-0", False)

    async def changes(self, table: str, position: str) -> Page:
        if table == "bad":
            self.bad_calls += 1
            raise self.failures[(self.bad_calls - 1) % len(self.failures)]
        self.polls += 1
        return Page([change(f"g{self.polls}", self.polls)], f"tok-{self.polls}", False)

    async def aclose(self) -> None:
        pass


async def test_a_table_in_trouble_backs_off_and_never_stops_the_others(caplog: pytest.LogCaptureFixture) -> None:
    reader = TwoTables()
    producer = MemoryProducer()
    settings = SourceSettings(system="dataverse", tables=("good", "bad"), dlq_topic="dlq", offsets_topic="offsets",
                              poll_interval_s=1.0, max_backoff_s=8.0)
    clock = FakeClock()
    source = SourceEngine(settings, KafkaConfig(), reader, clock, producer)  # type: ignore[arg-type]

    async def no_checkpoints() -> None:
        source.positions.update({"good": "tok-0", "bad": "tok-0"})

    source.load = no_checkpoints  # type: ignore[method-assign]
    stop = asyncio.Event()
    run = asyncio.create_task(source.run(stop))
    while reader.bad_calls < 12:
        assert not run.done(), run.exception()
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(run, 5)  # returns normally: nothing escaped
    assert reader.polls >= 12 and source.positions["good"] == f"tok-{reader.polls}"
    bad_waits = [s for s in clock.sleeps if s != 1.0]
    assert bad_waits[:3] == [2.0, 4.0, 8.0] and set(bad_waits) == {2.0, 4.0, 8.0}  # doubling, capped
    assert "a bug in a reader" in caplog.text and "Traceback" in caplog.text  # logged with its stack
    assert "next link points elsewhere" in caplog.text


async def test_untrusted_checkpoint_is_refused_loudly_and_the_table_takes_a_fresh_snapshot(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    reader = ScriptedReader([Page([change("a", 9, "r", "true")], "tok-9", False)],
                            [UntrustedPosition("accounts: stored delta link points to https://evil.example:443")])
    source, producer = engine(reader)
    source.positions["accounts"] = "https://evil.example/api/data/v9.2/accounts?$deltatoken=1"
    await source.step("accounts")
    assert reader.snapshots == 1 and source.positions["accounts"] == "tok-9"
    assert summary(producer)[-1] == ("offsets", "tok-9", None)
    assert "checkpoint refused" in caplog.text and "evil.example" in caplog.text


class FailingOnce(MemoryProducer):
    """Kafka refuses the first page; the engine's step fails with it."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def produce_all(self, records: list[tuple[str, bytes | None, bytes | None, Any]],
                          *, flush: bool = False) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("broker unreachable")
        await super().produce_all(records)


class StagingReader(ScriptedReader):
    """Stages its pages' images as it reads them, as the real readers do."""

    async def changes(self, table: str, position: str) -> Page:
        page = await super().changes(table, position)
        self.images.remember(table, page.items)
        return page


async def test_images_become_before_images_only_once_their_events_are_in_kafka() -> None:
    reader = StagingReader([], [Page([change("a", 5)], "tok-5", False)] * 2)
    reader.images.remember("accounts", [change("a", 4)])
    await reader.images.commit("accounts")
    producer = FailingOnce()
    settings = SourceSettings(system="dataverse", tables=("accounts",), dlq_topic="dlq", offsets_topic="offsets")
    source = SourceEngine(settings, KafkaConfig(), reader, FakeClock(), producer)  # type: ignore[arg-type]
    source.positions["accounts"] = "tok-4"
    with pytest.raises(RuntimeError, match="broker unreachable"):
        await source.step("accounts")
    after = reader.images.get("accounts", "a")
    assert after is not None and after["v"] == 4  # the page is read again against what was emitted
    await source.step("accounts")
    after = reader.images.get("accounts", "a")
    assert after is not None and after["v"] == 5


class IdleClock(FakeClock):
    """A clock whose sleeps last until cancelled: an idle table's long wait."""

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


async def test_a_page_of_a_transaction_wakes_the_idle_pollers_of_its_other_tables() -> None:
    """A transaction that also wrote an idle table (a contract deleted with its lines) is
    captured whole within a poll, not an idle interval later, when the processor's transaction
    timeout would already have released it in parts."""
    related = frozenset({"salesorderdetails", "not-ours"})
    reader = ScriptedReader([], [Page([change("a", 6)], "tok-6", False)])
    settings = SourceSettings(system="dataverse", tables=("accounts", "salesorderdetails"), dlq_topic="dlq",
                              offsets_topic="offsets")
    source = SourceEngine(settings, KafkaConfig(), reader, IdleClock(), MemoryProducer())  # type: ignore[arg-type]
    source.positions["accounts"] = "tok-4"
    stop = asyncio.Event()
    idle = asyncio.ensure_future(source._wait(stop, 30.0, source._wakes["salesorderdetails"]))
    await source.step("accounts")  # a page of no transaction with other tables: no wake
    await asyncio.sleep(0.05)
    assert not idle.done()
    source.positions["accounts"] = "tok-4"
    reader.script.insert(0, Page([change("a", 5)], "tok-5", False, related=related))
    await source.step("accounts")
    await asyncio.wait_for(idle, 1.0)  # woken at once (a table it does not run is ignored)
    assert not source._wakes["salesorderdetails"].is_set()  # taken: its next wait is a full one
