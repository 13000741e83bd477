"""The initial-sync bench row: rows/s of the sync next to the bare paging loop's, as a share."""

from __future__ import annotations

import pytest

from bench.initial_sync import InitialSyncBench, initial_sync_figures

pytestmark = pytest.mark.unit


def test_the_figure_is_the_sync_rate_as_a_share_of_the_raw_paging_rate() -> None:
    (figure,) = initial_sync_figures(InitialSyncBench(rows=10000, page_size=1000, sync_s=4.0, raw_s=1.0))
    assert (figure.value, figure.peer, figure.ratio) == (2500.0, 10000.0, 0.25)
    assert figure.cells()[3:] == ("25.0%", ">= 50%")
