import asyncio
import time

import pytest

from streams.watchdog import Heartbeat, PartitionStarts, Watchdog, expired_ranges, gate_hint

pytestmark = pytest.mark.unit


def test_gate_that_handles_ticks_is_alive():
    dog = Watchdog(stall_timeout_s=30)
    assert not dog.stalled(last_handled=0, busy=False, now=0)
    assert not dog.stalled(last_handled=25, busy=False, now=50)


def test_gate_idle_past_the_timeout_is_stalled():
    dog = Watchdog(stall_timeout_s=30)
    dog.stalled(last_handled=0, busy=False, now=10)
    assert not dog.stalled(last_handled=0, busy=False, now=39)
    assert dog.stalled(last_handled=0, busy=False, now=41)


def test_rebalance_or_recovery_restarts_the_clock():
    dog = Watchdog(stall_timeout_s=30, max_busy_s=1000)
    dog.stalled(last_handled=0, busy=False, now=10)
    assert not dog.stalled(last_handled=0, busy=True, now=100)
    assert not dog.stalled(last_handled=0, busy=False, now=101)
    assert not dog.stalled(last_handled=0, busy=False, now=130)
    assert dog.stalled(last_handled=0, busy=False, now=132)


def test_a_rebalance_that_never_ends_is_a_stall_too():
    # Regression (chaos run): a restarted worker sat "rebalancing" with every task waiting on a
    # full producer buffer; excusing it forever meant it never came back.
    dog = Watchdog(stall_timeout_s=30)
    assert not dog.stalled(last_handled=0, busy=True, now=10)
    assert not dog.stalled(last_handled=0, busy=False, now=40)
    assert not dog.stalled(last_handled=0, busy=True, now=119)  # flapping flags never let the
    assert dog.stalled(last_handled=0, busy=True, now=121)      # busy-aware clock run out
    assert not Watchdog(stall_timeout_s=30, max_busy_s=600).stalled(last_handled=0, busy=True, now=121)


def test_contiguous_gate_offsets_are_fine_and_a_jump_is_a_skip():
    dog = Watchdog(stall_timeout_s=30)
    assert not dog.skipped("g", 0, 10)
    assert not dog.skipped("g", 0, 11)
    assert not dog.skipped("g", 1, 40)  # partitions are counted apart
    assert not dog.skipped("g", 0, 5)  # a seek back after a rebalance
    assert dog.skipped("g", 0, 7)


CDC = ("dataverse.cdc.msdyn_projects", 0)
GATE = ("dualwrite-streams-gate", 1)


def test_committed_offsets_that_move_or_have_nothing_behind_them_are_fine():
    dog = Watchdog(stall_timeout_s=30)
    assert dog.stuck({CDC: (10, 50), GATE: (7, 7)}, busy=False, now=0) == []
    assert dog.stuck({CDC: (20, 60), GATE: (7, 7)}, busy=False, now=29) == []
    assert dog.stuck({CDC: (40, 60), GATE: (7, 7)}, busy=False, now=58) == []
    assert dog.stuck({CDC: (60, 60), GATE: (7, 7)}, busy=False, now=200) == []  # caught up
    assert dog.stuck({CDC: (None, None)}, busy=False, now=400) == []  # end not known yet


def test_a_committed_offset_standing_still_behind_waiting_records_is_stuck():
    # Regression (chaos run, two-way names): the gate kept handling its ticks while ingest
    # never committed again; only the offsets show it.
    dog = Watchdog(stall_timeout_s=30)
    dog.stuck({CDC: (10, 50), GATE: (7, 9)}, busy=False, now=0)
    assert dog.stuck({CDC: (10, 50), GATE: (9, 9)}, busy=False, now=29) == []
    assert dog.stuck({CDC: (10, 51), GATE: (9, 9)}, busy=False, now=31) == [CDC]


