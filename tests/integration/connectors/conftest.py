"""Helpers for connector integration tests: real broker, unique topics, raw reads and writes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from pydantic import SecretStr

from connectors.common.http import HttpConfig
from connectors.common.kafka import KafkaConfig
from connectors.dataverse import DataverseConnection
from connectors.finance import FinanceConnection
from tests.support.emulators import RunningEmulator, start_emulator
from tests.support.kafka import end_offset, wait_for_leaders

FAST = HttpConfig(max_attempts=12, backoff_base_s=0.05, backoff_cap_s=0.5, timeout_s=10.0)


def create_topics(bootstrap: str, names: list[str], compacted: tuple[str, ...] = (), partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    specs = [NewTopic(n, num_partitions=1 if n in compacted else partitions, replication_factor=1,
                      config={"cleanup.policy": "compact"} if n in compacted else {}) for n in names]
    for future in admin.create_topics(specs).values():
        future.result(30)
    wait_for_leaders(admin, names)


def read_all(bootstrap: str, topic: str, timeout: float = 20.0) -> list[tuple[bytes | None, bytes | None, dict[str, bytes]]]:
    """Every record of ``topic`` up to its current end: (key, value, headers)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics[topic]
        ends = {p: end_offset(consumer, TopicPartition(topic, p), timeout) for p in meta.partitions}
        wanted = {p: h for p, h in ends.items() if h > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in wanted])
        out: list[tuple[bytes | None, bytes | None, dict[str, bytes]]] = []
        deadline = time.monotonic() + timeout
        while wanted and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            headers = {str(k): bytes(v or b"") for k, v in (msg.headers() or [])}  # type: ignore[arg-type,str-unpack]
            out.append((msg.key(), msg.value(), headers))
            if (msg.offset() or 0) + 1 >= wanted.get(msg.partition() or 0, 0):
                wanted.pop(msg.partition() or 0, None)
        assert not wanted, f"{topic}: did not reach the end"
        return out
    finally:
        consumer.close()


def produce_raw(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value in records:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


@pytest.fixture
def kafka(kafka_bootstrap: str) -> KafkaConfig:
    return KafkaConfig(bootstrap_servers=kafka_bootstrap)


@pytest.fixture
def dataverse_emu(tmp_path: Path) -> Iterator[RunningEmulator]:
    emu = start_emulator("dataverse", tmp_path, "--seed")
    yield emu
    emu.stop()


@pytest.fixture
def finance_emu(tmp_path: Path) -> Iterator[RunningEmulator]:
    emu = start_emulator("finance", tmp_path, "--seed")
    yield emu
    emu.stop()


def dataverse_conn(emu: RunningEmulator) -> DataverseConnection:
    return DataverseConnection(url=emu.base_url, token_url=emu.token_url, client_id=emu.client_id,
                               client_secret=SecretStr(emu.client_secret), http=FAST)


def finance_conn(emu: RunningEmulator) -> FinanceConnection:
    return FinanceConnection(url=emu.base_url, token_url=emu.token_url, client_id=emu.client_id,
                             client_secret=SecretStr(emu.client_secret), http=FAST)
