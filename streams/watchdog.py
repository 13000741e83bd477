"""Liveness of the gate: exit when it stops handling records or skips some, so the supervisor
restarts it and the restarted worker replays from the committed offsets.

faust-streaming 0.15 can stop delivering records to an agent after a restart whose group had
not committed yet (we reproduced it: a worker SIGKILLed before its first commit; the restarted
worker resumes fetching before seeking to committed offsets, cf. faust-streaming#216; records
fetched in that window may never reach the agent while later ones do, and the committed offset
then stays behind the skipped record). We produce the gate topic ourselves, without
transactions or compaction, so its offsets are contiguous: a jump forward is a skipped record,
and so is a first record after an assignment that comes after the partition's committed offset
(or its log start, for a group that never committed).
The CDC topics are as contiguous (idempotent producers, no transactions, delete retention), so
the ingest agent is watched the same way: a chaos run lost a task whose event was on its CDC
topic but never reached ingest, while later events of that partition did.
The gate also receives its own tick on every partition every
`tick_interval_s`, so a gate that handled nothing for `stall_timeout_s` outside a rebalance is
stuck, not idle. A rebalance or recovery excuses silence, but only for ``max_busy_s``: a worker
seen stuck "rebalancing" with its producer buffer full and every task waiting (chaos run) never
came back by itself.

The gate handling its ticks does not prove the rest moves: a restarted worker was seen handling
ticks while its ingest never got further (producer buffer full after a rebalance). So the
watchdog also compares, per assigned partition of the topics the agents read, the committed
offset with the partition's end: records waiting behind a committed offset that has not moved
for ``stall_timeout_s`` outside a rebalance mean the worker is stuck, whatever it still does.
The check runs on its own thread, so it still fires when the event loop's
tasks (the timer that sends the ticks included) are all blocked. Exiting is safe: it is the same as the SIGKILL we already survive (offsets are
committed only after effects are flushed), and the restarted worker replays from the committed
offsets.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field

from streams import metrics

__all__ = ["EXIT_STALLED", "Heartbeat", "Partition", "PartitionStarts", "Positions", "Watchdog", "exit_stalled",
           "expired_ranges", "gate_hint", "report_expired"]


Partition = tuple[str, int]
Positions = Mapping[Partition, tuple[int | None, int | None]]  # (committed offset, end offset)

EXIT_STALLED = 75  # EX_TEMPFAIL: try again

log = logging.getLogger(__name__)


def gate_hint(gate_partitions_assigned: int, static_member: bool) -> str:
    """What a stalled worker can say when the reason is its assignment: no partition of the
    gate topic is its own, so its ticks go where nobody reads them. A static member restarted
    under its id gets its group's cached assignment back without a rebalance, so restarting
    alone will not help (`streams.declare` tells how a CI run got there)."""
    if gate_partitions_assigned:
        return ""
    if static_member:
        return ("no partition of the gate topic is assigned to this worker, and as a static "
                "member (--instance-id) it gets the same assignment back on restart: stop every "
                "worker of the group for longer than the session timeout, then start them again")
    return "no partition of the gate topic is assigned to this worker"


def expired_ranges(committed: Mapping[Partition, int | None],
                   log_starts: Mapping[Partition, int | None]) -> dict[Partition, range]:
    """The offsets of each partition that retention deleted before the group read them: from its
    committed offset up to the log start (pure). A partition the group never committed, or whose
    log start is not known, has none: reading from the log start is where it begins."""
    out = {}
    for tp, start in log_starts.items():
        offset = committed.get(tp)
        if offset is not None and start is not None and 0 <= offset < start:
            out[tp] = range(offset, start)
    return out


def report_expired(committed: Mapping[Partition, int | None],
                   log_starts: Mapping[Partition, int | None]) -> None:
    """Count and log, per partition, the records retention deleted before the group read them
    (`expired_ranges`): the consumer reads on from the log start, and those changes are gone."""
    for (topic, partition), lost in expired_ranges(committed, log_starts).items():
        metrics.EXPIRED.labels(topic).inc(len(lost))
        log.warning("%d record(s) of %s[%d] (offsets %d to %d) were deleted by retention before "
                    "this worker read them: their changes did not sync; run `dualwrite reconcile`, "
                    "then `dualwrite replay --repair` for what differs", len(lost), topic, partition,
                    lost.start, lost.stop - 1)


@dataclass
class PartitionStarts:
    """Where the records of the assigned partitions must start (the group's committed offset,
    else the log start), asked for in one request per assignment. The first record of each
    newly assigned partition is checked against it (see `Watchdog.expect`); asking the broker
    for log starts once per partition cost a fetch round trip each (about
    1.5 s on a busy consumer thread), and with a few hundred CDC partitions first seen during a
    flood, ingest stalled for minutes, starving the gate until the watchdog restarted a healthy
    worker (CI, hostile-input run)."""

    fetch: Callable[[Collection[Partition]], Awaitable[Mapping[Partition, int | None]]]
    assigned: Callable[[], Collection[Partition]]
    known: dict[Partition, int] = field(default_factory=dict)

    async def of(self, tp: Partition) -> int | None:
        """The start of ``tp``, fetched together with every assigned partition not known yet;
        None when the broker cannot tell (the caller then trusts the first record)."""
        if tp not in self.known:
            try:
                found = await self.fetch({t for t in self.assigned() if t not in self.known} | {tp})
            except Exception:  # not started (agent test context), or the broker did not answer
                return None
            self.known.update({t: offset or 0 for t, offset in found.items()})
        return self.known.get(tp)

    def clear(self) -> None:
        """Forget them on a revoke: a partition that comes back may have been trimmed since."""
        self.known.clear()


@dataclass
class Watchdog:
    stall_timeout_s: float
    max_busy_s: float | None = None  # default: four stall timeouts
    # The topics one agent reads together (ingest's CDC topics): any of them moving is that
    # agent moving; every other topic counts as an agent of its own.
    shared: frozenset[str] = frozenset()
    ticking_since: float | None = field(default=None)
    last_offsets: dict[Partition, int] = field(default_factory=dict)
    # partition -> [committed offset, since when it stands behind waiting records, busy time excused]
    lagging: dict[Partition, list[float | int | None]] = field(default_factory=dict)
    committed_seen: dict[Partition, int | None] = field(default_factory=dict)
    moved_at: dict[str, float] = field(default_factory=dict)  # agent -> when one of its offsets moved
    last_check: float | None = None

    def _agent_of(self, topic: str) -> str:
        return "shared" if topic in self.shared else topic

    def knows(self, topic: str, partition: int) -> bool:
        """A record of this partition was handled since it was (re)assigned."""
        return (topic, partition) in self.last_offsets

    def expect(self, topic: str, partition: int, start: int) -> None:
        """The first record of a partition just assigned must be the one at ``start`` (its
        committed offset, or the log start when the group never committed): a first record
        after it means the records in between were skipped. A chaos run with two workers lost a
        project this way: its gate record, produced while both workers started, was never
        delivered, the first record delivered on that partition came later, and Faust committed
        past it."""
        self.last_offsets[(topic, partition)] = start - 1

    def skipped(self, topic: str, partition: int, offset: int) -> bool:
        """True when records between the last handled offset and ``offset`` never arrived."""
        last = self.last_offsets.get((topic, partition))
        self.last_offsets[(topic, partition)] = offset  # a seek back (rebalance) simply restarts the count
        return last is not None and offset > last + 1

    def stalled(self, last_handled: float, busy: bool, now: float | None = None) -> bool:
        """True when ticks have been sent for longer than the timeout and none was handled."""
        now = time.monotonic() if now is None else now
        if now - last_handled > self.busy_limit_s:
            return True  # whatever the rebalance flags say (they were seen flapping while stuck)
        if busy:  # rebalancing or recovering: records are legitimately held back, for a while
            self.ticking_since = None
            return False
        if self.ticking_since is None:
            self.ticking_since = now
            return False
        return now - max(last_handled, self.ticking_since) > self.stall_timeout_s

    @property
    def busy_limit_s(self) -> float:
        return self.max_busy_s if self.max_busy_s is not None else 4 * self.stall_timeout_s

    def stuck(self, positions: Positions, busy: bool, now: float | None = None) -> list[Partition]:
        """Partitions with records waiting behind a committed offset that has not moved for
        longer than the timeout, while no partition read by the same agent moved either (all
        CDC topics are one agent's: a burst on some of them legitimately keeps the others
        waiting on a loaded machine), or for longer than ``busy_limit_s`` whatever the others do.
        Time spent rebalancing or recovering does not count, up to ``max_busy_s`` in all (busy
        flags were seen flapping on a stuck worker)."""
        now = time.monotonic() if now is None else now
        elapsed = 0.0 if self.last_check is None else max(0.0, now - self.last_check)
        self.last_check = now
        waiting: list[tuple[Partition, float]] = []
        for tp, (committed, end) in positions.items():
            if self.committed_seen.get(tp, committed) != committed:
                self.moved_at[self._agent_of(tp[0])] = now
            self.committed_seen[tp] = committed
            if end is None or end <= (committed or 0):
                self.lagging.pop(tp, None)  # caught up (or end not known yet)
                continue
            seen = self.lagging.get(tp)
            if seen is None or seen[0] != committed:
                self.lagging[tp] = [committed, now, 0.0]  # it moved: the clock restarts
                continue
            since, excused = float(seen[1] or 0.0), float(seen[2] or 0.0)
            if busy:
                excused = seen[2] = min(excused + elapsed, self.busy_limit_s)
            waiting.append((tp, now - since - excused))
        out = [tp for tp, waited in waiting
               if waited > self.busy_limit_s or (waited > self.stall_timeout_s and now - self.moved_at.get(
                   self._agent_of(tp[0]), float("-inf")) > self.stall_timeout_s)]
        for tp in set(self.lagging) - set(positions):
            del self.lagging[tp]  # no longer assigned to us
        for tp in set(self.committed_seen) - set(positions):
            del self.committed_seen[tp]
        return out

    def verdict(self, last_handled: float, busy: bool, positions: Callable[[], Positions] | None = None,
                explain: Callable[[], str] | None = None) -> str | None:
        """Why the worker must exit now, or None. ``explain`` adds what the worker can tell
        about a stalled gate (`gate_hint`)."""
        if self.stalled(last_handled, busy):
            try:
                hint = explain() if explain is not None else ""
            except Exception:  # a hint must never keep the worker from exiting
                hint = ""
            return (f"the gate handled nothing for {time.monotonic() - last_handled:.0f} s"
                    + (f"; {hint}" if hint else ""))
        if positions is None:
            return None
        try:
            current = positions()
        except RuntimeError:  # a dict resized while we copied it: next time
            return None
        stuck = self.stuck(current, busy)
        if stuck:
            return "made no progress for {:.0f} s with records waiting on {}".format(
                self.stall_timeout_s, ", ".join(f"{t}[{p}]" for t, p in sorted(stuck)))
        return None

    def watch(self, last_handled: Callable[[], float], busy: Callable[[], bool],
              positions: Callable[[], Positions] | None = None,
              explain: Callable[[], str] | None = None, every_s: float = 1.0) -> threading.Thread:
        """Check from a daemon thread; exit the process when the gate is stalled or the
        committed offsets stand still behind waiting records."""

        def run() -> None:
            while True:
                time.sleep(every_s)
                why = self.verdict(last_handled(), busy(), positions, explain)
                if why is not None:
                    self.exit(why)

        thread = threading.Thread(target=run, name="gate-watchdog", daemon=True)
        thread.start()
        return thread

    def exit(self, why: str) -> None:  # pragma: no cover - ends the process
        exit_stalled(why)


def exit_stalled(why: str) -> None:  # pragma: no cover - ends the process
    """Exit with `EXIT_STALLED` at once, whatever the other threads hold: the same as the
    SIGKILL the worker survives (nothing it did not commit counts)."""
    log.critical("worker stuck (%s): exiting with %d so the supervisor restarts it", why, EXIT_STALLED)
    logging.shutdown()
    os._exit(EXIT_STALLED)


@dataclass
class Heartbeat:
    """The batch engine's liveness (`streams.engine`): its loop beats at every turn (a quiet one
    every 0.1 s), a catch-up of its tables at every chunk it reads; a thread exits the process
    when no beat came for ``limit_s`` (``--stall-timeout``). librdkafka's transactional calls can
    block for good once a broker is lost (a commit or ``send_offsets_to_transaction`` that never
    returns: librdkafka#3013, #3041); a chaos run saw a worker silent for eight minutes after two
    brokers were killed in turn, while records waited. Exiting is safe: the batch's transaction
    never committed, and the next start's ``init_transactions`` aborts it."""

    limit_s: float
    last: float = field(default_factory=time.monotonic)
    stopped: bool = False

    def beat(self) -> None:
        self.last = time.monotonic()

    def stop(self) -> None:
        """The loop ended: nothing more to watch."""
        self.stopped = True

    def silent_s(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.last

    def watch(self, on_stall: Callable[[str], None] = exit_stalled, every_s: float = 1.0) -> threading.Thread:
        """Check from a daemon thread; ``on_stall`` (default: exit the process) once, with why."""

        def run() -> None:
            while self.silent_s() <= self.limit_s:
                time.sleep(min(every_s, self.limit_s / 4))
                if self.stopped:
                    return
            on_stall(f"the batch loop made no turn for {self.silent_s():.0f} s (a Kafka call that does "
                     f"not return; --stall-timeout {self.limit_s:g} s)")

        thread = threading.Thread(target=run, name="engine-heartbeat", daemon=True)
        thread.start()
        return thread
