"""The batch engine: one loop over a librdkafka consumer, each batch one Kafka transaction.

    Engine(app).run()      what `dualwrite worker --engine batch` runs instead of Faust's worker

It reads what the Faust agents read (the CDC topics, ``sync.applied.*``, ``sync.control`` and the
gate topic) in batches, and gives each record to the same pure parts: `streams.ingest.Ingest`
for a CDC record, `streams.gatekeeper.Gatekeeper` for a gate message. What differs is who
carries the effects:

- **No hop for a local gate key.** A gate record whose partition this worker owns (every one,
  with a single worker) is handled in the same batch, in the order it was made, instead of
  being produced to the gate topic and read back. Only a gate key of a partition another worker
  owns crosses the gate topic. (Faust writes a table key's changelog to the partition of the
  record being handled, which is why its agents cross the topic for every step.)
- **Tables written per batch.** `streams.store`: RocksDB in Faust's layout, the batch's writes in
  memory, the last write of each key produced to its changelog once per batch.
- **One transaction per batch.** Commands, dead letters, gate records for other workers,
  changelog records and the consumed offsets (`send_offsets_to_transaction`) commit together or
  not at all; RocksDB takes the batch's writes only after the commit. A worker killed anywhere
  leaves no trace of its open batch: its successor reads the batch again from the committed
  offsets, with tables that never saw it (effectively once, where Faust's agents were at least
  once and needed the replay guards of `streams.gate`). Consumers read committed records only
  (librdkafka's default, and the sinks').

Partitions are assigned by the range assignor: the CDC, applied and gate topics have the
worker's partition count (`streams.declare`), so a worker owns the same partitions of all of
them, as Faust's assignor arranged. On assignment the tables of those partitions are opened and
caught up from their changelogs (from the offset RocksDB holds: the tail only), and the fact
view is filled from them; on revocation they are closed and the view emptied.

A parked slot remembers a release or a park by a mark (`streams.handlers.Position.mark`). Faust's
agents used the gate offset, to know a record handled again after a crash; here nothing is
handled twice, and records handled in place have no offset, so the mark is a clock in
microseconds, increasing in the order records are handled and larger than any offset Faust
recorded. State written by this engine is therefore not for the Faust agents, which refuse its
group (`streams.lineage`). The marks must also increase from one owner of a partition to the
next: a slot takes a release marked above the record being handled for a later one, so a clock
behind the last owner's (another host's, or this one's set back) would skip a change parked again
there. A batch that writes parked slots keeps its last mark in the partition's ``states``
(`MARK_KEY`, through the changelog like any write), and the clock of a worker that takes the
partition starts above it.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from streams import metrics
from streams.agents import observe_parked_age
from streams.app import TABLES, Runtime, StreamsApp, group_instance_id, read_topics
from streams.gatekeeper import Gatekeeper, Position
from streams.ingest import Ingest, Refused
from streams.lineage import marked
from streams.store import Stores
from streams.watchdog import EXIT_STALLED, Heartbeat, report_expired
from streams.wire import AppliedMsg, ControlMsg, GateMsg, TickMsg, decode_gate, encode_gate
from topics import (
    RETRY_HEADER,
    DecodeError,
    MapState,
    ack_partition,
    decode_ack,
    decode_model,
    dlq_headers,
    is_retry,
    present_fact,
)
from topics.partitioner import partition_of

__all__ = ["BATCH_RECORDS", "Engine"]

log = logging.getLogger(__name__)

# Records a batch takes at most; fewer when that is all there is (a quiet pipeline's batches are
# a few records, a burst of 800 is one). Each batch is one transaction, whose Kafka waits (about
# 10 ms) are the same whatever it holds, and writes each table key's last value once: 4,000 made
# P1's replay 4 to 8% faster than 1,000 (in-process, alternating runs), a batch then holding
# several versions of a row (changelog records fell from 1.0 to 0.5 a change). A full batch
# is about 0.7 s of work: a backlog's commands reach the sinks that much later than its first.
BATCH_RECORDS = 4000
MARK_KEY = "engine-mark"  # in `states`, per partition: the last mark a batch wrote parked slots with
# After an assignment, the first batch waits (at most this long, and for at most this many
# records) until every assigned partition with records to read has delivered some: see `_take`.
FIRST_BATCH_WAIT_S = 1.0
FIRST_BATCH_MAX = 10_000


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class _Record:
    """A consumed record's parts (librdkafka sets them all on a record a consume returns)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    timestamp: int = 0

    @classmethod
    def of(cls, m: Message) -> _Record:
        return cls(cast(str, m.topic()), cast(int, m.partition()), cast(int, m.offset()), m.key(), m.value(),
                   cast("list[tuple[str, bytes]] | None", m.headers()), m.timestamp()[1])


