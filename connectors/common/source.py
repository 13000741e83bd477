"""The generic source loop: change feed -> CDC topics, checkpoints after Kafka's acks.

Per table:
1. load the latest checkpoint from ``sync.source-offsets``; without one (or when the stored
   position has expired) take a snapshot: the reader captures the change-feed position BEFORE
   it reads the rows, so snapshot-then-stream has no gap (the overlap is removed downstream by
   version). Snapshot events are ``op: "r"``, the final one ``source.snapshot = "last"``;
2. poll changes from the position, produce each event (a delete is followed by a tombstone),
   dead-letter rows the reader could not describe, await every delivery, and only then write
   the new position to ``sync.source-offsets`` (and await that too). An update or delete carries
   its record's last emitted image as ``before`` (`connectors.common.images`: durable, committed
   between the produce and the checkpoint);
3. when the feed is drained, wait as `connectors.common.pacing` decides for that table: the
   poll interval while it changes (and ``hot_s`` after), doubling up to ``idle_max_s`` while it
   stays idle, so idle capture costs little of the service-protection budget.
A crash between 2's produce and its checkpoint re-emits that page after restart: duplicates,
never a gap.

Bad input is isolated at the smallest unit it spoils, and never stops another table:
- a row: one that cannot become an event (no key, a version that is not 1-20 ASCII digits within
  0..2^63-1, integers beyond 64 bits, an event over the producer's ``message.max.bytes``, any
  failure while describing it) is a `BadRecord`, dead-lettered on ``sync.dlq`` at stage
  ``capture`` with the raw payload (cut to fit, marked by the `DLQ_TRUNCATED_HEADER`) and the reason;
  the rest of its page goes on and the checkpoint moves past it (it is in the DLQ, not lost);
- an answer: a page that is not JSON, HTML, truncated, a feed without a usable watermark, an
  unreadable ``$metadata`` is `UnreadableAnswer`; a link (next, delta) outside the configured
  API is `ForeignOrigin`. The table logs it and tries again with exponential backoff (nothing of
  that page is emitted or checkpointed); the other tables keep flowing, and so does every
  unexpected exception: it is logged with its traceback and retried the same way;
- a checkpoint: a stored position the reader cannot trust (a link to another host, a
  non-numeric watermark; anyone who can produce to ``sync.source-offsets`` can write one) is
  `UntrustedPosition`: refused with an error line, and the table takes a fresh snapshot, which
  reads only from the configured API, loses nothing (the overlap is removed downstream by
  version) and heals without an operator, where stopping the table would let one forged record
  halt capture.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field

from connectors.common import metrics
from connectors.common.checkpoints import CheckpointStore
from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import AuthFailed, PositionExpired, Rejected, RetryLater
from connectors.common.images import ImageStore
from connectors.common.kafka import AsyncProducer, Headers, KafkaConfig
from connectors.common.pacing import DEFAULT_PACE, IDLE_BUDGET_RPS, Pace, PollState, next_poll
from connectors.common.paging import abandon
from topics import (
    DLQ_TRUNCATED_HEADER,
    ChangeEvent,
    SnapshotMark,
    Source,
    SourceOffset,
    System,
    cdc_topic,
    dlq_headers,
    encode_event,
    encode_key,
    encode_read,
    parse_version,
)

__all__ = [
    "CAPTURE_STAGE",
    "DEAD_LETTERED",
    "EMITTED",
    "BadRecord",
    "CaptureTable",
    "Change",
    "ChangeReader",
    "OnPage",
    "Page",
    "Select",
    "SourceEngine",
    "SourceSettings",
    "UnreadableAnswer",
    "UntrustedPosition",
    "capture_version",
    "isolate",
    "message_limit",
]

log = logging.getLogger(__name__)

CAPTURE_STAGE = "capture"  # dlq.stage of a source row that could not become an event
# On a dead letter whose payload was cut to fit the producer's limit: the original size in bytes.
LIBRDKAFKA_MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's default message.max.bytes
# librdkafka counts key, value and headers plus a per-record overhead (measured: 36 bytes and
# about 2 per header); these margins are above it, so a record we accept is one it accepts.
_RECORD_OVERHEAD = 64
_HEADER_OVERHEAD = 8


class UnreadableAnswer(RetryLater):
    """A whole answer of the source API cannot be read (not JSON, HTML, truncated, no usable
    watermark, unreadable ``$metadata``): nothing of it is emitted; the table tries again."""


class UntrustedPosition(PositionExpired):
    """A stored position the reader refuses (a link outside the configured API, a watermark
    that is not a version): the table takes a fresh snapshot instead of following it."""


class _Read(NamedTuple):
    """The parts of a snapshot row's ``op: "r"`` event, as `encode_read` takes them."""

    system: System
    table: str
    version: str
    ts_ms: int
    snapshot: SnapshotMark
    company: str | None
    captured_ms: int
    image: dict[str, Any]


