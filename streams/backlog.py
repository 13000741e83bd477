"""How far ``ingest`` may run ahead of this worker's gate.

Both agents share one event loop. Faust hands ``ingest`` a whole burst of CDC records, and each
send to the gate topic returns at once (the producer buffers), so ``ingest`` used to read an
entire burst before the gate got the loop: the first change of 800 waited for the last one to be
routed. `GateBacklog` bounds the gap: every ``check_every`` records ``ingest`` yields the loop
once, and while the gate partitions this worker owns lag more than ``limit`` records behind
their end it waits for the gate to catch up. A worker's gate may be slow for reasons ``ingest``
cannot help (another worker's ingest feeding it, a sink's pause): the wait is capped at
``max_wait_s`` per check, so backpressure slows ``ingest`` and never stops it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["GateBacklog"]


@dataclass
class GateBacklog:
    limit: int  # records; 0: no bound
    lag: Callable[[], int]  # records the local gate has yet to handle on its partitions
    check_every: int = 64
    pause_s: float = 0.005
    max_wait_s: float = 2.0
    _seen: int = field(default=0, init=False)

    async def admit(self) -> float:
        """Call before each record ``ingest`` handles; returns the seconds it waited."""
        self._seen += 1
        if self.limit <= 0 or self._seen % self.check_every:
            return 0.0
        await asyncio.sleep(0)  # let the gate (and the fetcher feeding it) have the loop
        if self.lag() <= self.limit:
            return 0.0
        started = time.monotonic()
        while time.monotonic() - started < self.max_wait_s:
            await asyncio.sleep(self.pause_s)
            if self.lag() <= self.limit:
                break
        return time.monotonic() - started
