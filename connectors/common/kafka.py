"""Kafka edge of the connectors (confluent-kafka / librdkafka).

- `KafkaConfig`: broker address and client settings (security etc.), injected by the CLI;
  secrets stay `SecretStr` until a client is built.
- `AsyncProducer`: idempotent producer (``enable.idempotence=true``, ``acks=all``) whose
  ``produce`` returns an asyncio future resolved by the delivery report, so callers can await
  "Kafka has it" before they checkpoint or commit. A daemon thread serves librdkafka callbacks.
  ``produce_all`` waits for a whole batch (a source's page) through one delivery count and one
  wake-up of the event loop, not a future per record: at thousands of records a page, the
  per-record futures and loop callbacks cost more than producing them. With ``flush`` the batch
  goes out at once instead of after ``linger.ms`` (a second daemon thread flushes on request).
- `read_compacted`: the latest value per key of a (compacted) topic, read from the beginning up
  to the high watermark taken at start, with no consumer group (nothing committed).
- `read_records`: every record of a topic the same way, with partition, offset and headers
  (the DLQ tools read ``sync.dlq`` with it).
- `commands_consumer`: a group consumer with manual commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["AsyncProducer", "KafkaConfig", "KafkaRecord", "commands_consumer", "read_compacted",
           "read_records"]

Headers = list[tuple[str, str | bytes | None]]


class KafkaConfig(BaseModel):
    """How a connector reaches Kafka; ``client`` carries extra librdkafka settings (security,
    translated once by `dualwrite.settings.KafkaSettings.librdkafka`). Secret values (any
    ``*password*`` setting) are kept as `SecretStr`, so no repr or log shows them; `base` reveals
    them only to build a client."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port list.")
    client: dict[str, str | SecretStr] = Field(default_factory=dict,
                                              description="Extra librdkafka settings.")

    @field_validator("client")
    @classmethod
    def _hide_secrets(cls, client: dict[str, str | SecretStr]) -> dict[str, str | SecretStr]:
        return {k: SecretStr(v) if "password" in k and isinstance(v, str) else v
                for k, v in client.items()}

    def base(self) -> dict[str, Any]:
        """The librdkafka configuration of a client, secrets revealed (hand it to a client only)."""
        revealed = {k: v.get_secret_value() if isinstance(v, SecretStr) else v
                    for k, v in self.client.items()}
        return {**revealed, "bootstrap.servers": self.bootstrap_servers}


QUEUE_MAX_MESSAGES = 100_000  # librdkafka's default queue.buffering.max.messages
QUEUE_MAX_KBYTES = 1_048_576  # and its default queue.buffering.max.kbytes


class _Deliveries:
    """The delivery reports of one batch, counted on whichever thread serves them (the poll
    thread, the flusher, a producer waiting for queue room), with a single wake-up of the event
    loop once the last is in. The batch fails with the first error reported."""

    __slots__ = ("_error", "_left", "_lock", "_loop", "done")

    def __init__(self, count: int, loop: asyncio.AbstractEventLoop) -> None:
        self._left = count
        self._error: KafkaError | None = None
        self._lock = threading.Lock()
        self._loop = loop
        self.done: asyncio.Future[None] = loop.create_future()

    def report(self, err: KafkaError | None, _msg: Message) -> None:
        with self._lock:
            if err is not None and self._error is None:
                self._error = err
            self._left -= 1
            last = self._left == 0
        if last:
            # The loop may be gone when a late report arrives at shutdown; nobody awaits it then.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if self.done.done():
            return
        if self._error is not None:
            self.done.set_exception(KafkaException(self._error))
        else:
            self.done.set_result(None)


