"""`AsyncProducer.produce_all`'s delivery count: one wake-up of the loop per batch, once every
record has its report, failing with the first error; reports may come from any thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from connectors.common.kafka import _Deliveries

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
