"""The few Kafka calls the operations commands make, with expected failures made explicit.

Reading goes through `connectors.common.kafka` (`read_compacted`, `read_records`), writing
through its idempotent `AsyncProducer`; a broker that does not answer becomes
`KafkaUnreachable` (bootstrap address and a hint), a topic that was never created
`TopicMissing`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from connectors.common.kafka import AsyncProducer, Headers, KafkaConfig
from dualwrite.ops.errors import KafkaUnreachable, TopicMissing

__all__ = ["OutRecord", "produce_records", "quiet", "reaching", "require_topic"]

OutRecord = tuple[str, bytes | None, bytes | None, Headers | None]


def quiet(config: KafkaConfig) -> KafkaConfig:
    """The same config with librdkafka's own log lines (one per failed connect attempt, on
    stderr) limited to critical: a command reports an unreachable broker once, itself."""
    return config.model_copy(update={"client": {"log_level": "2", **config.client}})


@contextmanager
def reaching(config: KafkaConfig) -> Iterator[None]:
    """Turn the client's "no broker answered" errors into `KafkaUnreachable`."""
    try:
        yield
    except KafkaException as exc:
        raise KafkaUnreachable(config.bootstrap_servers, _describe(exc)) from None
    except TimeoutError as exc:
        raise KafkaUnreachable(config.bootstrap_servers, str(exc)) from None


def _describe(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    text = err.str() if isinstance(err, KafkaError) else str(exc)
    return str(text) or type(exc).__name__


def require_topic(config: KafkaConfig, topic: str, timeout: float) -> None:
    """Raise `TopicMissing` unless ``topic`` exists (`KafkaUnreachable` if nobody answers)."""
    with reaching(config):
        metadata = AdminClient(config.base()).list_topics(timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        raise TopicMissing(topic)


def produce_records(config: KafkaConfig, records: list[OutRecord], *, timeout: float,
                    on_delivered: Callable[[], None] | None = None) -> int:
    """Produce with the idempotent producer and wait until Kafka acknowledged every record;
    ``on_delivered`` runs once per acknowledged record (a progress bar). Returns the count."""
    timeout_ms = str(max(1000, int(timeout * 1000)))

    async def run() -> int:
        producer = AsyncProducer(config, **{"message.timeout.ms": timeout_ms})
        try:
            futures = []
            for record in records:
                future = producer.produce(*record)
                if on_delivered is not None:
                    future.add_done_callback(
                        lambda f: on_delivered() if not f.cancelled() and f.exception() is None
                        else None)
                futures.append(future)
            if futures:
                await asyncio.gather(*futures)
            return len(futures)
        finally:
            await asyncio.to_thread(producer.close, timeout)

    with reaching(config):
        return asyncio.run(run())
