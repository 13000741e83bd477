"""The poll pace decision (`connectors.common.pacing`) and the source loop that follows it,
with a fake clock: idle tables back off to the cap, a table that changes is polled tightly."""

from __future__ import annotations

import asyncio

import pytest

from connectors.common.clock import FakeClock
from connectors.common.images import ImageStore
from connectors.common.kafka import KafkaConfig
from connectors.common.pacing import Pace, PollState, next_poll
from connectors.common.source import Page, SourceEngine, SourceSettings
from tests.unit.connectors.test_source_engine import MemoryProducer, change

pytestmark = pytest.mark.unit

PACE = Pace(active_s=0.25, idle_max_s=30.0, hot_s=10.0)


def idle_delays(pace: Pace, polls: int, start: PollState | None = None, now: float = 0.0) -> list[float]:
    state, out = start, []
    for _ in range(polls):
        state = next_poll(pace, state, changed=False, now=now)
        out.append(state.delay)
        now += state.delay
    return out


def test_an_idle_table_doubles_its_wait_up_to_the_cap() -> None:
    assert idle_delays(PACE, 10) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_a_change_makes_the_table_tight_at_once_even_from_the_cap() -> None:
    at_cap = PollState(30.0, None)
    assert next_poll(PACE, at_cap, changed=True, now=500.0) == PollState(0.25, 500.0)


def test_a_table_stays_tight_for_hot_s_after_its_last_change_then_backs_off() -> None:
    state = next_poll(PACE, None, changed=True, now=100.0)
    delays, now = [], 100.0
    while now < 115.0:
        now += state.delay
        state = next_poll(PACE, state, changed=False, now=now)
        delays.append((now, state.delay))
    tight = [d for t, d in delays if t - 100.0 < 10.0]
    assert tight and set(tight) == {0.25}
    after = [d for t, d in delays if t - 100.0 >= 10.0]
    assert after[:3] == [0.5, 1.0, 2.0]


def test_idle_cost_at_the_cap_is_one_request_per_idle_max_s() -> None:
    settled = PollState(30.0, None)
    # An hour of idleness: 120 polls of one table, i.e. 1/30 request per second.
    assert sum(idle_delays(PACE, 120, settled)) == pytest.approx(3600.0)


@pytest.mark.parametrize("bad", [dict(active_s=0), dict(active_s=5, idle_max_s=1), dict(hot_s=-1)])
def test_a_pace_that_cannot_work_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="poll pace"):
        Pace(**bad)


class Feed:
    """A change feed that is idle except for the polls listed in ``busy`` (1-based)."""

    system = "dataverse"

    def __init__(self, busy: set[int]) -> None:
        self.images = ImageStore()
        self.busy = busy
        self.polls = 0

    async def changes(self, table: str, position: str) -> Page:
        self.polls += 1
        items = [change(f"r{self.polls}", self.polls)] if self.polls in self.busy else []
        return Page(items, f"tok-{self.polls}", False)

    async def snapshot(self, table: str):  # type: ignore[no-untyped-def]
        yield Page([], "tok-0", False)

    async def aclose(self) -> None:
        pass


async def run_polls(feed: Feed, polls: int) -> list[float]:
    clock = FakeClock()
    settings = SourceSettings(system="dataverse", tables=("accounts",), dlq_topic="dlq",
                              offsets_topic="offsets", poll_interval_s=0.25, idle_max_s=30.0, hot_s=1.0)
    source = SourceEngine(settings, KafkaConfig(), feed, clock, MemoryProducer())  # type: ignore[arg-type]

    async def resume() -> None:
        source.positions["accounts"] = "tok-0"

    source.load = resume  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(source.run(stop))
    while feed.polls < polls:
        assert not task.done(), task.exception()
        await asyncio.sleep(0)
    stop.set()
    await asyncio.wait_for(task, 5)
    return clock.sleeps


async def test_the_source_loop_backs_off_an_idle_table_and_tightens_on_a_change() -> None:
    sleeps = await run_polls(Feed(busy={9}), 14)
    # Idle from the start: doubling to the cap; poll 9 finds a change: tight for hot_s (1 s),
    # then doubling again.
    assert sleeps[:8] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert sleeps[8:13] == [0.25, 0.25, 0.25, 0.25, 0.5]