class AsyncProducer:
    """Idempotent producer with awaitable deliveries; close() flushes."""

    FLUSH_SLICE_S = 1.0  # one flush of the flusher thread; it flushes again while asked to

    def __init__(self, config: KafkaConfig, **overrides: Any) -> None:
        conf = {**config.base(), "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                "compression.type": "lz4", **overrides}
        self._producer = Producer(conf)
        # What librdkafka's queue holds at most: a batch that fits is produced in one call.
        self._queue_room = int(conf.get("queue.buffering.max.messages", QUEUE_MAX_MESSAGES))
        self._queue_bytes = int(conf.get("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES)) * 1024
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-producer-poll", daemon=True)
        self._thread.start()
        self._flush_wanted = threading.Event()
        self._flusher: threading.Thread | None = None  # started by the first flush request
        self._placers: dict[str, Callable[[bytes], int]] = {}

    def place(self, topic: str, partition_of: Callable[[bytes], int]) -> None:
        """Records to ``topic`` go to the partition ``partition_of`` gives their key, instead of
        librdkafka's partitioner (a sink's acks: `topics.ack_partition`)."""
        self._placers[topic] = partition_of

    def partitions(self, topic: str, timeout: float = 10.0) -> int:
        """How many partitions ``topic`` has (0 when the cluster does not list it)."""
        info = self._producer.list_topics(topic, timeout=timeout).topics.get(topic)
        return 0 if info is None or info.error is not None else len(info.partitions)

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

    def _flush_on_request(self) -> None:
        """librdkafka sends everything queued at once while a flush runs (``linger.ms`` does not
        apply), so a batch someone waits for is not held back; done on this thread, because a
        flush blocks until the queue is empty and must block neither the event loop nor a
        shared executor thread. Requests made during a flush are served by the next one."""
        while not self._stop.is_set():
            if self._flush_wanted.wait(0.1):
                self._flush_wanted.clear()
                self._producer.flush(self.FLUSH_SLICE_S)

    def _request_flush(self) -> None:
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_on_request, name="kafka-producer-flush",
                                             daemon=True)
            self._flusher.start()
        self._flush_wanted.set()

    def _produce(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers | None,
                 on_delivery: Callable[[KafkaError | None, Message], None]) -> None:
        placer = self._placers.get(topic)
        partition = -1 if placer is None or key is None else placer(key)  # -1: librdkafka's partitioner
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers or None,
                                       partition=partition, on_delivery=on_delivery)
                return
            except BufferError:
                # Local queue full: librdkafka drains it as the poll thread serves deliveries.
                self._producer.poll(0.1)

    def _produce_runs(self, records: list[tuple[str, bytes | None, bytes | None, Headers | None]],
                      report: Callable[[KafkaError | None, Message], None]) -> None:
        """Records without headers, in order, one ``produce_batch`` per run of one topic (0.8 us
        a record against 1.4 for a ``produce`` each). The caller checked that the queue has
        room for them (`_fits`), so none is refused for room and none overtakes another. A
        record refused anyway is reported with its error: the batch fails, as `produce` would
        have raised (a source's page, a sink's acks are then sent again whole, in order)."""
        start = 0
        while start < len(records):
            topic = records[start][0]
            end = start
            while end < len(records) and records[end][0] == topic:
                end += 1
            if topic in self._placers:  # ``produce_batch`` ignores a record's own partition
                for _, key, value, _ in records[start:end]:
                    self._produce(topic, key, value, None, report)
                start = end
                continue
            messages = [{"key": key, "value": value} for _, key, value, _ in records[start:end]]
            self._producer.produce_batch(topic, messages, on_delivery=report)
            for message in messages:
                error = message.get("_error")
                if error is not None:
                    report(error, None)  # type: ignore[arg-type]
            start = end

    def _fits(self, records: list[tuple[str, bytes | None, bytes | None, Headers | None]]) -> bool:
        """Whether `_produce_runs` may take the batch: no record has headers (``produce_batch``
        cannot carry them; such a batch goes record by record, in order), the queue has room
        for its count, and its bytes are at most a quarter of the queue's (what is queued
        already is known by count only: a batch refused for bytes all the same fails)."""
        if len(self._producer) + len(records) > self._queue_room:
            return False
        size = 0
        for _, key, value, headers in records:
            if headers:
                return False
            size += len(key or b"") + len(value or b"")
        return size <= self._queue_bytes // 4

    def produce(self, topic: str, key: bytes | None, value: bytes | None,
                headers: Headers | None = None) -> asyncio.Future[Message]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Message] = loop.create_future()

        def delivered(err: KafkaError | None, msg: Message) -> None:
            def settle() -> None:
                if future.done():
                    return
                if err is not None:
                    future.set_exception(KafkaException(err))
                else:
                    future.set_result(msg)
            # The loop may be gone when a late report arrives at shutdown; nobody awaits it then.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle)

        self._produce(topic, key, value, headers, delivered)
        return future

    async def produce_all(self, records: list[tuple[str, bytes | None, bytes | None, Headers | None]],
                          *, flush: bool = False) -> None:
        """Produce and wait until Kafka acknowledged every record; `KafkaException` with the
        first error reported, once every record has its report. ``flush``: send them at once
        rather than after ``linger.ms`` (a caller that waits for nothing else, like a source's
        page before its checkpoint)."""
        if not records:
            return
        deliveries = _Deliveries(len(records), asyncio.get_running_loop())
        report = deliveries.report
        if self._fits(records):
            self._produce_runs(records, report)
        else:
            produce = self._produce
            for topic, key, value, headers in records:
                produce(topic, key, value, headers, report)
        if flush:
            self._request_flush()
        await deliveries.done

    def close(self, timeout: float = 30.0) -> None:
        self._producer.flush(timeout)
        self._stop.set()
        self._thread.join(5)
        if self._flusher is not None:
            self._flusher.join(5)


