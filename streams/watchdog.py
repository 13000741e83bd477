"""Liveness of the gate: exit when it stops handling records or skips some, so the supervisor
restarts it and the restarted worker replays from the committed offsets.

faust-streaming 0.15 can stop delivering records to an agent after a restart whose group had
not committed yet (we reproduced it: a worker SIGKILLed before its first commit; the restarted
worker resumes fetching before seeking to committed offsets, cf. faust-streaming#216; records
fetched in that window may never reach the agent while later ones do, and the committed offset
then stays behind the skipped record). We produce the gate topic ourselves, without
transactions or compaction, so its offsets are contiguous: a jump forward is a skipped record.
The gate also receives its own tick on every partition every
`tick_interval_s`, so a gate that handled nothing for `stall_timeout_s` outside a rebalance is
stuck, not idle. A rebalance or recovery excuses silence, but only for ``max_busy_s``: a worker
seen stuck "rebalancing" with its producer buffer full and every task waiting (chaos run) never
came back by itself. The check runs on its own thread, so it still fires when the event loop's
tasks (the timer that sends the ticks included) are all blocked. Exiting is safe: it is the same as the SIGKILL we already survive (offsets are
committed only after effects are flushed), and the restarted worker replays from the committed
offsets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["EXIT_STALLED", "Watchdog"]

EXIT_STALLED = 75  # EX_TEMPFAIL: try again

log = logging.getLogger(__name__)


@dataclass
class Watchdog:
    stall_timeout_s: float
    max_busy_s: float | None = None  # default: four stall timeouts
    ticking_since: float | None = field(default=None)
    last_offsets: dict[int, int] = field(default_factory=dict)

    def skipped(self, partition: int, offset: int) -> bool:
        """True when records between the last handled offset and ``offset`` never arrived."""
        last = self.last_offsets.get(partition)
        self.last_offsets[partition] = offset  # a seek back (rebalance) simply restarts the count
        return last is not None and offset > last + 1

    def stalled(self, last_handled: float, busy: bool, now: float | None = None) -> bool:
        """True when ticks have been sent for longer than the timeout and none was handled."""
        now = time.monotonic() if now is None else now
        limit = self.max_busy_s if self.max_busy_s is not None else 4 * self.stall_timeout_s
        if now - last_handled > limit:
            return True  # whatever the rebalance flags say (they were seen flapping while stuck)
        if busy:  # rebalancing or recovering: records are legitimately held back, for a while
            self.ticking_since = None
            return False
        if self.ticking_since is None:
            self.ticking_since = now
            return False
        return now - max(last_handled, self.ticking_since) > self.stall_timeout_s

    def watch(self, last_handled: Callable[[], float], busy: Callable[[], bool],
              every_s: float = 1.0) -> threading.Thread:
        """Check from a daemon thread; exit the process when the gate is stalled."""

        def run() -> None:
            while True:
                time.sleep(every_s)
                if self.stalled(last_handled(), busy()):
                    self.exit(f"handled nothing for {time.monotonic() - last_handled():.0f} s")

        thread = threading.Thread(target=run, name="gate-watchdog", daemon=True)
        thread.start()
        return thread

    def exit(self, why: str) -> None:  # pragma: no cover - ends the process
        log.critical("gate %s: exiting with %d so the supervisor restarts the worker", why,
                     EXIT_STALLED)
        logging.shutdown()
        os._exit(EXIT_STALLED)
