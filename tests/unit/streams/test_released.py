"""Released transactions noted by time and forgotten past the horizon (`streams.released`)."""

from __future__ import annotations

from typing import Any

import pytest

from streams import gate
from streams.released import BUCKET_MS, PART_ENTRIES, PARTS_PER_TICK, forget_due, note_release

pytestmark = pytest.mark.unit

HOUR = 3_600_000


class Tables:
    """The ``states`` table, the writes applied in order; the forgotten slots listed."""

    def __init__(self) -> None:
        self.states: dict[str, Any] = {}
        self.forgotten: list[tuple[str, int]] = []
        self.writes = 0

    def get(self, table: str, key: str) -> Any:
        assert table == "states"
        return self.states.get(key)

    def put(self, table: str, key: str, value: Any) -> None:
        self.states[key] = value
        self.writes += 1

    def delete(self, table: str, key: str) -> None:
        self.states.pop(key, None)
        self.writes += 1

    def forget(self, key: str, offset: int) -> list[gate.Write]:
        self.forgotten.append((key, offset))
        return []

    def tick(self, now_ms: int, partition: int = 0) -> int:
        return forget_due(self, partition, now_ms, HOUR, self.forget, lambda writes: None)


def test_a_release_is_forgotten_once_its_bucket_is_past_the_horizon_and_not_before():
    t = Tables()
    note_release(t, 0, "tx:finance:1", 40, now_ms=10 * BUCKET_MS + 5)
    assert t.tick(10 * BUCKET_MS + HOUR) == 0  # its bucket ends after the horizon
    assert t.tick(11 * BUCKET_MS + HOUR) == 1
    assert t.forgotten == [("tx:finance:1", 40)]
    assert t.states == {"released-tx@0": {}}
    assert t.tick(20 * BUCKET_MS + HOUR) == 0


def test_partitions_keep_their_own_notes():
    t = Tables()
    note_release(t, 0, "tx:a", 1, now_ms=0)
    note_release(t, 2, "tx:b", 1, now_ms=0)
    t.tick(HOUR + BUCKET_MS, partition=2)
    assert t.forgotten == [("tx:b", 1)]


def test_a_busy_minute_is_spread_over_small_parts_and_forgotten_over_several_ticks():
    t = Tables()
    total = PART_ENTRIES * (PARTS_PER_TICK + 5) + 7
    for n in range(total):
        note_release(t, 0, f"tx:finance:{n}", n, now_ms=0)
    assert max(len(v) for v in t.states.values() if isinstance(v, list)) == PART_ENTRIES
    assert t.tick(HOUR + BUCKET_MS) == PART_ENTRIES * PARTS_PER_TICK  # bounded work per tick
    t.tick(HOUR + BUCKET_MS)
    assert [k for k, _ in t.forgotten] == [f"tx:finance:{n}" for n in range(total)]
    assert t.states == {"released-tx@0": {}}


def test_older_buckets_go_first():
    t = Tables()
    note_release(t, 0, "tx:late", 2, now_ms=5 * BUCKET_MS)
    note_release(t, 0, "tx:early", 1, now_ms=BUCKET_MS)
    t.tick(10 * BUCKET_MS + HOUR)
    assert [k for k, _ in t.forgotten] == ["tx:early", "tx:late"]


def test_a_tick_cut_short_by_a_crash_is_finished_by_the_next_one():
    """Every prefix of a tick's writes (slots forgotten in ``parked``, parts and index in
    ``states``), then the next tick: every slot forgotten, nothing of the notes left."""
    base = Tables()
    slots = [f"tx:{n}" for n in range(PART_ENTRIES * 2 + 3)]
    for n, key in enumerate(slots):
        note_release(base, 0, key, n, now_ms=0)

    def tick(states: dict[str, Any], parked: dict[str, Any], log: list[tuple[str, str, Any]] | None) -> None:
        class Logged(Tables):
            def put(self, table: str, key: str, value: Any) -> None:
                super().put(table, key, value)
                if log is not None:
                    log.append(("states", key, value))

            def delete(self, table: str, key: str) -> None:
                super().delete(table, key)
                if log is not None:
                    log.append(("states", key, None))

        def write(writes: list[gate.Write]) -> None:
            for key, value in writes:
                parked[key] = value
                if log is not None:
                    log.append(("parked", key, value))

        t = Logged()
        t.states = states
        forget_due(t, 0, HOUR + BUCKET_MS, HOUR, lambda key, offset: [(key, "forgotten")], write)

    log: list[tuple[str, str, Any]] = []
    tick(dict(base.states), {}, log)
    for cut in range(len(log) + 1):
        states, parked = dict(base.states), {}
        for table, key, value in log[:cut]:
            target = states if table == "states" else parked
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        tick(states, parked, None)
        assert states == {"released-tx@0": {}}, cut
        assert sorted(parked) == sorted(slots), cut
