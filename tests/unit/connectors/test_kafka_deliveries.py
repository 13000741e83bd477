"""`AsyncProducer.produce_all`'s delivery count: one wake-up of the loop per batch, once every
record has its report, failing with the first error; reports may come from any thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from connectors.common.kafka import QUEUE_MAX_MESSAGES, AsyncProducer, KafkaConfig, _Deliveries

pytestmark = pytest.mark.unit


async def test_a_batch_is_done_once_every_record_has_its_report() -> None:
    deliveries = _Deliveries(3, asyncio.get_running_loop())
    deliveries.report(None, None)  # type: ignore[arg-type]
    deliveries.report(None, None)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert not deliveries.done.done()
    deliveries.report(None, None)  # type: ignore[arg-type]
    await asyncio.wait_for(deliveries.done, 5)


async def test_a_batch_fails_with_its_first_error_after_every_report() -> None:
    deliveries = _Deliveries(3, asyncio.get_running_loop())
    deliveries.report(None, None)  # type: ignore[arg-type]
    deliveries.report(KafkaError(KafkaError._MSG_TIMED_OUT), None)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert not deliveries.done.done()  # the last record has no report yet
    deliveries.report(KafkaError(KafkaError._TRANSPORT), None)  # type: ignore[arg-type]
    with pytest.raises(KafkaException) as info:
        await asyncio.wait_for(deliveries.done, 5)
    assert info.value.args[0].code() == KafkaError._MSG_TIMED_OUT


async def test_reports_from_several_threads_are_all_counted() -> None:
    deliveries = _Deliveries(4000, asyncio.get_running_loop())

    def serve() -> None:
        for _ in range(1000):
            deliveries.report(None, None)  # type: ignore[arg-type]

    threads = [threading.Thread(target=serve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    await asyncio.wait_for(deliveries.done, 5)


class FakeLibrdkafka:
    """What `AsyncProducer` asks of librdkafka's producer; every record is delivered at once,
    except a value ``b"refused"``, which ``produce_batch`` refuses (as it does one over
    ``message.max.bytes``)."""

    def __init__(self, queued: int = 0) -> None:
        self.calls: list[tuple[str, str, list[bytes | None]]] = []
        self.partitions: list[int] = []
        self.queued = queued

    def __len__(self) -> int:
        return self.queued

    def produce_batch(self, topic: str, messages: list[dict[str, object]], on_delivery: Any) -> int:
        self.calls.append(("batch", topic, [m["value"] for m in messages]))  # type: ignore[misc]
        for m in messages:
            if m["value"] == b"refused":
                m["_error"] = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
            else:
                on_delivery(None, None)
        return sum(1 for m in messages if "_error" not in m)

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None, headers: Any = None,
                partition: int = -1, on_delivery: Any = None) -> None:
        self.calls.append(("one", topic, [value]))
        self.partitions.append(partition)
        on_delivery(None, None)

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


def producer_with(fake: FakeLibrdkafka) -> AsyncProducer:
    producer = AsyncProducer(KafkaConfig(bootstrap_servers="127.0.0.1:9"))
    producer._producer.flush(0)
    producer._producer = fake  # type: ignore[assignment]
    return producer


async def test_records_go_in_order_one_batch_per_run_of_a_topic_and_headers_one_by_one() -> None:
    fake = FakeLibrdkafka()
    producer = producer_with(fake)
    try:
        records: list[tuple[str, bytes | None, bytes | None, Any]] = [
            ("a", b"k1", b"1", None), ("a", b"k2", b"2", None), ("b", b"k3", b"3", None), ("a", b"k4", b"4", None)]
        await asyncio.wait_for(producer.produce_all(records), 5)
        assert fake.calls == [("batch", "a", [b"1", b"2"]), ("batch", "b", [b"3"]), ("batch", "a", [b"4"])]
        fake.calls.clear()
        await asyncio.wait_for(producer.produce_all([("a", b"k", b"5", None), ("dlq", b"k", b"6", [("h", b"v")])]), 5)
        assert fake.calls == [("one", "a", [b"5"]), ("one", "dlq", [b"6"])]  # headers: produce_batch has none
    finally:
        producer.close(1)


async def test_a_placed_topics_records_go_one_by_one_each_to_its_partition_in_order() -> None:
    """``produce_batch`` ignores a record's own partition: a topic whose records are placed (a
    sink's acks) is produced record by record, the others still in one batch per run."""
    fake = FakeLibrdkafka()
    producer = producer_with(fake)
    producer.place("acks", lambda key: int(key[1:]) % 3)
    try:
        records: list[tuple[str, bytes | None, bytes | None, Any]] = [
            ("acks", b"k4", b"1", None), ("acks", b"k2", b"2", None), ("dlq", b"k3", b"3", None), ("acks", None, b"4", None)]
        await asyncio.wait_for(producer.produce_all(records), 5)
        assert fake.calls == [("one", "acks", [b"1"]), ("one", "acks", [b"2"]), ("batch", "dlq", [b"3"]),
                              ("one", "acks", [b"4"])]
        assert fake.partitions == [1, 2, -1]  # no key: librdkafka's partitioner chooses
    finally:
        producer.close(1)


async def test_a_record_the_batch_refuses_fails_the_batch_with_its_error() -> None:
    fake = FakeLibrdkafka()
    producer = producer_with(fake)
    try:
        with pytest.raises(KafkaException) as info:
            await asyncio.wait_for(producer.produce_all([("a", b"k1", b"1", None), ("a", b"k2", b"refused", None),
                                                         ("a", b"k3", b"3", None)]), 5)
        assert info.value.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    finally:
        producer.close(1)


async def test_a_batch_the_queue_has_no_room_for_goes_record_by_record() -> None:
    fake = FakeLibrdkafka(queued=QUEUE_MAX_MESSAGES - 1)  # room for one more: produce waits for room itself
    producer = producer_with(fake)
    try:
        await asyncio.wait_for(producer.produce_all([("a", b"k1", b"1", None), ("a", b"k2", b"2", None)]), 5)
        assert fake.calls == [("one", "a", [b"1"]), ("one", "a", [b"2"])]
    finally:
        producer.close(1)


async def test_a_batch_larger_than_a_quarter_of_the_queue_goes_record_by_record() -> None:
    fake = FakeLibrdkafka()
    producer = producer_with(fake)
    producer._queue_bytes = 4000
    try:
        await asyncio.wait_for(producer.produce_all([("a", b"k1", b"x" * 600, None), ("a", b"k2", b"y" * 600, None)]), 5)
        assert [c[0] for c in fake.calls] == ["one", "one"]
        fake.calls.clear()
        await asyncio.wait_for(producer.produce_all([("a", b"k1", b"x" * 400, None), ("a", b"k2", b"y" * 400, None)]), 5)
        assert [c[0] for c in fake.calls] == ["batch"]
    finally:
        producer.close(1)