class Change:
    """One captured change of one row, ready for its CDC topic: ``Change(key, event)``.

    A snapshot row of the common shape is built from the parts its reader checked instead
    (`Change.read`): its event model is built only when something asks for ``event``, and
    `encode` writes the envelope straight from the parts (`encode_read`, the same bytes). A
    snapshot page holds a thousand rows; the two models per row cost as much as everything else
    done for it. Either way a change is a value: equal when key and event are."""

    __slots__ = ("_event", "_read", "key")

    def __init__(self, key: str, event: ChangeEvent) -> None:
        self.key = key
        self._event: ChangeEvent | None = event
        self._read: _Read | None = None

    @classmethod
    def read(cls, key: str, system: System, table: str, version: str, ts_ms: int, company: str | None,
             captured_ms: int, image: dict[str, Any], snapshot: SnapshotMark = "true") -> Change:
        """A snapshot row's ``op: "r"`` change from checked parts (``version`` through
        `capture_version`, times not negative, ``image`` a JSON object without annotations)."""
        change = cls.__new__(cls)
        change.key = key
        change._event = None
        change._read = _Read(system, table, version, ts_ms, snapshot, company, captured_ms, image)
        return change

    @property
    def event(self) -> ChangeEvent:
        if self._event is None:
            r = self._read
            assert r is not None
            self._event = ChangeEvent.trusted("r", r.captured_ms, Source.trusted(
                r.system, r.table, r.version, r.ts_ms, r.snapshot, r.company), after=r.image)
        return self._event

    @property
    def op(self) -> str:
        return "r" if self._read is not None else self.event.op

    @property
    def image(self) -> dict[str, Any] | None:
        """The row after the change (None for a delete): what the before-image store keeps."""
        return self._read.image if self._read is not None else self.event.after

    @property
    def row(self) -> dict[str, Any]:
        """The row the change describes (its before image for a delete)."""
        return self._read.image if self._read is not None else self.event.row

    @property
    def company(self) -> str | None:
        return self._read.company if self._read is not None else self.event.source.company

    def encode(self) -> bytes:
        """The event's CDC record value; `TypeError`/`ValueError` as `encode_event` raises them."""
        r = self._read
        if r is None:
            return encode_event(self.event)
        return encode_read(r.system, r.table, r.version, r.ts_ms, r.snapshot, r.company, r.captured_ms, r.image)

    def with_source(self, **update: Any) -> Change:
        """The same change with some ``source`` fields replaced (``snapshot``, ``company``)."""
        if self._read is not None and set(update) <= {"snapshot", "company"}:
            change = Change.__new__(Change)
            change.key, change._event, change._read = self.key, None, self._read._replace(**update)
            return change
        event = self.event
        return Change(self.key, event.model_copy(update={"source": event.source.model_copy(update=update)}))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Change):
            return NotImplemented
        return self.key == other.key and self.event == other.event

    def __hash__(self) -> int:
        return hash((self.key, self.event.op, self.event.source.version))

    def __repr__(self) -> str:
        return f"Change(key={self.key!r}, event={self.event!r})"