def test_rebalancing_time_is_excused_but_only_up_to_the_busy_limit():
    dog = Watchdog(stall_timeout_s=30, max_busy_s=60)
    dog.stuck({CDC: (10, 50)}, busy=False, now=0)
    assert dog.stuck({CDC: (10, 50)}, busy=True, now=50) == []  # 50 s rebalancing excused
    assert dog.stuck({CDC: (10, 50)}, busy=False, now=75) == []  # 25 s counted
    assert dog.stuck({CDC: (10, 50)}, busy=False, now=81) == [CDC]
    flapping = Watchdog(stall_timeout_s=30, max_busy_s=60)
    flapping.stuck({CDC: (10, 50)}, busy=True, now=0)
    for t in range(10, 91, 10):
        assert flapping.stuck({CDC: (10, 50)}, busy=True, now=t) == []
    assert flapping.stuck({CDC: (10, 50)}, busy=True, now=100) == [CDC]  # excuse used up at 60


def test_a_partition_taken_away_is_forgotten():
    dog = Watchdog(stall_timeout_s=30)
    dog.stuck({CDC: (10, 50)}, busy=False, now=0)
    dog.stuck({}, busy=False, now=20)
    assert dog.stuck({CDC: (10, 50)}, busy=False, now=40) == []  # back again: a new clock


def test_the_first_record_after_an_assignment_must_be_the_one_at_the_committed_offset():
    """A chaos run with two workers: a project's gate record, produced while both workers
    started, was never delivered; the first record delivered on its partition came later and
    Faust committed past it. The first record is now checked against where the partition
    starts (its committed offset, or the log start)."""
    w = Watchdog(stall_timeout_s=5)
    assert not w.knows("gate", 2)
    w.expect("gate", 2, 0)  # never committed, log starts at 0
    assert w.skipped("gate", 2, 67)  # records 0-66 never arrived
    w = Watchdog(stall_timeout_s=5)
    w.expect("gate", 2, 4106)
    assert w.knows("gate", 2)
    assert not w.skipped("gate", 2, 4106) and not w.skipped("gate", 2, 4107)
    w.expect("gate", 3, 40)
    assert not w.skipped("gate", 3, 12)  # fetched before the seek: a replay, not a gap


def test_a_partition_waiting_while_its_agent_moves_on_elsewhere_is_not_stuck_until_the_busy_limit():
    """Fuzz run of stop 15 (17 maps, about 90 CDC partitions, 10,000 hostile records): ingest
    worked through a burst on some CDC topics while single records waited on others for more
    than 30 s, and the watchdog restarted a busy worker. A wait counts as stuck while the same
    agent moves on elsewhere only past the busy limit (four timeouts)."""
    other = ("finance.cdc.customersv3", 2)
    ingest = frozenset({CDC[0], other[0]})
    dog = Watchdog(stall_timeout_s=30, shared=ingest)
    dog.stuck({CDC: (10, 11), other: (0, 5000)}, busy=False, now=0)
    for t, done in ((20, 1000), (40, 2000), (60, 3000), (100, 4000)):
        assert dog.stuck({CDC: (10, 11), other: (done, 5000)}, busy=False, now=t) == []
    assert dog.stuck({CDC: (10, 11), other: (4500, 5000)}, busy=False, now=121) == [CDC]  # starved
    # The gate moving (its ticks) is not ingest moving: ingest standing still is stuck at 30 s.
    dog = Watchdog(stall_timeout_s=30, shared=ingest)
    dog.stuck({CDC: (10, 11), GATE: (7, 9)}, busy=False, now=0)
    assert dog.stuck({CDC: (10, 11), GATE: (9, 11)}, busy=False, now=31) == [CDC]


