"""The one table of `dualwrite bench` and its JSON: five columns, ratios computed from the
figures, "not measured" rows kept, and the suite's rows built from results without a broker."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from bench.figures import COLUMNS, Figure, figures_json, figures_table, not_measured
from bench.latency import EndToEnd, Phase, percentile
from bench.pipeline import PipelineBench, Replay
from bench.polling import IdleFigure
from bench.suite import idle_figures, latency_figures, p6_figure, replay_figures

pytestmark = pytest.mark.unit


def _p1() -> PipelineBench:
    return PipelineBench(replay_events=20000, raw_aiokafka_eps=300000.0, naive_faust_eps=3500.0,
                         processor_eps=7000.0, worker_produced_per_change=3.0, burst_changes=2000,
                         burst_records=200, sink_requests=40, sink_requests_per_change=0.02,
                         sink_seconds=3.0, naive_sink_requests_per_change=1.1, naive_sink_seconds=20.0)


def _phase(label: str, rate: float | None, latencies: tuple[float, ...], missing: int = 0) -> Phase:
    return Phase(label, rate, len(latencies) + missing, 10.0, latencies, 0.8, missing)


def test_cells_give_value_peer_ratio_and_goal() -> None:
    times = Figure("k", "P1 vs naive", 7000.0, "/s", 3500.0, "same run", "x", ">= 2x")
    share = Figure("k2", "P1b vs P1", 5600.0, "/s", 8000.0, "P1", "%", ">= 70%")
    assert times.cells() == ("P1 vs naive", "7,000 /s", "3,500 /s (same run)", "2.00x", ">= 2x")
    assert share.cells()[3] == "70.0%"
    assert share.ratio == pytest.approx(0.7)


def test_a_figure_not_measured_is_a_row_that_says_why() -> None:
    row = not_measured("p6", "P6 restart", "<= 30 s", "not built")
    assert row.cells() == ("P6 restart", "not measured: not built", "", "", "<= 30 s")
    assert row.ratio is None


def test_the_table_has_the_five_columns_and_one_row_per_figure() -> None:
    figures = [Figure("a", "first", 1.5, "s"), not_measured("b", "second", "", "skipped")]
    table = figures_table(figures, "title")
    assert tuple(c.header for c in table.columns) == COLUMNS == ("figure", "dualwrite", "peer", "ratio", "goal")
    assert table.row_count == 2
    console = Console(width=200, record=True)
    console.print(table)
    assert "not measured: skipped" in console.export_text()


def test_json_holds_every_figure_with_its_numbers_and_the_meta() -> None:
    figures = [Figure("p1", "P1", 7000.0, "/s", 3500.0, "same run", "x", ">= 2x", detail={"p50": 0.2}),
               not_measured("p6", "P6", "<= 30 s", "not built")]
    doc = json.loads(figures_json(figures, {"load_after": [1.0, 2.0, 3.0]}))
    assert doc["meta"] == {"load_after": [1.0, 2.0, 3.0]}
    assert [f["key"] for f in doc["figures"]] == ["p1", "p6"]
    first = doc["figures"][0]
    assert (first["value"], first["peer"], first["ratio"], first["goal"]) == (7000.0, 3500.0, 2.0, ">= 2x")
    assert first["detail"] == {"p50": 0.2}
    assert doc["figures"][1]["value"] is None and doc["figures"][1]["note"] == "not built"


def test_replay_rows_put_p1b_next_to_p1_and_the_worker_records_next_to_before() -> None:
    rows = {f.key: f for f in replay_figures(_p1(), Replay(events=20000, eps=5600.0, worker_records=60000))}
    assert rows["p1_vs_naive"].ratio == pytest.approx(2.0)
    assert rows["p1b_vs_p1"].ratio == pytest.approx(0.8)
    assert rows["worker_records_per_change"].value == 3.0
    assert rows["worker_records_per_change"].peer_label == "before: 8-9"
    assert rows["worker_records_per_change_p1b"].value == 3.0
    without = {f.key: f for f in replay_figures(_p1(), None)}
    assert without["p1b_vs_p1"].value is None
    assert "p1b_vs_p1" not in {f.key for f in replay_figures(_p1(), None, p1b_row=False)}


def test_latency_rows_give_p50_p99_the_poll_interval_and_the_burst_tail() -> None:
    e2e = EndToEnd((_phase("50/s", 50.0, (0.2,) * 98 + (0.9, 0.9)), _phase("200/s", 200.0, (0.3, 0.4)),
                    _phase("burst", None, (1.0, 2.0), missing=1)), 0.25, 10.0, 12.0)
    rows = {f.key: f for f in latency_figures(e2e)}
    assert rows["p3_50"].cells()[1] == "0.20 / 0.90 s"
    assert "poll 0.25 s" in rows["p3_50"].label
    assert rows["p3_200"].goal == "p99 <= 1 s"
    # A burst with a record missing has no p99 and no tail: never a figure better than the truth.
    assert rows["p3_burst"].value is None and "1 missing" in rows["p3_burst"].text
    assert rows["p3_burst_last"].value is None
    assert rows["roundtrip_records_per_change"].value == 12.0


def test_idle_rows_are_shares_of_the_budget_and_p6_is_not_measured() -> None:
    (row,) = idle_figures([IdleFigure("dataverse", 60, 60.0)])
    assert row.value == 1.0 and row.peer == 20.0 and row.ratio == pytest.approx(0.05)
    assert p6_figure().value is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0


def test_a_replay_with_worker_restarts_says_so_in_its_row() -> None:
    p1 = PipelineBench(**{**_p1().__dict__, "replay_restarts": 2})
    rows = {f.key: f for f in replay_figures(p1, Replay(20000, 5600.0, 60000, 20000, 1))}
    assert "2 worker restarts included" in rows["p1_vs_naive"].label
    assert rows["p1_vs_naive"].detail["worker_restarts"] == 2
    assert "1 worker restart included" in rows["p1b_vs_p1"].label
    assert "restart" not in replay_figures(_p1(), None)[0].label


def test_p1_is_shown_next_to_the_workers_decisions_alone() -> None:
    p1 = PipelineBench(**{**_p1().__dict__, "decisions_eps": 3500.0})
    row = {f.key: f for f in replay_figures(p1, None)}["p1_vs_decisions"]
    assert (row.value, row.peer, row.ratio_kind) == (7000.0, 3500.0, "%")
    assert row.ratio == pytest.approx(2.0)
    unmeasured = {f.key: f for f in replay_figures(_p1(), None)}["p1_vs_decisions"]
    assert unmeasured.peer is None  # an older JSON without it shows no peer, not a ratio of 0


def test_p1_is_shown_next_to_the_faust_agents_of_the_same_run() -> None:
    p1 = PipelineBench(**{**_p1().__dict__, "faust_agents_eps": 1000.0, "faust_agents_produced_per_change": 4.4})
    rows = {f.key: f for f in replay_figures(p1, None)}
    assert (rows["p1_vs_faust_agents"].peer, rows["p1_vs_faust_agents"].ratio) == (1000.0, pytest.approx(7.0))
    assert rows["worker_records_per_change_faust"].peer == 4.4
    without = {f.key: f for f in replay_figures(_p1(), None)}
    assert without["p1_vs_faust_agents"].peer is None and "worker_records_per_change_faust" not in without
