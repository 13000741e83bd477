"""The one time seam: wall time, monotonic time and sleeping, injected everywhere.

`SystemClock` is the real thing; `FakeClock` ships with the code (arroyo habit) so throttling
and token expiry are tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (for HTTP dates and ts_ms)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (for deadlines)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (never negative)."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """Time moves only when someone sleeps or calls `advance`; sleeps are recorded."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)  # still yield, so other tasks run as they would
