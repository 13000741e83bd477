import pytest

from streams.watchdog import Watchdog

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
    assert not dog.skipped(0, 10)
    assert not dog.skipped(0, 11)
    assert not dog.skipped(1, 40)  # partitions are counted apart
    assert not dog.skipped(0, 5)  # a seek back after a rebalance
    assert dog.skipped(0, 7)
