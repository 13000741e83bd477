"""The worker group's committed offsets as the group coordinator has them (an OffsetFetch).

The watchdog needs them twice: where the first record of a partition just assigned must be
(its committed offset, else its log start), and whether a committed offset stands still behind
waiting records. It used to read them from Faust's consumer (``Consumer._committed_offset``, the
offsets Faust last committed), a private attribute that a Faust release may rename or drop
without notice; the broker's answer is the same after every commit Faust made, and public.

The watchdog asks from its own thread (it must judge a worker whose event loop is blocked), so
this reader runs an admin client of its own on a private event loop, one call at a time. A
broker that does not answer within ``timeout_s`` gives None: the caller then knows nothing,
which is never a reason to exit.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Collection, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from streams.watchdog import Partition

__all__ = ["CommittedOffsets"]

log = logging.getLogger(__name__)


class CommittedOffsets:
    """``fetch(partitions)``: the committed offset of each (None: the group never committed it)."""

    def __init__(self, group: str, bootstrap_servers: list[str], auth: Mapping[str, Any],
                 timeout_s: float = 5.0) -> None:
        self.group = group
        self.timeout_s = timeout_s
        self._bootstrap = bootstrap_servers
        self._auth = dict(auth)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._admin: AIOKafkaAdminClient | None = None

    def fetch(self, partitions: Collection[Partition]) -> dict[Partition, int | None] | None:
        """Blocking, from any thread but the one running an event loop; None when the broker did
        not answer (the next call connects again)."""
        if not partitions:
            return {}
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            try:
                return self._loop.run_until_complete(asyncio.wait_for(self._fetch(partitions), self.timeout_s))
            except (KafkaError, OSError, TimeoutError) as exc:
                log.info("committed offsets of %s not read (%r); the next check asks again", self.group, exc)
                self._loop.run_until_complete(self._drop_admin())
                return None

    async def fetch_async(self, partitions: Collection[Partition]) -> dict[Partition, int | None] | None:
        """`fetch` from a coroutine: on a worker thread, so the caller's loop goes on."""
        return await asyncio.to_thread(self.fetch, partitions)

    def close(self) -> None:
        with self._lock:
            if self._loop is not None:
                self._loop.run_until_complete(self._drop_admin())
                self._loop.close()
                self._loop = None

    async def _fetch(self, partitions: Collection[Partition]) -> dict[Partition, int | None]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap,
                                        request_timeout_ms=int(self.timeout_s * 1000), **self._auth)
            await admin.start()
            self._admin = admin
        while True:
            try:
                found = await self._admin.list_consumer_group_offsets(
                    self.group, partitions=[TopicPartition(t, p) for t, p in partitions])
                break
            except KafkaError as exc:  # the coordinator still loading, or moving: within the timeout
                if not exc.retriable:
                    raise
                await asyncio.sleep(0.1)
        out: dict[Partition, int | None] = {tp: None for tp in partitions}
        for tp, meta in found.items():
            out[(tp.topic, tp.partition)] = meta.offset if meta.offset >= 0 else None
        return out

    async def _drop_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                await admin.close()
            except Exception:  # already broken: nothing left to release
                log.debug("closing the offsets admin client failed", exc_info=True)
