"""A sink window: wait for the first command, then linger briefly for more."""

from __future__ import annotations

import pytest

from connectors.common.window import take

pytestmark = pytest.mark.unit


class Feed:
    """A consumer over records that arrive at given times (a fake clock moved by each wait)."""

    def __init__(self, arrivals: list[float]) -> None:
        self.arrivals = sorted(arrivals)
        self.now = 0.0
        self.calls: list[tuple[int, float]] = []

    def consume(self, num_messages: int, timeout: float) -> list[float]:
        self.calls.append((num_messages, timeout))
        deadline = self.now + timeout
        ready = [t for t in self.arrivals if t <= deadline][:num_messages]
        # librdkafka returns once it has num_messages, else at the timeout
        self.now = max(self.now, ready[-1]) if len(ready) == num_messages else deadline
        self.arrivals = self.arrivals[len(ready):]
        return ready


def test_a_window_starts_its_write_a_linger_after_its_first_command_not_at_the_flush_interval():
    feed = Feed([0.05, 0.08, 0.3])
    assert take(feed, 500, first_wait_s=0.5, linger_s=0.1) == [0.05, 0.08]
    assert feed.now == pytest.approx(0.15)  # was 0.5: the whole flush interval
    assert take(feed, 500, first_wait_s=0.5, linger_s=0.1) == [0.3]


def test_a_backlog_fills_the_window_at_once_and_an_idle_one_returns_empty_at_the_flush_interval():
    backlog = Feed([0.0] * 700)
    assert len(take(backlog, 500, first_wait_s=0.5, linger_s=0.1)) == 500
    assert backlog.now == 0.0
    idle = Feed([])
    assert take(idle, 500, first_wait_s=0.5, linger_s=0.1) == []
    assert idle.now == 0.5 and idle.calls == [(1, 0.5)]


def test_a_window_of_one_record_does_not_linger():
    feed = Feed([0.0, 0.01])
    assert take(feed, 1, first_wait_s=0.5, linger_s=0.1) == [0.0]
    assert feed.calls == [(1, 0.5)]
