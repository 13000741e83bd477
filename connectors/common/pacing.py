"""When a source polls a table next: tightly while it changes, backing off while it is idle.

Every poll is a request against the target's service-protection budget (Dataverse: 6,000
requests per 5 minutes per user), and most tables are idle most of the time. So each table
keeps its own pace, decided here by one pure function of (pace, state, what the poll found,
now):

- a poll that found changes makes the table *active*: the next poll comes after
  ``active_s`` (so a change on an active table is seen within about that long);
- a table stays active for ``hot_s`` after its last change (edits come in bursts);
- after that, each empty poll doubles the wait, up to ``idle_max_s``; an idle table costs
  one request per ``idle_max_s``, and its first change is seen within that long. A source
  raises ``idle_max_s`` so that all its idle tables together cost at most ``IDLE_BUDGET_RPS``
  (`connectors.common.source.SourceSettings.pace`).

No I/O and no clock of its own: the caller passes monotonic ``now`` (unit-tested with a fake
clock).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_PACE", "IDLE_BUDGET_RPS", "Pace", "PollState", "next_poll"]


@dataclass(frozen=True)
class Pace:
    """How tightly and how loosely a table is polled (seconds)."""

    active_s: float = 0.25
    # The first change on an idle table is seen within this long; a source with many tables
    # waits longer per table so that all of them stay within `IDLE_BUDGET_RPS`.
    idle_max_s: float = 10.0
    hot_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.active_s <= self.idle_max_s or self.hot_s < 0:
            raise ValueError(f"poll pace needs 0 < active_s <= idle_max_s and hot_s >= 0: {self}")


DEFAULT_PACE = Pace()
# What one source's idle tables may cost together: 0.8 requests/s is 4% of one Dataverse user's
# service-protection budget (6,000 requests per 5 minutes); 17 idle tables are then polled every
# 21 s each instead of every 10 s (1.7 requests/s).
IDLE_BUDGET_RPS = 0.8


@dataclass(frozen=True)
class PollState:
    """One table's pace: the wait before its next poll and when it last changed."""

    delay: float
    last_change: float | None = None


def next_poll(pace: Pace, state: PollState | None, *, changed: bool, now: float) -> PollState:
    """The table's state after a drained poll; wait ``result.delay`` before the next one."""
    if changed:
        return PollState(pace.active_s, now)
    last = state.last_change if state else None
    if last is not None and now - last < pace.hot_s:
        return PollState(pace.active_s, last)
    previous = state.delay if state else pace.active_s
    return PollState(min(pace.idle_max_s, max(pace.active_s, previous) * 2.0), last)
