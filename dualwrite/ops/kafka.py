"""The few Kafka calls the operations commands make, with expected failures made explicit.

Reading goes through `connectors.common.kafka` (`read_compacted`, `read_records`), writing
through its idempotent `AsyncProducer`; a broker that does not answer becomes
`KafkaUnreachable` (bootstrap address and a hint), a topic that was never created
`TopicMissing`. librdkafka reports a refused login or TLS handshake to the caller only as
"transport failure", so after a failure `kafka_failure` asks a probe client what happened:
a broker that answered but refused the credentials, the certificate or the protocol is
`KafkaRefused` (authentication, tls, protocol), never "cannot reach".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from connectors.common.kafka import AsyncProducer, Headers, KafkaConfig
from dualwrite.ops.errors import (
    KafkaRefused,
    KafkaUnreachable,
    OpsError,
    TopicMissing,
    TopicsMissing,
)

__all__ = ["OutRecord", "await_topics", "kafka_failure", "produce_records", "quiet", "reaching", "require_topic"]

OutRecord = tuple[str, bytes | None, bytes | None, Headers | None]


def quiet(config: KafkaConfig) -> KafkaConfig:
    """The same config with librdkafka's own log lines (one per failed connect attempt, on
    stderr) limited to critical: a command reports an unreachable broker once, itself."""
    return config.model_copy(update={"client": {"log_level": "2", **config.client}})


@contextmanager
def reaching(config: KafkaConfig) -> Iterator[None]:
    """Turn the client's "no broker answered" errors into `kafka_failure`'s typed error."""
    try:
        yield
    except KafkaException as exc:
        raise kafka_failure(config, describe(exc)) from None
    except TimeoutError as exc:
        raise kafka_failure(config, str(exc)) from None


def describe(exc: KafkaException) -> str:
    err = exc.args[0] if exc.args else None
    text = err.str() if isinstance(err, KafkaError) else str(exc)
    return str(text) or type(exc).__name__


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def kafka_failure(config: KafkaConfig, detail: str, probe_s: float = 5.0) -> OpsError:
    """What a failed call to the cluster means: `KafkaRefused` when a probe client finds the
    broker answering but refusing the credentials, the TLS handshake or the protocol;
    `KafkaUnreachable` (with ``detail``) otherwise."""
    errors: list[KafkaError] = []
    collect = _Collect()
    logger = logging.Logger("dualwrite.kafka.diagnose", logging.DEBUG)  # not registered: no leak
    logger.addHandler(collect)
    protocol = str(config.client.get("security.protocol", "PLAINTEXT"))
    producer = Producer({**config.base(), "error_cb": errors.append, "logger": logger,
                         "log_level": 7})
    try:
        deadline = time.monotonic() + probe_s
        while time.monotonic() < deadline:
            producer.poll(0.2)
            for err in errors:
                if err.code() == KafkaError._AUTHENTICATION:
                    return KafkaRefused(config.bootstrap_servers, "authentication", err.str())
                if err.code() == KafkaError._SSL:
                    return KafkaRefused(config.bootstrap_servers, "tls", err.str())
            for line in collect.lines:
                # Closed by the peer while asking for API versions, the first request of a
                # connection: a TLS or SASL listener hearing a client that does not speak it.
                if "Disconnected" in line and "APIVERSION_QUERY" in line:
                    return KafkaRefused(config.bootstrap_servers, "protocol",
                                        line.rpartition("]: ")[2], protocol)
                if "Connect to" in line and "failed" in line:
                    return KafkaUnreachable(config.bootstrap_servers, detail)
    finally:
        producer.flush(0)
    return KafkaUnreachable(config.bootstrap_servers, detail)


def require_topic(config: KafkaConfig, topic: str, timeout: float) -> None:
    """Raise `TopicMissing` unless ``topic`` exists (`KafkaUnreachable` if nobody answers)."""
    with reaching(config):
        metadata = AdminClient(config.base()).list_topics(timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        raise TopicMissing(topic)


def await_topics(config: KafkaConfig, topics: list[str], timeout_s: float, *,
                 on_wait: Callable[[list[str]], None] | None = None, poll_s: float = 1.0) -> None:
    """Return once the cluster lists every one of ``topics``; after ``timeout_s`` raise
    `TopicsMissing` naming the missing ones, or the typed error of a cluster that never answered
    (`KafkaUnreachable`, `KafkaRefused`). ``on_wait`` hears the missing ones once, when the
    first look finds some. Every look lists all topics: a metadata request that names a
    missing topic makes a broker with ``auto.create.topics.enable`` create it with its own
    defaults (a producer's does), which is what this wait exists to prevent."""
    deadline = time.monotonic() + timeout_s
    admin = AdminClient(quiet(config).base())
    told = False
    while True:
        try:
            listed = admin.list_topics(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                raise kafka_failure(config, describe(exc)) from None
        else:
            missing = [t for t in topics if (info := listed.topics.get(t)) is None or info.error is not None]
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise TopicsMissing(missing, timeout_s)
            if on_wait is not None and not told:
                on_wait(missing)
                told = True
        time.sleep(poll_s)


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
