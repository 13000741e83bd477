"""The worker's Kafka transport: Faust's aiokafka driver, with a fetch wait of our choosing.

Faust's driver builds the worker's consumer with ``fetch_max_wait_ms=1500``, fixed in its code
and in no setting. aiokafka keeps one fetch request in flight per broker, and that request
leaves out every partition whose fetched records the worker has not consumed yet. When the
request in flight names only quiet partitions, the broker holds it for the whole wait, and
records arriving meanwhile on the busy partitions (the gate topic the worker has just written
to, a CDC topic in steady traffic) wait with it. With one broker every hop through the gate can
pay it. Measured in `dualwrite bench` P3 at 200 changes/s on the full stack: the worker stood
still about one second in every two and a half with records waiting, at half a core, and a
change took 3.1 s p50 from its CDC record to its command; the same worker fed the same rate
alone took 32 ms.

`fetch_max_wait_ms` (`StreamsConfig`) sets it instead. Lower costs idle fetch requests (one
per broker per wait when nothing moves), not throughput: a fetch still returns as soon as any
partition it names has a record.

The guard is one attribute of aiokafka's consumer, set before the consumer starts (its fetcher
is built in ``start()`` from it); `tests/unit/streams/test_transport.py` fails if an upgrade of
either library moves it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import aiokafka
from faust.transport.drivers import aiokafka as driver

__all__ = ["DEFAULT_FETCH_MAX_WAIT_MS", "Transport"]

DEFAULT_FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise RuntimeError("aiokafka's consumer no longer has _fetch_max_wait_ms: "
                               "streams/transport.py needs another way to set the fetch wait")
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        return consumer


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    """Faust's aiokafka transport with the worker's fetch wait."""

    Consumer: ClassVar[Any] = _Consumer
