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

The second guard: Faust seeks the stream partitions to their committed offsets when a recovery
ends, through aiokafka's ``seek_to_committed``, which seeks only where the committed offset is
above 0. Faust drops records it fetched for a partition that was paused meanwhile (a recovery
pauses every stream partition), after aiokafka counted them consumed; on a partition the group
never committed (or committed at 0) nothing brings them back. Seen in `dualwrite bench` P6: a
change waiting on such a partition before a 28-94 s recovery was not processed after "Worker
ready" until the watchdog restarted the worker 30 s later (the fetch position stood one past
it). So those partitions are sought too, to offset 0 or, never committed, to where
``consumer_auto_offset_reset`` says (`rewinds`); changelog partitions are Faust's own business.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import aiokafka
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

from streams.tuning import DEFAULT_FETCH_MAX_WAIT_MS

__all__ = ["Transport", "rewinds"]


def rewinds(committed: Mapping[TP, int | None], changelog: Callable[[TP], bool]) -> dict[TP, int | None]:
    """The stream partitions aiokafka's ``seek_to_committed`` left where they were: committed at
    0 (seek to 0) or never (None: the reset policy's end)."""
    return {tp: offset for tp, offset in committed.items() if not offset and not changelog(tp)}


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise RuntimeError("aiokafka's consumer no longer has _fetch_max_wait_ms: "
                               "streams/transport.py needs another way to set the fetch wait")
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_max_wait_ms", DEFAULT_FETCH_MAX_WAIT_MS)
        return consumer

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        todo = rewinds(committed, self.consumer._is_changelog_tp)
        if todo:
            await self.call_thread(self._rewind, todo)
        return committed

    async def _rewind(self, todo: Mapping[TP, int | None]) -> None:
        consumer = self._ensure_consumer()
        for tp, offset in todo.items():
            if offset == 0:
                consumer.seek(tp, 0)
        never = [tp for tp, offset in todo.items() if offset is None]
        if never and self.app.conf.consumer_auto_offset_reset == "latest":
            await consumer.seek_to_end(*never)
        elif never:
            await consumer.seek_to_beginning(*never)


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(driver.Transport):
    """Faust's aiokafka transport with the worker's fetch wait."""

    Consumer: ClassVar[Any] = _Consumer
