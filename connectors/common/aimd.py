"""Additive-increase / multiplicative-decrease concurrency limiter (TCP congestion control).

The target's service protection limits are not known in advance (Dataverse: 52 concurrent
requests "may be higher"; Finance: resource-based), so the number of requests in flight is
learnt: +1 after each success up to ``maximum``, halved on each 429/503 down to ``minimum``.
Requests already in flight when the limit drops finish normally; new ones wait for a slot.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

__all__ = ["AIMDLimiter"]


class AIMDLimiter:
    def __init__(self, initial: int = 4, minimum: int = 1, maximum: int = 32) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")
        self.minimum = minimum
        self.maximum = maximum
        self._limit = initial
        self._in_flight = 0
        self._changed = asyncio.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def on_success(self) -> None:
        # No wake-up needed: callers report inside their slot, and the release that follows
        # notifies every waiter, which re-reads the (now larger) limit.
        self._limit = min(self.maximum, self._limit + 1)

    def on_throttle(self) -> None:
        self._limit = max(self.minimum, self._limit // 2)

    async def acquire(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < self._limit)
            self._in_flight += 1

    async def release(self) -> None:
        async with self._changed:
            self._in_flight -= 1
            self._changed.notify_all()

    async def __aenter__(self) -> AIMDLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.release()