def test_partition_starts_are_asked_once_per_assignment_for_all_partitions() -> None:
    """A few hundred CDC partitions first seen in a flood must cost one broker request, not one
    each: per-partition requests stalled ingest for minutes in a CI run."""
    asked: list[set[tuple[str, int]]] = []
    assigned = [("a", 0), ("a", 1), ("b", 0)]

    async def fetch(tps):  # type: ignore[no-untyped-def]
        asked.append(set(tps))
        return {tp: (7 if tp == ("a", 1) else None) for tp in tps}

    starts = PartitionStarts(fetch, lambda: assigned)

    async def run() -> list[int | None]:
        return [await starts.of(tp) for tp in (("a", 0), ("a", 1), ("b", 0), ("a", 0))]

    assert asyncio.run(run()) == [0, 7, 0, 0]
    assert asked == [set(assigned)]
    starts.clear()  # a revoke: the next first record asks again
    assert asyncio.run(run()) == [0, 7, 0, 0] and len(asked) == 2


def test_log_start_unknown_when_the_consumer_cannot_tell() -> None:
    async def fetch(tps):  # type: ignore[no-untyped-def]
        raise RuntimeError("consumer not started")

    assert asyncio.run(PartitionStarts(fetch, lambda: []).of(("a", 0))) is None


def test_a_stalled_gate_says_when_no_gate_partition_is_this_worker_s():
    # CI: the gate topic was missing from the metadata when the group was assigned; the static
    # member got that assignment back on every restart and the watchdog restarted it for ever.
    long_ago = time.monotonic() - 1000
    why = Watchdog(stall_timeout_s=30).verdict(long_ago, False, explain=lambda: gate_hint(0, True))
    assert why is not None and why.startswith("the gate handled nothing for 1000 s; no partition")
    assert "stop every worker of the group for longer than the session timeout" in why
    assert gate_hint(0, False) == "no partition of the gate topic is assigned to this worker"
    assert Watchdog(stall_timeout_s=30).verdict(long_ago, False, explain=lambda: gate_hint(2, True)) == \
        "the gate handled nothing for 1000 s"
    assert Watchdog(stall_timeout_s=30).verdict(time.monotonic(), False, explain=lambda: "x") is None


def test_the_verdict_names_the_partitions_stuck_behind_their_committed_offset():
    dog = Watchdog(stall_timeout_s=30)
    now = time.monotonic()
    assert dog.verdict(now, False, lambda: {("t", 0): (5, 9)}) is None  # the clock starts
    dog.lagging[("t", 0)][1] = now - 100
    assert dog.verdict(now, False, lambda: {("t", 0): (5, 9)}) == \
        "made no progress for 30 s with records waiting on t[0]"


def test_a_hint_that_fails_does_not_keep_a_stalled_worker_from_exiting():
    def broken() -> str:
        raise RuntimeError("consumer not started")

    why = Watchdog(stall_timeout_s=30).verdict(time.monotonic() - 1000, False, explain=broken)
    assert why == "the gate handled nothing for 1000 s"


def test_offsets_retention_deleted_before_the_group_read_them_are_the_expired_ones():
    committed = {("cdc", 0): 100, ("cdc", 1): 700, ("cdc", 2): None, ("cdc", 3): 5}
    starts = {("cdc", 0): 500, ("cdc", 1): 500, ("cdc", 2): 40, ("cdc", 3): None, ("cdc", 4): 9}
    # 0: committed below the log start; 1: ahead of it; 2: never committed (starts at the log
    # start by design); 3: log start unknown; 4: no commit known at all.
    assert expired_ranges(committed, starts) == {("cdc", 0): range(100, 500)}


def test_a_heartbeat_that_stops_beating_calls_its_stall_once() -> None:
    heart = Heartbeat(limit_s=0.2)
    stalls: list[str] = []
    thread = heart.watch(stalls.append, every_s=0.05)
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(stalls) == 1 and "made no turn" in stalls[0] and "--stall-timeout 0.2 s" in stalls[0]


def test_a_heartbeat_that_beats_is_never_a_stall_and_stops_with_its_loop() -> None:
    heart = Heartbeat(limit_s=0.3)
    stalls: list[str] = []
    thread = heart.watch(stalls.append, every_s=0.05)
    for _ in range(20):  # 1 s of turns, each well within the limit
        heart.beat()
        time.sleep(0.05)
    heart.stop()
    thread.join(timeout=5)
    assert not thread.is_alive() and stalls == []
