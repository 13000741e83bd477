import pytest

from streams.backlog import GateBacklog

pytestmark = pytest.mark.unit


async def test_ingest_waits_while_the_gate_lags_more_than_the_limit():
    lag = [500]
    backlog = GateBacklog(limit=100, lag=lambda: lag[0], check_every=1, pause_s=0.001)

    async def gate_catches_up():
        import asyncio
        while lag[0] > 0:
            await asyncio.sleep(0.001)
            lag[0] -= 50

    import asyncio
    catching_up = asyncio.ensure_future(gate_catches_up())
    waited = await backlog.admit()
    assert waited > 0 and lag[0] <= 100
    await catching_up


async def test_ingest_checks_only_every_so_many_records_and_never_waits_without_a_lag():
    calls = []
    backlog = GateBacklog(limit=100, lag=lambda: calls.append(1) or 0, check_every=4)
    for _ in range(8):
        assert await backlog.admit() == 0.0
    assert len(calls) == 2


async def test_a_gate_that_never_catches_up_slows_ingest_but_never_stops_it():
    backlog = GateBacklog(limit=1, lag=lambda: 10**6, check_every=1, pause_s=0.001, max_wait_s=0.05)
    waited = await backlog.admit()
    assert 0.05 <= waited < 1.0


async def test_no_limit_no_wait():
    backlog = GateBacklog(limit=0, lag=lambda: 10**6, check_every=1)
    assert await backlog.admit() == 0.0
