import pytest

from streams.flood import FloodGuard

pytestmark = pytest.mark.unit


def test_flood_guard_pauses_once_per_unbroken_run_of_rejections():
    guard = FloodGuard(limit=3)
    assert [guard.failed("projects") for _ in range(4)] == [False, False, True, False]
    guard.succeeded("projects")
    assert [guard.failed("projects") for _ in range(3)] == [False, False, True]
    assert not guard.failed("customers")  # maps are counted apart
    never = FloodGuard(limit=0)
    assert not any(never.failed("projects") for _ in range(500))
