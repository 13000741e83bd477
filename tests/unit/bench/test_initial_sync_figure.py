"""The initial-sync bench row: rows/s of the sync next to the bare paging loop's, as a share."""

from __future__ import annotations

import pytest

from bench.initial_sync import InitialSyncBench, initial_sync_figures

pytestmark = pytest.mark.unit


def test_the_figure_is_the_sync_rate_as_a_share_of_the_raw_paging_rate() -> None:
    (figure,) = initial_sync_figures(InitialSyncBench(rows=10000, page_size=1000, sync_rounds_s=(4.0,),
                                                      raw_rounds_s=(1.0,)))
    assert (figure.value, figure.peer, figure.ratio) == (2500.0, 10000.0, 0.25)
    assert figure.cells()[3:] == ("25.0%", ">= 50%")


def test_each_side_counts_its_fastest_round_and_every_round_is_kept() -> None:
    result = InitialSyncBench(rows=10000, page_size=1000, sync_rounds_s=(5.0, 4.0, 4.5), raw_rounds_s=(1.2, 1.0, 2.0))
    (figure,) = initial_sync_figures(result)
    assert (figure.value, figure.peer) == (2500.0, 10000.0)
    assert figure.detail["sync_rounds_s"] == [5.0, 4.0, 4.5] and figure.detail["raw_rounds_s"] == [1.2, 1.0, 2.0]