@dataclass(frozen=True)
class BadRecord:
    """An API payload the reader could not turn into an event (goes to the DLQ at stage
    ``capture``, with ``error_class`` and ``reason`` in its headers)."""

    payload: bytes
    reason: str
    error_class: str = "SourcePayloadError"

    @classmethod
    def of(cls, raw: Any, reason: str, error_class: str = "SourcePayloadError") -> BadRecord:
        """From a parsed payload, whatever it holds (see `payload_bytes`)."""
        return cls(payload_bytes(raw), reason, error_class)


def payload_bytes(raw: Any) -> bytes:
    """``raw`` as JSON bytes for a dead letter; never raises.

    orjson refuses integers beyond 64 bits and nesting deeper than 254, which are exactly what
    a hostile row holds, so the standard library (arbitrary integers) and then ``repr`` follow.
    """
    if isinstance(raw, bytes):
        return raw
    try:
        if isinstance(raw, BaseModel):
            raw = raw.model_dump(mode="python")
        return orjson.dumps(raw)
    except Exception:  # any failure falls through to the next way
        pass
    try:
        return json.dumps(raw, default=repr, ensure_ascii=False).encode()
    except Exception:
        pass
    try:
        return repr(raw).encode(errors="replace")
    except Exception:
        return f"<unprintable {type(raw).__name__}>".encode()


