"""The generic source loop: change feed -> CDC topics, checkpoints after Kafka's acks.

Per table:
1. load the latest checkpoint from ``sync.source-offsets``; without one (or when the stored
   position has expired) take a snapshot: the reader captures the change-feed position BEFORE
   it reads the rows, so snapshot-then-stream has no gap (the overlap is removed downstream by
   version). Snapshot events are ``op: "r"``, the final one ``source.snapshot = "last"``;
2. poll changes from the position, produce each event (a delete is followed by a tombstone),
   dead-letter rows the reader could not describe, await every delivery, and only then write
   the new position to ``sync.source-offsets`` (and await that too);
3. sleep ``poll_interval_s`` when the feed is drained.
A crash between 2's produce and its checkpoint re-emits that page after restart: duplicates,
never a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from connectors.common import metrics
from connectors.common.checkpoints import CheckpointStore
from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import AuthFailed, PositionExpired, Rejected, RetryLater
from connectors.common.kafka import AsyncProducer, Headers, KafkaConfig
from topics import ChangeEvent, SourceOffset, System, cdc_topic, dlq_headers, encode, encode_key

__all__ = ["BadRecord", "Change", "ChangeReader", "Page", "SourceEngine", "SourceSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One captured change of one row, ready for its CDC topic."""

    key: str
    event: ChangeEvent


@dataclass(frozen=True)
class BadRecord:
    """An API payload the reader could not turn into an event (goes to the DLQ)."""

    payload: bytes
    reason: str


def row_image(row: dict[str, Any]) -> dict[str, Any]:
    """The row without OData/emulator annotations (``@odata.etag``, ``x@OData...``)."""
    return {k: v for k, v in row.items() if "@" not in k}


def iso_ms(value: Any) -> int | None:
    """An ISO timestamp as ms since the epoch; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


class ImageCache:
    """The last image seen of each record per table, so a delete can carry its before-image.

    Bounded (least recently seen records go first): it lives only as long as the process, so a
    delete of a record not seen since the start carries just its key.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._tables: dict[str, OrderedDict[str, dict[str, Any]]] = {}

    def table(self, table: str) -> OrderedDict[str, dict[str, Any]] | None:
        return self._tables.get(table)

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        return self._tables.get(table, OrderedDict()).get(key)

    def remember(self, table: str, items: list[Change | BadRecord]) -> None:
        cache = self._tables.setdefault(table, OrderedDict())
        for item in items:
            if isinstance(item, Change):
                if item.event.after is not None:
                    cache[item.key] = item.event.after
                    cache.move_to_end(item.key)
                else:
                    cache.pop(item.key, None)
        while len(cache) > self.limit:
            cache.popitem(last=False)


@dataclass
class Page:
    """Changes read in one call and the position after them."""

    items: list[Change | BadRecord] = field(default_factory=list)
    position: str = ""
    more: bool = False  # another page can be read right away


class ChangeReader(Protocol):
    """What a system contributes to a source."""

    system: System

    def snapshot(self, table: str) -> AsyncIterator[Page]:
        """Every current row as ``op: "r"`` pages; the last page's ``position`` is the feed
        position captured before the first row was read."""

    async def changes(self, table: str, position: str) -> Page:
        """Changes after ``position``; raises `PositionExpired` when it can't be read any more."""

    async def aclose(self) -> None:
        """Release the HTTP client."""


class SourceSettings(BaseModel):
    """Tables, topics and pacing of one source (topic names injectable for test isolation)."""

    model_config = ConfigDict(frozen=True)

    system: System
    tables: tuple[str, ...] = Field(description="Entity sets / public collections to capture.")
    poll_interval_s: float = Field(default=2.0, gt=0, description="Wait between polls of a drained feed.")
    offsets_topic: str = Field(default="sync.source-offsets", description="Compacted checkpoint topic.")
    dlq_topic: str = Field(default="sync.dlq", description="Dead letters.")
    topic_prefix: str = Field(default="", description="Prefix of the CDC topic names (tests).")
    checkpoint_table_prefix: str = Field(default="", description="Prefix of checkpoint keys (tests).")

    def topic(self, table: str) -> str:
        return self.topic_prefix + cdc_topic(self.system, table)


Record = tuple[str, bytes | None, bytes | None, Headers | None]


