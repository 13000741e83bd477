"""Kafka edge of the connectors (confluent-kafka / librdkafka).

- `KafkaConfig`: broker address and client settings (security etc.), injected by the CLI.
- `AsyncProducer`: idempotent producer (``enable.idempotence=true``, ``acks=all``) whose
  ``produce`` returns an asyncio future resolved by the delivery report, so callers can await
  "Kafka has it" before they checkpoint or commit. A daemon thread serves librdkafka callbacks.
- `read_compacted`: the latest value per key of a (compacted) topic, read from the beginning up
  to the high watermark taken at start, with no consumer group (nothing committed).
- `commands_consumer`: a group consumer with manual commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable
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
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AsyncProducer", "KafkaConfig", "commands_consumer", "read_compacted"]

Headers = list[tuple[str, str | bytes | None]]


class KafkaConfig(BaseModel):
    """How a connector reaches Kafka; ``client`` carries extra librdkafka settings (security)."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:9092", description="host:port list.")
    client: dict[str, str] = Field(default_factory=dict, description="Extra librdkafka settings.")

    def base(self) -> dict[str, Any]:
        return {**self.client, "bootstrap.servers": self.bootstrap_servers}


class AsyncProducer:
    """Idempotent producer with awaitable deliveries; close() flushes."""

    def __init__(self, config: KafkaConfig, **overrides: Any) -> None:
        conf = {**config.base(), "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                "compression.type": "lz4", **overrides}
        self._producer = Producer(conf)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-producer-poll", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.05)

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

        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers or None,
                                       on_delivery=delivered)
                return future
            except BufferError:
                # Local queue full: librdkafka drains it as the poll thread serves deliveries.
                self._producer.poll(0.1)

    async def produce_all(self, records: list[tuple[str, bytes | None, bytes | None, Headers | None]]) -> None:
        """Produce and wait until Kafka acknowledged every record (raises on any failure)."""
        futures = [self.produce(*record) for record in records]
        if futures:
            await asyncio.gather(*futures)

    def close(self, timeout: float = 30.0) -> None:
        self._producer.flush(timeout)
        self._stop.set()
        self._thread.join(5)


def _topic_partitions(consumer: Consumer, topic: str, timeout: float) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        return []
    return sorted(info.partitions)


def read_compacted(config: KafkaConfig, topic: str, *, timeout: float = 30.0,
                   accept: Callable[[bytes], bool] | None = None) -> dict[bytes, bytes | None]:
    """Latest value per key (None = tombstone) up to the end of the topic at call time.

    Blocking: call through ``asyncio.to_thread``. A missing topic reads as empty.
    """
    consumer = Consumer({**config.base(), "group.id": f"dualwrite-reader-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "auto.offset.reset": "earliest"})
    latest: dict[bytes, bytes | None] = {}
    try:
        partitions = _topic_partitions(consumer, topic, timeout)
        ends: dict[int, int] = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
        if not ends:
            return latest
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
            key = msg.key()
            if key is not None and (accept is None or accept(key)):
                latest[key] = msg.value()
            partition, offset = msg.partition(), msg.offset()
            if partition in remaining and offset is not None and offset + 1 >= remaining[partition]:
                del remaining[partition]
        return latest
    finally:
        consumer.close()


def commands_consumer(config: KafkaConfig, topic: str, group_id: str, **overrides: Any) -> Consumer:
    """Group consumer with manual commits, starting at the earliest offset for a new group."""
    consumer = Consumer({**config.base(), "group.id": group_id, "enable.auto.commit": False,
                         "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
                         "partition.assignment.strategy": "cooperative-sticky", **overrides})
    consumer.subscribe([topic])
    return consumer