_PARTITION_FETCH_BYTES = 131_072


def in_time_order(records: Iterable[_Record]) -> Iterator[_Record]:
    """A batch's records in the order they were written, as far as their timestamps tell,
    each partition's in its own order. A fetch returns partitions one after the other: a
    project read before its company's row, written first, would wait for it (a park, a hold
    at the sink) where in the source's order it would not."""
    by_partition: dict[tuple[str, int], list[_Record]] = {}
    for r in records:
        by_partition.setdefault((r.topic, r.partition), []).append(r)
    if len(by_partition) == 1:
        return iter(next(iter(by_partition.values())))
    return heapq.merge(*by_partition.values(), key=lambda r: r.timestamp)


def _retried(call: Any, attempts: int = 10) -> None:
    """A transactional call again while librdkafka says it may succeed if retried."""
    for attempt in range(attempts):
        try:
            call()
            return
        except KafkaException as exc:
            if not exc.args[0].retriable() or attempt == attempts - 1:
                raise
            time.sleep(0.2)


class _Runtime:
    """What `Gatekeeper` and `observe_parked_age` ask of `streams.app.Runtime`, served by the
    engine: its stores as the tables, its send."""

    def __init__(self, rt: Runtime, engine: Engine) -> None:
        self.config, self.maps, self.gate_topic_name = rt.config, rt.maps, rt.gate_topic_name
        self._engine = engine

    def table(self, name: str) -> Any:
        return self._engine.stores[name]

    async def send(self, name: str, key: bytes | None, value: bytes | None, *,
                   partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        self._engine.send(name, key, value, partition=partition, headers=headers)

    async def send_gate(self, key: str, msg: GateMsg, partition: int | None = None) -> None:
        self._engine.send_gate(key.encode(), None, msg, partition)


class Engine:
    def __init__(self, app: StreamsApp) -> None:
        rt = app.runtime
        self.app, self.rt, self.config = app, rt, rt.config
        self.partitions = self.config.partitions
        self.stores = Stores(TABLES, app.conf.tabledir,  # Faust's own places and names
                             lambda t: rt.table(t).changelog_topic.get_topic_name())
        self.gatekeeper = Gatekeeper(_Runtime(rt, self))  # type: ignore[arg-type]
        self.view = self.gatekeeper.known
        self.ingest = Ingest(rt.maps, rt.cdc_tables, self.stores["versions"], self.view,
                             gate_max_bytes=int(app.conf.producer_max_request_size) - 16_384)
        self.gate_topic = rt.gate_topic_name
        self.cdc = frozenset(rt.cdc_tables)
        self.applied = frozenset(rt.topic("applied").topics)
        self.control = frozenset(rt.topic("control").topics)
        self.owned: set[int] = set()
        # Gate records of owned partitions for this batch: (key, encoded value or None, partition,
        # message); a value is encoded only when it must leave (the gate topic, a dead letter).
        self.local: deque[tuple[bytes, bytes | None, int, GateMsg]] = deque()
        self.changelog_offsets: dict[tuple[str, int], int] = {}
        self._positions: dict[tuple[str, int], int] = {}  # committed by this worker since its assignment
        # Partitions with records to read, none read yet (`_take`): the end offset each had then.
        self._awaited: dict[tuple[str, int], int] = {}
        self._clock = 0
        self._debug = log.isEnabledFor(logging.DEBUG)
        self._stop = False
        self._ready = False
        self._last_tick = time.monotonic()
        self._last_parked_age = time.monotonic()
        self.heartbeat = Heartbeat(self.config.stall_timeout_s)
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None

    # -- clients -------------------------------------------------------------------------
    def _client(self) -> dict[str, Any]:
        return {**self.config.kafka_client(), "bootstrap.servers": self.config.bootstrap_servers}

    def _topics(self) -> list[str]:
        return read_topics(self.app)

    def _consumer(self) -> Consumer:
        conf = {**self._client(), "group.id": self.config.app_id, "enable.auto.commit": False,
                "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                "isolation.level": "read_committed", "partition.assignment.strategy": "range",
                "session.timeout.ms": int(self.config.session_timeout_s * 1000),
                "fetch.wait.max.ms": self.config.fetch_max_wait_ms,
                # A fetch takes this much of each partition (librdkafka's default is 1 MB): a
                # batch then holds records of every partition with data, which `in_time_order`
                # puts in the order they were written. With 1 MB, a replay's first 4,500 projects
                # (three partitions' first fetch) came before their company's row and waited for
                # it at the gate (bench: 15% of P1's changes parked, 11% of its time).
                "max.partition.fetch.bytes": _PARTITION_FETCH_BYTES}
        member = group_instance_id(self.config.instance_id, self._topics())
        if member is not None:
            conf["group.instance.id"] = member
        return Consumer(conf, logger=log)

    def _producer(self) -> Producer:
        # A stable id per worker, its instance id or else its state directory (two workers never
        # share one: RocksDB locks it): its successor's `init_transactions` aborts a batch it
        # left open at once, where a new id would leave it holding back every reader of the
        # partitions it wrote until the transaction times out (a minute).
        name = self.config.instance_id or hashlib.sha256(str(self.config.data_dir.resolve()).encode()).hexdigest()[:16]
        return Producer({**self._client(), "transactional.id": f"{self.config.app_id}-{name}",
                         "partitioner": "murmur2_random",  # Kafka's default, as every producer here
                         "linger.ms": 5, "batch.num.messages": 10_000,
                         "transaction.timeout.ms": 60_000}, logger=log)

    # -- effects -------------------------------------------------------------------------
    def send(self, name: str, key: bytes | None, value: bytes | None, *,
             partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        """A record for one of the worker's topics (a gate message: `send_gate`)."""
        self._produce(self.rt.topic_names[name], key, value, partition, headers)

    def send_gate(self, key: bytes, value: bytes | None, msg: GateMsg, partition: int | None = None) -> None:
        """A gate message: kept for this batch when this worker owns its partition (`local`),
        else encoded (unless ``value`` is its encoding already) and produced to the gate topic."""
        p = partition if partition is not None else partition_of(key, self.partitions)
        if p in self.owned:
            self.local.append((key, value, p, msg))
            return
        self._produce(self.gate_topic, key, encode_gate(msg) if value is None else value, partition)

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
                 headers: list[tuple[str, bytes]] | None = None, on_delivery: Any = None) -> None:
        assert self.producer is not None
        if self._debug:
            log.debug("produce %s [%s] %s: %s", topic, partition, key, (value or b"")[:200])
        kwargs: dict[str, Any] = {"partition": partition} if partition is not None else {}
        if headers:
            kwargs["headers"] = headers
        if on_delivery is not None:
            kwargs["on_delivery"] = on_delivery
        while True:
            try:
                self.producer.produce(topic, value, key, **kwargs)
                return
            except BufferError:  # the local queue is full: let librdkafka send some first
                self.producer.poll(0.1)

    def _dead_letter(self, m: _Record, stage: str, error: str, message: str, map_name: str | None = None) -> None:
        metrics.DLQ.labels(stage, error).inc()
        headers = dlq_headers(stage=stage, error_class=error, message=message, map_name=map_name,
                              topic=m.topic, partition=m.partition, offset=m.offset, ts_ms=_now_ms())
        if is_retry(m.headers):
            headers.append((RETRY_HEADER, b"1"))
        self.send("dlq", m.key, m.value, headers=headers)

    def _mark(self) -> int:
        """A clock in microseconds, strictly increasing (see the module docstring)."""
        self._clock = max(self._clock + 1, time.time_ns() // 1000)
        return self._clock

    def _keep_mark(self) -> None:
        """`MARK_KEY` in each partition whose parked slots this batch wrote: the clock, above
        every mark of the batch."""
        for p, written in list(self.stores["parked"].batch.items()):
            if written:
                self.stores.at(p)
                self.stores["states"][MARK_KEY] = self._clock

    def _resume_clock(self, partitions: Iterable[int]) -> None:
        """The clock above the last mark kept in ``partitions`` (their tables caught up)."""
        for p in partitions:
            self.stores.at(p)
            kept = self.stores["states"].get(MARK_KEY)
            if isinstance(kept, int) and kept > self._clock:
                self._clock = kept

    # -- one record ----------------------------------------------------------------------
    async def _gate(self, key: bytes, value: bytes | None, partition: int, origin: _Record | None,
                    msg: GateMsg | None = None) -> None:
        """A gate record of an owned partition, handled now: ``msg``, or else ``value`` decoded;
        ``origin``: the gate topic's record it is (None: made in this batch)."""
        self.stores.at(partition)
        try:
            text = key.decode()  # a gate record re-driven by hand may carry any bytes
            if msg is None:
                msg = decode_gate(value or b"")
        except ValueError as exc:  # UnicodeDecodeError and pydantic's ValidationError among them
            self._dead_letter_gate(key, value or b"", partition, origin, type(exc).__name__, str(exc))
            return
        at = Position(text, partition, -1 if origin is None else origin.offset, _now_ms(),
                      clock=self._mark())
        if self._debug:
            log.debug("gate %s [%d] mark %d: %r", at.key, partition, at.mark, msg)
        try:
            await self.gatekeeper.handle(msg, at)
        except Exception as failure:  # changes are guarded inside; this is the last line
            log.exception("gate message %s at partition %s failed", key[:80], partition)
            self._dead_letter_gate(key, encode_gate(msg) if value is None else value, partition, origin,
                                   type(failure).__name__, str(failure), getattr(msg, "map", None))

    def _dead_letter_gate(self, key: bytes, value: bytes, partition: int, origin: _Record | None,
                          error: str, message: str, map_name: str | None = None) -> None:
        if origin is not None:
            self._dead_letter(origin, "gate", error, message, map_name)
            return
        metrics.DLQ.labels("gate", error).inc()
        headers = dlq_headers(stage="gate", error_class=error, message=message, map_name=map_name,
                              topic=self.gate_topic, partition=partition, offset=-1, ts_ms=_now_ms())
        self.send("dlq", key, value, headers=headers)

    async def _drain(self) -> None:
        while self.local:
            key, value, partition, msg = self.local.popleft()
            await self._gate(key, value, partition, None, msg)

    async def _record(self, m: _Record) -> None:
        topic = m.topic
        if topic in self.cdc:
            await self._cdc(m)
        elif topic == self.gate_topic:
            key = m.key or b""
            await self._gate(key, m.value or b"", m.partition, m)
        elif topic in self.applied:
            await self._ack(m)
        elif topic in self.control:
            self._control(m)
        await self._drain()

    async def _cdc(self, m: _Record) -> None:
        self.stores.at(m.partition)
        taken = self.ingest.take(m.topic, m.key, m.value, m.offset, retried=is_retry(m.headers),
                                 now_ms=_now_ms())
        if isinstance(taken, Refused):
            self._dead_letter(m, taken.stage, taken.error, taken.message)
            return
        if taken is None:  # a tombstone or a duplicate
            return
        for r in taken.rejected:
            await self.gatekeeper.rejected(r.map, None)
            self._dead_letter(m, r.stage, r.error, r.message, r.map)
        for (key, value), msg in zip(taken.records, taken.messages, strict=True):
            self.send_gate(key, value, msg)

    async def _ack(self, m: _Record) -> None:
        try:
            ack = decode_ack(m.value)
        except DecodeError as exc:
            self._dead_letter(m, "decode", f"DecodeError.{exc.reason.value}", str(exc))
            return
        key, msg = present_fact(ack.record_key), AppliedMsg(ack=ack)
        p = ack_partition(ack.record_key, self.partitions)  # the row's gate partition
        if p not in self.owned:
            # Not where the sink places acks (a sink of an earlier release, a topic sized unlike
            # the gate): the row's state is another worker's, sent to it.
            self.send_gate(key.encode(), None, msg)
            return
        self.stores.at(p)
        try:
            await self.gatekeeper.handle(msg, Position(key, p, m.offset, _now_ms(), m.topic, clock=self._mark()))
        except Exception as failure:
            log.exception("ack at %s:%s:%s failed", m.topic, m.partition, m.offset)
            self._dead_letter(m, "gate", type(failure).__name__, str(failure), ack.map)

    def _control(self, m: _Record) -> None:
        try:
            state = decode_model(MapState, m.value)
        except DecodeError as exc:
            self._dead_letter(m, "decode", f"DecodeError.{exc.reason.value}", str(exc))
            return
        for p in range(self.partitions):  # every partition keeps its own copy
            self.send_gate(f"control:{state.map}".encode(), None, ControlMsg(map=state.map, state=state.state), p)

    async def _ticks(self) -> None:
        now = _now_ms()
        for p in sorted(self.owned):
            await self._gate(b"tick", None, p, None, TickMsg(ts_ms=now))
        await self._drain()

    # -- batches -------------------------------------------------------------------------
    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            tp, offset = (cast(str, msg.topic()), cast(int, msg.partition())), cast(int, msg.offset())
            self.changelog_offsets[tp] = max(self.changelog_offsets.get(tp, -1), offset)

    async def _batch(self, records: list[Message], tick: bool) -> None:
        assert self.producer is not None and self.consumer is not None
        started = time.perf_counter()
        metrics.BATCH_RECORDS.observe(len(records))
        self.producer.begin_transaction()
        taken = []
        for message in records:
            err = message.error()
            if err is None:
                taken.append(_Record.of(message))
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer: %s", err)
        for m in in_time_order(taken):
            await self._record(m)
        if tick:
            await self._ticks()
        self._keep_mark()
        self.changelog_offsets.clear()
        for topic, partition, key, value in self.stores.changelog():
            self._produce(topic, key, value, partition, on_delivery=self._delivered)
        handled = time.perf_counter()
        self.producer.flush()
        # Every record consumed is handled: the consumer's positions, which pass the transaction
        # markers after the last record of a transactional producer (another worker's gate
        # records) as no record's offset does (the group would stay one short of the end).
        # Only those that moved: a quiet worker's tick commits nothing.
        offsets = [tp for tp in self.consumer.position(self.consumer.assignment())
                   if tp.offset >= 0 and self._positions.get((tp.topic, tp.partition)) != tp.offset]
        if offsets:
            producer, metadata = self.producer, self.consumer.consumer_group_metadata()
            _retried(lambda: producer.send_offsets_to_transaction(marked(offsets), metadata))
        _retried(self.producer.commit_transaction)
        committed = time.perf_counter()
        metrics.BATCH_COMMIT_SECONDS.observe(committed - handled)
        metrics.BATCH_SECONDS.observe(committed - started)
        metrics.LAST_COMMIT.set_to_current_time()
        self._positions.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
        self.stores.persist(self.changelog_offsets)

    async def _committed(self, records: list[Message], tick: bool) -> bool:
        """One batch, committed; False when Kafka refused its transaction in a way that asks for
        an abort (then it is read again: `_abort`). Any other refusal raises."""
        try:
            await self._batch(records, tick)
            return True
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                raise
            log.warning("a batch was aborted and is read again: %s", exc)
            metrics.BATCHES_ABORTED.inc()
            self._abort()
            return False

    def _abort(self) -> None:
        """The batch's transaction cannot commit (the group moved on: a rebalance): abort it,
        forget what it wrote and what it taught the caches, and read it again from the
        committed offsets."""
        assert self.producer is not None and self.consumer is not None
        self.producer.abort_transaction()
        self.stores.drop()
        self.local.clear()
        self.view.clear()
        self.gatekeeper.published.clear()  # a key fact it "sent" was never committed
        self._fill_view()
        assigned = self.consumer.assignment()
        for tp in self.consumer.committed(assigned, timeout=30):
            if tp.offset < 0:  # never committed: where the group starts, the log's start
                tp.offset = self.consumer.get_watermark_offsets(tp, timeout=30)[0]
            self.consumer.seek(tp)

    def _take(self) -> list[Message]:
        """Up to `BATCH_RECORDS` records: what the consumer holds already, or else the first to
        come within 0.1 s and what came with it (librdkafka's batch call waits out its whole
        timeout for a batch it cannot fill: 0.1 s more on a quiet pipeline's every change)."""
        assert self.consumer is not None
        records = self.consumer.consume(BATCH_RECORDS, 0)
        if not records:
            first = self.consumer.consume(1, 0.1)
            records = first + self.consumer.consume(BATCH_RECORDS - 1, 0) if first else first
        return self._first_of_every_partition(records) if self._awaited and records else records

    def _first_of_every_partition(self, records: list[Message]) -> list[Message]:
        """After an assignment, ``records`` and what follows until every assigned partition
        with records to read (`_awaited`) has delivered some, within `FIRST_BATCH_WAIT_S` and
        `FIRST_BATCH_MAX`: one batch, which `in_time_order` puts in the order it was written.
        librdkafka starts fetching each partition when it has found its offset, in no set order:
        a replay's first 1,500 projects were read before their company's row, and waited for
        it at the gate. A partition the consumer has read to that end without delivering a
        record (all that was left were transaction markers, or an aborted transaction's records:
        librdkafka's position passes them) has nothing to wait for."""
        assert self.consumer is not None
        deadline = time.monotonic() + FIRST_BATCH_WAIT_S
        while True:
            for m in records:
                self._awaited.pop((cast(str, m.topic()), cast(int, m.partition())), None)
            self._read_to_the_end()
            if not self._awaited or len(records) >= FIRST_BATCH_MAX or time.monotonic() >= deadline:
                self._awaited.clear()
                return records
            records = records + self.consumer.consume(BATCH_RECORDS, 0.05)

    def _read_to_the_end(self) -> None:
        """Forget the awaited partitions whose position reached the end they had."""
        assert self.consumer is not None
        if self._awaited:
            for tp in self.consumer.position([TopicPartition(t, p) for t, p in self._awaited]):
                if tp.offset >= self._awaited[(tp.topic, tp.partition)]:
                    del self._awaited[(tp.topic, tp.partition)]

    async def _loop(self) -> None:
        assert self.consumer is not None
        while not self._stop:
            self.heartbeat.beat()
            records = self._take()
            now = time.monotonic()
            tick = bool(self.owned) and now - self._last_tick >= self.config.tick_interval_s
            if tick:
                self._last_tick = now
            if records or tick:
                await self._committed(records, tick)
            if now - self._last_parked_age >= metrics.PARKED_AGE_INTERVAL_S:
                self._last_parked_age = now
                observe_parked_age(self.gatekeeper.rt, _now_ms())

    # -- partitions ----------------------------------------------------------------------
    def _assigned(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        gate = sorted({tp.partition for tp in tps if tp.topic == self.gate_topic})
        self._recover(gate)
        self._resume_clock(gate)
        self.owned = set(gate)
        count = self._fill_view()
        log.info("Joined group %s: %d partition(s) assigned, gate partitions %s; fact view warmed with %d "
                 "facts of this worker's partitions", self.config.app_id, len(tps), gate, count)
        if not self._ready:
            self._ready = True
            log.info("Worker ready")
        self._check_partitions(consumer, tps)

    def _revoked(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        self._positions.clear()
        self._awaited.clear()
        self.stores.close(sorted(self.owned))
        self.owned = set()
        self.view.clear()
        self.gatekeeper.published.clear()

    def _fill_view(self) -> int:
        """As `streams.factview.FactView.fill_from`, at once: the loop waits for the
        assignment anyway."""
        for key, value in self.stores["facts"].items():
            if isinstance(value, dict):
                self.view.fill(key, value)
            if len(self.view) >= self.view.max_facts:
                break
        return len(self.view)

    def _recover(self, partitions: Iterable[int]) -> None:
        """Open the tables of ``partitions`` and read their changelogs' tails into them."""
        starts: list[TopicPartition] = []
        names: dict[str, str] = {}
        probe = Consumer({**self._client(), "group.id": f"{self.config.app_id}-recovery",
                          "enable.auto.commit": False, "isolation.level": "read_committed",
                          "enable.partition.eof": True}, logger=log)
        try:
            for p in partitions:
                for name, offset in self.stores.open(p).items():
                    topic = self.stores.topics[name]
                    names[topic] = name
                    start = OFFSET_BEGINNING if offset is None else offset + 1
                    low, high = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                    if high > max(low, 0 if offset is None else offset + 1):
                        starts.append(TopicPartition(topic, p, start))
            if not starts:
                return
            started, count = time.monotonic(), 0
            probe.assign(starts)
            left = {(tp.topic, tp.partition) for tp in starts}
            while left:
                self.heartbeat.beat()  # a long catch-up is not a stall
                got: dict[tuple[str, int], list[tuple[bytes, bytes | None, int]]] = {}
                for message in probe.consume(10_000, 1.0):
                    err = message.error()
                    m = _Record.of(message)
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            left.discard((m.topic, m.partition))
                            continue
                        raise KafkaException(err)
                    got.setdefault((m.topic, m.partition), []).append((m.key or b"", m.value, m.offset))
                for (topic, p), records in got.items():
                    self.stores.apply(names[topic], p, records)
                    count += len(records)
            log.info("tables of partitions %s caught up: %d changelog record(s) in %.1f s",
                     sorted(set(partitions)), count, time.monotonic() - started)
        finally:
            probe.close()

    def _check_partitions(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        """Report records retention deleted before the group read them, and note the
        partitions with records to read (`_first_of_every_partition`)."""
        try:
            committed = {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None)
                         for tp in consumer.committed(tps, timeout=10)}
            marks = {(tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=10) for tp in tps}
        except KafkaException as exc:
            log.warning("could not compare committed offsets with log starts: %s", exc)
            return
        report_expired(committed, {tp: low for tp, (low, _high) in marks.items()})
        self._awaited = {tp: high for tp, (low, high) in marks.items() if high > max(low, committed.get(tp) or 0)}

    # -- the process ---------------------------------------------------------------------
    async def run(self) -> None:
        await self.app.check_topics()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        self.producer = self._producer()
        self.producer.init_transactions(60)
        self.consumer = self._consumer()
        self.consumer.subscribe(self._topics(), on_assign=self._assigned, on_revoke=self._revoked)
        log.info("batch engine started: reading %d topic(s)", len(self._topics()))
        self.heartbeat.beat()
        self.heartbeat.watch()
        try:
            await self._loop()
        except KafkaException as exc:
            # A batch that did not commit is read again from the committed offsets by the
            # next start; its table writes were never persisted.
            log.critical("dualwrite worker: Kafka refused a batch (%s); exiting to re-read from the "
                         "committed offsets", exc)
            logging.shutdown()
            os._exit(EXIT_STALLED)
        finally:
            self.heartbeat.stop()
        self.consumer.close()
        self.stores.close()
        log.info("batch engine stopped")

    def stop(self) -> None:
        self._stop = True