class SourceEngine:
    def __init__(self, settings: SourceSettings, kafka: KafkaConfig, reader: ChangeReader,
                 clock: Clock | None = None, producer: AsyncProducer | None = None) -> None:
        self.settings = settings
        self.reader = reader
        self.clock = clock or SystemClock()
        self.producer = producer or AsyncProducer(kafka)
        self.checkpoints = CheckpointStore(kafka, self.producer, settings.offsets_topic)
        self.positions: dict[str, str] = {}
        self.system = settings.system

    def _ckpt_table(self, table: str) -> str:
        return self.settings.checkpoint_table_prefix + table

    async def load(self) -> None:
        stored = await self.checkpoints.load(self.system)
        prefix = self.settings.checkpoint_table_prefix
        for table in self.settings.tables:
            offset = stored.get(prefix + table)
            if offset is not None and offset.snapshot_done:
                self.positions[table] = offset.position

    async def close(self) -> None:
        self.producer.close()
        await self.reader.aclose()

    async def run(self, stop: asyncio.Event) -> None:
        await self.load()
        try:
            tasks = [asyncio.create_task(self._run_table(t, stop)) for t in self.settings.tables]
            await asyncio.gather(*tasks)
        finally:
            await self.close()

    async def _run_table(self, table: str, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                more = await self.step(table)
            except RetryLater as exc:
                log.warning("source %s/%s: %s", self.system, table, exc.reason)
                await self._wait(stop, exc.retry_after or self.settings.poll_interval_s)
                continue
            except PositionExpired as exc:
                # Raised while (re-)snapshotting, e.g. a paging link that went stale: start over.
                log.warning("source %s/%s: %s; starting over", self.system, table, exc)
                self.positions.pop(table, None)
                await self._wait(stop, self.settings.poll_interval_s)
                continue
            except AuthFailed:
                raise
            except Rejected as exc:
                # A refused read (403, 404 table) does not heal by itself, but must not kill
                # the other tables: keep asking at the poll interval so a fix is picked up.
                log.error("source %s/%s refused: %s %s", self.system, table, exc.reason, exc.body)
                await self._wait(stop, self.settings.poll_interval_s * 5)
                continue
            if not more:
                await self._wait(stop, self.settings.poll_interval_s)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        sleeper = asyncio.create_task(self.clock.sleep(seconds))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (sleeper, stopper):
            task.cancel()

    async def step(self, table: str) -> bool:
        """Snapshot (if no position) or one change poll; True if more is ready right away."""
        position = self.positions.get(table)
        if position is None:
            await self.snapshot(table)
            return True
        try:
            page = await self.reader.changes(table, position)
        except PositionExpired as exc:
            log.warning("source %s/%s: position expired (%s); taking a fresh snapshot",
                        self.system, table, exc)
            await self.snapshot(table)
            return True
        await self._emit(table, page.items)
        if page.position and page.position != position:
            await self._checkpoint(table, page.position)
        return page.more

    async def snapshot(self, table: str) -> None:
        held: Change | None = None
        position = ""
        async for page in self.reader.snapshot(table):
            items = list(page.items)
            if held is not None:
                items.insert(0, held)
            # Keep the newest good change back: only the final one is marked "last".
            held = None
            for index in range(len(items) - 1, -1, -1):
                item = items[index]
                if isinstance(item, Change):
                    held = item
                    del items[index]
                    break
            await self._emit(table, items)
            position = page.position
        if held is not None:
            source = held.event.source.model_copy(update={"snapshot": "last"})
            await self._emit(table, [Change(held.key, held.event.model_copy(update={"source": source}))])
        await self._checkpoint(table, position)
        log.info("source %s/%s: snapshot done, streaming from %s", self.system, table, position)

    async def _emit(self, table: str, items: list[Change | BadRecord]) -> None:
        topic = self.settings.topic(table)
        records: list[Record] = []
        for item in items:
            if isinstance(item, BadRecord):
                headers = dlq_headers(stage="source", error_class="SourcePayloadError",
                                      message=item.reason, topic=topic,
                                      ts_ms=int(self.clock.time() * 1000))
                records.append((self.settings.dlq_topic, None, item.payload, list[tuple[str, str | bytes | None]](headers)))
                metrics.DLQ.labels(self.system, "source").inc()
                continue
            key = encode_key(item.key)
            records.append((topic, key, encode(item.event), None))
            if item.event.op == "d":
                records.append((topic, key, None, None))  # tombstone: compaction may drop the row
            metrics.EVENTS.labels(self.system, item.event.op).inc()
        await self.producer.produce_all(records)

    async def _checkpoint(self, table: str, position: str) -> None:
        offset = SourceOffset(system=self.system, table=self._ckpt_table(table), position=position,
                              snapshot_done=True, ts_ms=int(self.clock.time() * 1000))
        await self.checkpoints.save(offset)
        self.positions[table] = position