def _topic_partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        return []
    return sorted(info.partitions)


@dataclass(frozen=True)
class KafkaRecord:
    """One record as read from a topic, with where it sits and its headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    timestamp_ms: int | None


_SETTLING = (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE)
# librdkafka drops its bootstrap connection once metadata names the brokers, and by default
# (sparse connections) connects to the named one only after half of reconnect.backoff.ms (its
# default 100 ms): about 50 ms of every read of a topic, measured, more than the read itself.
# A short-lived reader connects to the brokers it learns at once and starts its backoff lower;
# the backoff still doubles up to reconnect.backoff.max.ms against a broker that is down. The
# client settings of the configuration win over these.
READER_CONNECTIONS: dict[str, Any] = {"enable.sparse.connections": False, "reconnect.backoff.ms": 20}


def _watermarks(consumer: Consumer, tp: TopicPartition, timeout: float) -> tuple[int, int]:
    """(low, high) offsets; a new topic's leader may still be settling on the broker (NOT_LEADER
    even once metadata names one), so those answers are asked again until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            if exc.args[0].code() not in _SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _read_to_end(config: KafkaConfig, topic: str, timeout: float) -> Iterator[Message]:
    """Every record of ``topic`` from the beginning up to the end offsets taken at start, in
    order within each partition; no consumer group (nothing committed). A missing topic reads
    as empty. Raises `KafkaException` when the cluster cannot be reached within ``timeout``."""
    consumer = Consumer({**READER_CONNECTIONS, **config.base(), "group.id": f"dualwrite-reader-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "auto.offset.reset": "earliest"})
    try:
        partitions = _topic_partitions(consumer, topic, timeout)
        ends: dict[int, int] = {}
        for p in partitions:
            low, high = _watermarks(consumer, TopicPartition(topic, p), timeout)
            if high > low:
                ends[p] = high
        if not ends:
            return
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        remaining = dict(ends)
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end in {timeout}s")
            msg = consumer.poll(0.5)
            if msg is None:
                # Offsets may end in gaps (compaction, control records): ask where we are.
                for tp in consumer.position([TopicPartition(topic, p) for p in list(remaining)]):
                    if tp.offset >= remaining[tp.partition]:
                        del remaining[tp.partition]
                continue
            if msg.error():
                raise KafkaException(msg.error())
            partition, offset = msg.partition(), msg.offset()
            if partition not in remaining or offset is None or offset >= remaining[partition]:
                continue  # appended after we started: not part of this read
            yield msg
            if offset + 1 >= remaining[partition]:
                del remaining[partition]
    finally:
        consumer.close()


def read_compacted(config: KafkaConfig, topic: str, *, timeout: float = 30.0,
                   accept: Callable[[bytes], bool] | None = None) -> dict[bytes, bytes | None]:
    """Latest value per key (None = tombstone) up to the end of the topic at call time.

    Blocking: call through ``asyncio.to_thread``. A missing topic reads as empty.
    """
    latest: dict[bytes, bytes | None] = {}
    for msg in _read_to_end(config, topic, timeout):
        key = msg.key()
        if key is not None and (accept is None or accept(key)):
            latest[key] = msg.value()
    return latest


def _headers(msg: Message) -> list[tuple[str, bytes | None]]:
    raw = msg.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(str(name), value.encode() if isinstance(value, str) else value)
            for name, value in pairs]


def read_records(config: KafkaConfig, topic: str, *, timeout: float = 30.0) -> list[KafkaRecord]:
    """Every record of a (non-compacted) topic up to its end at call time, with partition,
    offset and headers; ordered by timestamp, then partition and offset.

    Blocking: call through ``asyncio.to_thread``. A missing topic reads as empty.
    """
    out: list[KafkaRecord] = []
    for msg in _read_to_end(config, topic, timeout):
        _kind, ts = msg.timestamp()
        out.append(KafkaRecord(topic=topic, partition=msg.partition() or 0, offset=msg.offset() or 0,
                               key=msg.key(), value=msg.value(),
                               headers=_headers(msg),
                               timestamp_ms=ts if ts and ts > 0 else None))
    out.sort(key=lambda r: (r.timestamp_ms or 0, r.partition, r.offset))
    return out


def commands_consumer(config: KafkaConfig, topic: str, group_id: str, **overrides: Any) -> Consumer:
    """Group consumer with manual commits, starting at the earliest offset for a new group."""
    consumer = Consumer({**config.base(), "group.id": group_id, "enable.auto.commit": False,
                         "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                         "partition.assignment.strategy": "cooperative-sticky", **overrides})
    consumer.subscribe([topic])
    return consumer