def capture_version(value: Any) -> str:
    """A row version as the envelope's decimal text; `topics.DecodeError` when it is not one.

    The API gives a JSON number or a string; either must be ASCII digits (``str.isdigit`` and
    ``int()`` also take Arabic-Indic digits), at most 19, within 0..2^63-1 (`topics.parse_version`,
    the envelope's one rule). ``True`` is not a version although Python counts it an int.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return str(parse_version(value))


def isolate(raw: Any, what: str, build: Callable[[], Change | BadRecord]) -> Change | BadRecord:
    """Build one row's change; any failure to describe the row makes it a `BadRecord`, so one
    bad row never fails its page (the per-item guard of every reader)."""
    try:
        return build()
    except Exception as exc:  # the row's fault, whatever it is
        return BadRecord.of(raw, f"{what}: {type(exc).__name__}: {exc}"[:2000], type(exc).__name__)


def message_limit(kafka: KafkaConfig) -> int:
    """The producer's ``message.max.bytes`` (librdkafka's default unless configured)."""
    try:
        return int(str(kafka.client.get("message.max.bytes", LIBRDKAFKA_MESSAGE_MAX_BYTES)))
    except ValueError:
        return LIBRDKAFKA_MESSAGE_MAX_BYTES


def record_size(key: bytes | None, value: bytes | None, headers: Headers | None = None) -> int:
    """What librdkafka weighs against ``message.max.bytes``, rounded up."""
    size = _RECORD_OVERHEAD + len(key or b"") + len(value or b"")
    for name, header in headers or ():
        size += _HEADER_OVERHEAD + len(name.encode()) + len(header or b"")
    return size


_ANNOTATIONS: dict[tuple[str, ...], tuple[str, ...]] = {}  # a row's field names -> its annotations
_ANNOTATION_SHAPES = 1024  # rows of more shapes than this are scanned each time


def row_image(row: dict[str, Any]) -> dict[str, Any]:
    """The row without OData/emulator annotations (``@odata.etag``, ``x@OData...``), fields in
    the row's order.

    The rows of a table come in a few shapes (the same field names), so which names are
    annotations is remembered per shape (a bounded number: hostile rows of ever new names are
    scanned each time): a copy less those names took 0.4 us a row of fifteen fields, testing
    every name of every row 0.9."""
    names = tuple(row)
    annotations = _ANNOTATIONS.get(names)
    if annotations is None:
        annotations = tuple(k for k in names if "@" in k)
        if len(_ANNOTATIONS) < _ANNOTATION_SHAPES:
            _ANNOTATIONS[names] = annotations
    image = row.copy()
    for name in annotations:
        del image[name]
    return image


def iso_ms(value: Any) -> int | None:
    """An ISO timestamp as ms since the epoch; None when it is not one (or before 1970)."""
    return _iso_text_ms(value) if isinstance(value, str) else None


@lru_cache(maxsize=4096)
def _iso_text_ms(value: str) -> int | None:
    """`iso_ms` of a text, remembered: the rows of a snapshot page share few modification
    times (a bulk import writes thousands in one second), and parsing one costs more than
    looking it up."""
    try:
        ms = int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        return None
    return ms if ms >= 0 else None


@dataclass
class Page:
    """Changes read in one call and the position after them."""

    items: list[Change | BadRecord] = field(default_factory=list)
    position: str = ""
    more: bool = False  # another page can be read right away
    # A snapshot page's cursor: ``snapshot(table, resume)`` continues after this page with the
    # position captured at the start ("" when the reader cannot resume there).
    resume: str = ""
    # Other captured tables holding rows of this page's transactions: the engine wakes their
    # pollers at once, so a transaction touching an idle table is captured whole within a poll,
    # not an idle interval later (the processor's transaction timeout would release it in parts).
    related: frozenset[str] = frozenset()


class ChangeReader(Protocol):
    """What a system contributes to a source."""

    system: System
    images: ImageStore  # the before images it reads; the engine commits them

    def snapshot(self, table: str, resume: str = "") -> AsyncIterator[Page]:
        """Every current row as ``op: "r"`` pages; the last page's ``position`` is the feed
        position captured before the first row was read. ``resume``: a page's `Page.resume`
        cursor of an interrupted snapshot, to continue after that page (`UntrustedPosition`
        when it is not one of this API's)."""

    async def changes(self, table: str, position: str) -> Page:
        """Changes after ``position``; raises `PositionExpired` when it can't be read any more
        and `UntrustedPosition` when it is not a position of the configured API."""

    async def aclose(self) -> None:
        """Release the HTTP client."""


class CaptureTable(BaseModel):
    """What a reader must know of one captured table, declared by the map registry (the CLI
    builds these from it), never guessed from the table's name."""

    model_config = ConfigDict(frozen=True)

    name: str
    primary_key: str | None = Field(None, description="Dataverse: the primary id column.")
    company: str | None = Field(None, description="Column holding the row's company code.")
    company_lookup: str | None = Field(
        None, description="Dataverse: lookup column holding the row's cdm_company GUID.")


class SourceSettings(BaseModel):
    """Tables, topics and pacing of one source (topic names injectable for test isolation)."""

    model_config = ConfigDict(frozen=True)

    system: System
    tables: tuple[str, ...] = Field(description="Entity sets / public collections to capture.")
    declared: tuple[CaptureTable, ...] = Field(
        default=(), description="Primary key and company column of captured tables (from the maps).")
    poll_interval_s: float = Field(default=DEFAULT_PACE.active_s, gt=0,
                                   description="Wait between polls of a table while it changes.")
    idle_max_s: float = Field(default=DEFAULT_PACE.idle_max_s, gt=0,
                              description="Longest wait between polls of an idle table (doubling up to it).")
    hot_s: float = Field(default=DEFAULT_PACE.hot_s, ge=0,
                         description="A table is polled at poll_interval_s this long after its last change.")
    idle_budget_rps: float = Field(default=IDLE_BUDGET_RPS, gt=0, description=(
        "Requests per second all idle tables together may cost: with many tables the idle wait "
        "grows past idle_max_s to tables / idle_budget_rps."))
    max_backoff_s: float = Field(default=60.0, gt=0,
                                 description="Longest wait of a failing table (doubles from the poll interval).")
    offsets_topic: str = Field(default="sync.source-offsets", description="Compacted checkpoint topic.")
    dlq_topic: str = Field(default="sync.dlq", description="Dead letters.")
    topic_prefix: str = Field(default="", description="Prefix of the CDC topic names (tests).")
    checkpoint_table_prefix: str = Field(default="", description="Prefix of checkpoint keys (tests).")
    images_path: Path | None = Field(default=None, description=(
        "LMDB file of the last image emitted per record, the before images of updates and "
        "deletes (None: in memory, lost on restart)."))

    def topic(self, table: str) -> str:
        return self.topic_prefix + cdc_topic(self.system, table)

    @property
    def pace(self) -> Pace:
        """Each idle table waits at least ``idle_max_s``, and long enough that all of them
        together stay within ``idle_budget_rps`` (the budget holds however many maps run)."""
        idle = max(self.idle_max_s, self.poll_interval_s, len(self.tables) / self.idle_budget_rps)
        return Pace(self.poll_interval_s, idle, self.hot_s)


Record = tuple[str, bytes | None, bytes | None, Headers | None]
EMITTED = "emitted"  # a snapshot change produced (the label `SourceEngine.snapshot` emits)
DEAD_LETTERED = "dead_lettered"  # a snapshot row that could not become an event
Select = Callable[[Change], str]  # a snapshot change's label: EMITTED or a reason to leave it out
OnPage = Callable[[str, Counter[str]], Awaitable[None]]


class _AfterAck:
    """What follows a snapshot page's acknowledgement, off the produce loop: the staged images
    made durable, then ``on_page`` (a checkpoint and its round trip to Kafka), one run at a time
    and in page order, while the next pages are produced.

    A page acknowledged while a run is going is not queued behind it: its cursor (the newest)
    and its tally (added up) wait for the next run, so the loop never waits for SQLite or for a
    checkpoint's acknowledgement, and the work does not fall behind (on 2 cores, waiting for
    both cost a 50,000-row sync 0.4 of its 1.0 s). A checkpoint skipped that way costs nothing:
    the next one covers its pages, and a run killed in between reads them again (duplicates,
    never a gap). The failure of a run is raised by the next `add` or by `finish`."""

    def __init__(self, commit: Callable[[], Awaitable[None]], on_page: OnPage | None) -> None:
        self._commit = commit
        self._on_page = on_page
        self._cursor = ""
        self._tally: Counter[str] = Counter()
        self._due = False  # something acknowledged since the last run started
        self._running: asyncio.Future[None] | None = None

    def add(self, cursor: str = "", tally: Counter[str] | None = None) -> None:
        """A page is acknowledged: commit the staged images, and report ``cursor`` with
        ``tally`` (the pages it covers that were not reported yet; no cursor: nothing to report
        yet) as soon as the run before is done."""
        if cursor:
            self._cursor = cursor
            self._tally += tally or Counter()
        self._due = True
        running = self._running
        if running is not None and running.done():
            self._running = None
            running.result()  # a failed run fails the snapshot here
        if self._running is None:
            self._running = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while self._due:
            self._due = False
            await self._commit()
            if self._on_page is not None and self._cursor:
                cursor, tally = self._cursor, self._tally
                self._cursor, self._tally = "", Counter()
                await self._on_page(cursor, tally)

    async def finish(self, tally: Counter[str]) -> None:
        """Wait until everything added is done, raising a run's failure, then report ``tally``
        (the pages no cursor covered) with the cursor "": the snapshot is whole."""
        running, self._running = self._running, None
        if running is not None:
            await running
        if self._on_page is not None:
            await self._on_page("", tally)

    def abandon(self) -> None:
        """After a failure elsewhere: a run still going is cancelled (its pages stay
        uncheckpointed and are read again: duplicates, never a gap); a finished one's failure
        is taken, the snapshot's own being the one that counts."""
        running, self._running = self._running, None
        if running is not None:
            abandon(running)


class SourceEngine:
    def __init__(self, settings: SourceSettings, kafka: KafkaConfig, reader: ChangeReader,
                 clock: Clock | None = None, producer: AsyncProducer | None = None) -> None:
        self.settings = settings
        self.reader = reader
        self.clock = clock or SystemClock()
        self.producer = producer or AsyncProducer(kafka)
        self.checkpoints = CheckpointStore(kafka, self.producer, settings.offsets_topic)
        self.positions: dict[str, str] = {}
        self.changed: dict[str, bool] = {}  # the last step of each table found changes
        self._wakes = {table: asyncio.Event() for table in settings.tables}  # `wake`
        self.system = settings.system
        self.max_message_bytes = message_limit(kafka)

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
        self.reader.images.close()

    async def run(self, stop: asyncio.Event) -> None:
        await self.load()
        try:
            tasks = [asyncio.create_task(self._run_table(t, stop)) for t in self.settings.tables]
            await asyncio.gather(*tasks)
        finally:
            await self.close()

    async def _run_table(self, table: str, stop: asyncio.Event) -> None:
        failures = 0  # in a row, for the backoff
        pace: PollState | None = None
        found = False  # changes since the last drained poll (a chain of pages counts once)
        while not stop.is_set():
            try:
                more = await self.step(table)
            except PositionExpired as exc:
                # Raised while (re-)snapshotting, e.g. a paging link that went stale: start over.
                log.warning("source %s/%s: %s; starting over", self.system, table, exc)
                self.positions.pop(table, None)
                await self._wait(stop, self.settings.poll_interval_s)
                continue
            except AuthFailed:
                raise  # the token endpoint refuses our credentials: a configuration to fix
            except Exception as exc:  # one table's trouble never stops the others
                failures += 1
                delay = self._backoff(exc, failures)
                self._log_failure(table, exc, delay)
                await self._wait(stop, delay)
                continue
            failures = 0
            found = self.changed.pop(table, False) or found
            if not more:
                pace = next_poll(self.settings.pace, pace, changed=found, now=self.clock.monotonic())
                found = False
                await self._wait(stop, pace.delay, self._wakes.get(table))

    def _backoff(self, exc: Exception, failures: int) -> float:
        """The server's Retry-After when it named one, else doubling from the poll interval."""
        if isinstance(exc, RetryLater) and exc.retry_after:
            return exc.retry_after
        return min(self.settings.max_backoff_s, self.settings.poll_interval_s * 2.0 ** (failures - 1))

    def _log_failure(self, table: str, exc: Exception, delay: float) -> None:
        where = f"source {self.system}/{table}"
        if isinstance(exc, RetryLater):
            log.warning("%s: %s; again in %.1fs", where, exc.reason, delay)
        elif isinstance(exc, Rejected):
            # A refused read (403, 404 table, a foreign link) does not heal by itself, but must
            # not stop the other tables: keep asking, slower and slower, so a fix is picked up.
            log.error("%s refused: %s %s; again in %.1fs", where, exc.reason, exc.body[:500], delay)
        else:
            log.error("%s failed: %s: %s; again in %.1fs", where, type(exc).__name__, exc, delay,
                      exc_info=exc)

    def wake(self, tables: Iterable[str]) -> None:
        """Poll these tables now instead of after their pace's wait (tables this source does
        not run are ignored: a page's claim about other tables is only a hint)."""
        for table in tables:
            event = self._wakes.get(table)
            if event is not None:
                event.set()

    async def _wait(self, stop: asyncio.Event, seconds: float, wake: asyncio.Event | None = None) -> None:
        waits = [asyncio.create_task(self.clock.sleep(seconds)), asyncio.create_task(stop.wait())]
        if wake is not None:
            waits.append(asyncio.create_task(wake.wait()))
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in waits:
            task.cancel()
        if wake is not None:
            wake.clear()

    async def step(self, table: str) -> bool:
        """Snapshot (if no position) or one change poll; True if more is ready right away.
        The images a failed step staged are dropped: its page is read again."""
        try:
            return await self._step(table)
        except BaseException:
            self.reader.images.discard(table)
            raise

    async def _step(self, table: str) -> bool:
        position = self.positions.get(table)
        self.changed[table] = True  # a snapshot, or a page with items (below)
        if position is None:
            await self.snapshot(table)
            return True
        try:
            page = await self.reader.changes(table, position)
        except UntrustedPosition as exc:
            log.error("source %s/%s: checkpoint refused: %s; taking a fresh snapshot",
                      self.system, table, exc)
            await self.snapshot(table)
            return True
        except PositionExpired as exc:
            log.warning("source %s/%s: position expired (%s); taking a fresh snapshot",
                        self.system, table, exc)
            await self.snapshot(table)
            return True
        self.changed[table] = bool(page.items)
        await self._emit(table, page.items)
        self.wake(page.related - {table})
        await self.reader.images.commit(table)  # in Kafka now: the next page's before images
        if page.position and page.position != position:
            await self._checkpoint(table, page.position)
        return page.more

    async def snapshot(self, table: str, *, resume: str = "", select: Select | None = None,
                       on_page: OnPage | None = None, checkpoint: bool = True,
                       read_ahead: bool = False) -> str:
        """Emit every row as ``op: "r"`` (the newest ``source.snapshot = "last"``); the captured
        position is returned and, with ``checkpoint``, written as the table's streaming
        checkpoint. `dualwrite.initial_sync` passes the rest: ``resume`` continues an
        interrupted snapshot after a page (`Page.resume`); ``select`` labels each change,
        only `EMITTED` ones are produced (the other labels are reasons to leave a row out);
        ``on_page(cursor, tally)`` is called once Kafka acknowledged every event of the pages
        up to the one ``cursor`` resumes after, with the labels counted over those pages
        (``cursor`` is "" once the snapshot is whole). The newest change is held back for the
        "last" mark, so a page is covered only once the change held from it is out too.
        The images' commit and the call (a checkpoint written and its acknowledgement awaited)
        run while the next pages are produced, in order (`_AfterAck`); the last call is awaited
        before this returns.

        ``read_ahead`` keeps Kafka's side of the pipeline full: a page is produced before the
        one before it is acknowledged (one page in flight to Kafka besides the one being
        produced), so the loop does not wait for Kafka between pages. The readers keep the
        API's side full themselves (`connectors.common.paging.read_ahead`: the next page's
        request is on the wire before a page is handed over). Pages are still covered in order
        and only once acknowledged; the images read meanwhile are committed with the
        acknowledged page's (up to two pages ahead of Kafka, harmless for ``op: "r"`` rows,
        which are read again after a failure)."""
        held: Change | None = None
        held_page = -1  # the page the held change came from
        cursors: list[str] = []
        tallies: list[Counter[str]] = []
        reported = -1  # the last page passed to on_page
        position = ""
        pages = self.reader.snapshot(table, resume) if resume else self.reader.snapshot(table)
        after = _AfterAck(partial(self.reader.images.commit, table), on_page)
        unacked: tuple[asyncio.Future[None], int] | None = None  # read_ahead: a page in flight
        tail: asyncio.Future[None] | None = None  # the "last" change

        async def acknowledged(delivery: Awaitable[None], covered: int) -> None:
            """Once Kafka has a page's events: its images made durable and the pages it covers
            reported, behind the loop (`_AfterAck`)."""
            nonlocal reported
            await delivery
            if covered > reported and cursors[covered]:
                after.add(cursors[covered], sum(tallies[reported + 1:covered + 1], Counter()))
                reported = covered
            else:
                after.add()

        try:
            async for page in pages:
                tally: Counter[str] = Counter()
                items: list[Change | BadRecord] = []
                for item in page.items:
                    label = DEAD_LETTERED if isinstance(item, BadRecord) else \
                        select(item) if select is not None else EMITTED
                    tally[label] += 1
                    if label in (EMITTED, DEAD_LETTERED):
                        items.append(item)
                cursors.append(page.resume)
                tallies.append(tally)
                previous = held
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
                if held is not None and held is not previous:
                    held_page = len(cursors) - 1
                position = page.position
                covered = held_page - 1 if held is not None else len(cursors) - 1
                if not read_ahead:
                    await acknowledged(self._emit(table, items), covered)
                    continue
                delivery = asyncio.ensure_future(self._emit(table, items))
                await asyncio.sleep(0)  # produced now, while the page before waits for Kafka
                if unacked is not None:
                    await acknowledged(*unacked)
                unacked = (delivery, covered)
            if held is not None:
                last = self._emit(table, [held.with_source(snapshot="last")])
                if unacked is None:
                    await last
                    after.add()
                else:
                    tail = asyncio.ensure_future(last)
                    await asyncio.sleep(0)  # produced behind the page in flight
            if unacked is not None:
                in_flight, unacked = unacked, None
                await acknowledged(*in_flight)
            if tail is not None:
                await tail
                after.add()
            await after.finish(sum(tallies[reported + 1:], Counter()))
        finally:
            if unacked is not None:  # failed meanwhile: the page in flight is not covered
                abandon(unacked[0])
            if tail is not None:
                abandon(tail)
            after.abandon()
        if checkpoint:
            await self._checkpoint(table, position)
        log.info("source %s/%s: snapshot done, streaming from %s", self.system, table, position)
        return position

    async def _emit(self, table: str, items: list[Change | BadRecord]) -> None:
        """Produce the page's events (a delete and its tombstone), dead-letter what cannot be one,
        and wait until Kafka has every record."""
        records = self._records(table, items)
        # The page is awaited as a whole (its checkpoint follows): sent at once, not after linger.
        await self.producer.produce_all(records, flush=True)

    def _records(self, table: str, items: list[Change | BadRecord]) -> list[Record]:
        """The records of a page's items: events (a delete and its tombstone) and dead letters."""
        topic = self.settings.topic(table)
        records: list[Record] = []
        ops: Counter[str] = Counter()
        limit = self.max_message_bytes
        for item in items:
            if isinstance(item, BadRecord):
                records.append(self._dead_letter(topic, None, item.payload, item.reason, item.error_class))
                continue
            key: bytes | None = None
            try:
                key = encode_key(item.key)
                value = item.encode()
            except (TypeError, ValueError) as exc:  # orjson: an integer beyond 64 bits, deep nesting,
                # a lone surrogate (in the key too: never a page that fails on every retry)
                records.append(self._dead_letter(topic, key, payload_bytes(item.event),
                                                 f"{table}({item.key[:200]}): event cannot be encoded: {exc}",
                                                 "UnencodableRow"))
                continue
            size = record_size(key, value)
            op = item.op
            if size > limit and op == "u" and item.event.before is not None:
                # The row fits, with its before image it does not: the update goes without it.
                value = encode_event(item.event.model_copy(update={"before": None}))
                size = record_size(key, value)
            if size > limit:
                records.append(self._dead_letter(
                    topic, key, value, f"{table}({item.key[:200]}): event of {len(value)} bytes is over "
                    f"the producer's message.max.bytes ({limit})", "OversizedRow"))
                continue
            records.append((topic, key, value, None))
            if op == "d":
                records.append((topic, key, None, None))  # tombstone: compaction may drop the row
            ops[op] += 1
        for op, n in ops.items():
            metrics.EVENTS.labels(self.system, op).inc(n)
        return records

    def _dead_letter(self, topic: str, key: bytes | None, payload: bytes, reason: str,
                     error_class: str) -> Record:
        """A capture-stage dead letter that fits the producer's limit: the payload is cut to the
        room left by key and headers, and `DLQ_TRUNCATED_HEADER` then names its original size."""
        headers: Headers = list(dlq_headers(stage=CAPTURE_STAGE, error_class=error_class[:100],
                                            message=reason[:max(100, self.max_message_bytes // 4)],
                                            topic=topic, ts_ms=int(self.clock.time() * 1000)))
        if key is not None and len(key) > self.max_message_bytes // 4:
            key = None  # a key that large is part of the problem; the payload still holds it
        room = self.max_message_bytes - record_size(key, None, headers) \
            - _HEADER_OVERHEAD - len(DLQ_TRUNCATED_HEADER) - 20
        if len(payload) > room:
            headers.append((DLQ_TRUNCATED_HEADER, str(len(payload)).encode()))
            payload = payload[:max(room, 0)]
        metrics.DLQ.labels(self.system, CAPTURE_STAGE).inc()
        return (self.settings.dlq_topic, key, payload, headers)

    async def _checkpoint(self, table: str, position: str) -> None:
        offset = SourceOffset(system=self.system, table=self._ckpt_table(table), position=position,
                              snapshot_done=True, ts_ms=int(self.clock.time() * 1000))
        await self.checkpoints.save(offset)
        self.positions[table] = position
