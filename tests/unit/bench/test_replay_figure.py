"""`dualwrite bench replay`'s row: replay's events/s next to raw consumption of the same topic."""

from __future__ import annotations

import pytest

from bench.replay import ReplayBench, replay_figures

pytestmark = pytest.mark.unit


def test_the_replay_row_compares_events_per_second_with_raw_consumption() -> None:
    [row] = replay_figures(ReplayBench(events=20_000, replay_s=4.0, raw_s=0.25, already_applied=20_000))
    assert row.key == "replay_vs_raw"
    assert (row.value, row.peer) == (5_000.0, 80_000.0)
    assert row.ratio == pytest.approx(0.0625)
    assert row.cells()[3] == "6.2%"
    assert row.detail["already_applied"] == 20_000
