"""`dualwrite bench`: every figure of issue 9 in one run, as one table of `bench.figures`.

Each part brings up its own broker (and stack), one after the other, so no part measures
another's leftovers: P1 with its peers and the sink burst (`bench.pipeline`), P1b
(`bench.pipeline.run_actuals_replay`), P3 and the round trip (`bench.latency`), idle polling
(`bench.polling`), P6, a worker restart with its keys in RocksDB next to a full changelog replay
(`bench.restart`), and issue 13's two: `dualwrite replay` next to raw consumption
(`bench.replay`) and initial sync next to bare paging (`bench.initial_sync`). The ``*_figures``
functions only turn results into rows (tested without a broker); the goals and the figures from
before the redesign are written once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.figures import Figure, not_measured, restarts_included
from bench.latency import EndToEnd, Phase
from bench.pipeline import PipelineBench, Replay
from bench.polling import GOAL_SHARE, IdleFigure

__all__ = ["BEFORE", "PARTS", "BenchSizes", "idle_figures", "latency_figures", "replay_figures", "run_suite"]

# Measured on the landed code before issue 9 on the same 2-core machine (the figures).
BEFORE = {"p1_eps": 744.0, "worker_records_per_change": 8.5, "roundtrip_records_per_change": 17.0,
          "p3_p99_50": 2.6, "burst_last_arrival": 6.1}
PARTS = ("p1b", "p3", "idle", "p6", "replay", "initial-sync")  # what `--skip` may leave out
P3_GOAL_S = 1.0
BURST_GOAL_S = 3.0


@dataclass(frozen=True)
class BenchSizes:
    """Defaults keep the whole run within about 14 minutes on 2 cores (P6 about 2.5); flags go bigger."""

    records: int = 2000
    updates: int = 10
    actuals_records: int = 2000
    actuals_updates: int = 10
    burst_records: int = 200
    burst_updates: int = 10
    rates: tuple[float, ...] = (50.0, 200.0)
    rate_seconds: float = 10.0
    burst_projects: int = 200  # with three tasks each: 800 records
    poll_interval_s: float = 0.25
    idle_settle_s: float = 45.0
    idle_window_s: float = 60.0
    initial_sync_rows: int = 50_000  # fifty pages: the start and the end are a fixed cost
    restart_keys: int = 1_000_000  # the P6 size


def replay_figures(p1: PipelineBench, p1b: Replay | None, *, p1b_row: bool = True) -> list[Figure]:
    """P1 with its peers, P1b next to P1 (a "not measured" row without it, unless not
    ``p1b_row``), records per change in the worker, the sink burst."""
    rows = [
        Figure("p1_vs_naive", "P1 replay, project workload, events/s vs naive Faust agent"
               + (", hot path " + p1.hot_path.split(" (")[0] if p1.hot_path else "")
               + restarts_included(p1.replay_restarts),
               p1.processor_eps, "/s", p1.naive_faust_eps, "same run", "x", ">= 2x (beyond: 5x)",
               detail={"events": p1.replay_events, "commands": p1.replay_commands,
                       "worker_restarts": p1.replay_restarts}),
        Figure("p1_vs_before", "P1 replay vs before the redesign", p1.processor_eps, "/s",
               BEFORE["p1_eps"], "before", "x", ">= 10x"),
        Figure("p1_vs_faust_agents", "P1 replay vs the same worker's Faust agents (--engine faust)",
               p1.processor_eps, "/s", p1.faust_agents_eps or None, "same run", "x", "(the engine's gain)"),
        Figure("p1_vs_raw", "P1 replay vs raw aiokafka consumption", p1.processor_eps, "/s",
               p1.raw_aiokafka_eps, "same run", "%", "(ceiling)"),
        Figure("p1_vs_decisions", "P1 replay vs the worker's decisions alone (no Kafka, no Faust)",
               p1.processor_eps, "/s", p1.decisions_eps or None, "same run", "%", "(ceiling)"),
        Figure("p1_vs_interpreted", "P1 replay vs the same worker with its hot path interpreted "
               "(DUALWRITE_NATIVE=0)", p1.processor_eps, "/s", p1.interpreted_eps or None, "same run", "x",
               "(compiling's gain)"),
    ]
    if p1b is None and p1b_row:
        rows.append(not_measured("p1b_vs_p1", "P1b replay, actuals (6 lookups), vs P1", ">= 70%", "skipped"))
    elif p1b is not None:
        rows.append(Figure("p1b_vs_p1", "P1b replay, actuals (6 lookups), events/s vs P1"
                           + restarts_included(p1b.restarts), p1b.eps, "/s",
                           p1.processor_eps, "P1", "%", ">= 70%",
                           detail={"events": p1b.events, "commands": p1b.commands,
                                   "worker_restarts": p1b.restarts}))
    rows.append(Figure("worker_records_per_change", "records produced in the worker per change, P1",
                       p1.worker_produced_per_change, "", BEFORE["worker_records_per_change"],
                       "before: 8-9", "%", "fewer"))
    if p1.faust_agents_produced_per_change:
        rows.append(Figure("worker_records_per_change_faust", "records produced in the worker per change, P1, "
                           "vs the Faust agents", p1.worker_produced_per_change, "",
                           p1.faust_agents_produced_per_change, "same run", "%", "fewer"))
    if p1b is not None:
        rows.append(Figure("worker_records_per_change_p1b", "records produced in the worker per change, P1b",
                           p1b.produced_per_change, "", p1.worker_produced_per_change, "P1", "%",
                           "flat in lookups"))
    rows.append(Figure("sink_requests_per_change", "sink burst, requests per change vs naive sink",
                       p1.sink_requests_per_change, "", p1.naive_sink_requests_per_change, "same run",
                       "%", "<= 0.25"))
    return rows


def _phase_text(phase: Phase) -> str:
    if not phase.latencies:
        return f"none of {phase.writes} arrived"
    missing = f", {phase.missing} missing" if phase.missing else ""
    return f"{phase.p50:.2f} / {phase.p99:.2f} s{missing}"


def _detail(phase: Phase) -> dict[str, float | list[float]]:
    out: dict[str, float | list[float]] = {"writes": float(phase.writes), "achieved_rate": phase.achieved_rate, "missing": float(phase.missing),
           "last_arrival_after_last_write": phase.last_arrival_after_last_write}
    if phase.latencies:
        out |= {"p50": phase.p50, "p99": phase.p99}
    return out


def latency_figures(e2e: EndToEnd | None) -> list[Figure]:
    if e2e is None:
        return [not_measured("p3", "P3 end-to-end latency", f"p99 <= {P3_GOAL_S:g} s at 200/s", "skipped")]
    polling = f"poll {e2e.poll_interval_s:g} s, idle max {e2e.poll_idle_max_s:g} s"
    rows = []
    for phase in e2e.phases:
        p99 = phase.p99 if phase.latencies and not phase.missing else None
        if phase.target_rate is None:
            rows.append(Figure("p3_burst", f"P3 burst of {phase.writes} records ({phase.write_seconds:.1f} s "
                               f"of writes; {polling}), p50 / p99", p99, "s", text=_phase_text(phase),
                               detail=_detail(phase)))
            last = phase.last_arrival_after_last_write if not phase.missing else None
            rows.append(Figure("p3_burst_last", "P3 burst, last arrival after the last write", last, "s",
                               BEFORE["burst_last_arrival"], "before, 800 rows", "%",
                               f"<= {BURST_GOAL_S:g} s", note="" if last is not None else "records missing"))
            continue
        rate = phase.target_rate
        before = BEFORE["p3_p99_50"] if rate == 50 else None
        rows.append(Figure(f"p3_{rate:g}", f"P3 at {rate:g}/s (achieved {phase.achieved_rate:.0f}/s; "
                           f"{polling}), p50 / p99", p99, "s", before, "before, p99" if before else "",
                           "%" if before else "", f"p99 <= {P3_GOAL_S:g} s" if rate >= 200 else "",
                           text=_phase_text(phase), detail=_detail(phase)))
    rows.append(Figure("roundtrip_records_per_change", "records produced per change, full round trip",
                       e2e.roundtrip_records_per_change, "", BEFORE["roundtrip_records_per_change"],
                       "before: about 17", "%", "fewer"))
    return rows


def idle_figures(idle: list[IdleFigure] | None) -> list[Figure]:
    if idle is None:
        return [not_measured("idle", "idle source requests/s", f"<= {GOAL_SHARE:.0%} of budget", "skipped")]
    return [Figure(f"idle_rps_{f.target}", f"idle source requests/s, {f.target}", f.rps, "/s", f.budget_rps,
                   "budget", "%", f"<= {GOAL_SHARE:.0%} of budget") for f in idle]


def p6_figure() -> Figure:
    """P6's row when ``--skip p6`` leaves it out (`bench.restart.restart_figure` otherwise)."""
    return not_measured("p6", "P6 worker restart with 1,000,000 keys, seconds to processing", "<= 30 s",
                        "skipped")


def run_suite(workdir: Path, sizes: BenchSizes, *, skip: frozenset[str] = frozenset(),
              progress: Callable[[str], None] = lambda _msg: None) -> list[Figure]:
    """Every part not in ``skip`` (`PARTS`), one after the other."""
    from bench import initial_sync, replay, restart
    from bench.latency import run_latency_bench
    from bench.pipeline import run_actuals_replay, run_pipeline_bench
    from bench.polling import run_idle_bench

    progress("P1 replay with its peers, and the sink burst")
    p1 = run_pipeline_bench(workdir / "p1", sizes.records, sizes.updates, sizes.burst_records, sizes.burst_updates)
    p1b = None
    if "p1b" not in skip:
        progress("P1b replay of actuals with six lookups")
        p1b = run_actuals_replay(workdir / "p1b", sizes.actuals_records, sizes.actuals_updates)
    e2e = None
    if "p3" not in skip:
        e2e = run_latency_bench(workdir / "p3", sizes.rates, sizes.rate_seconds, sizes.burst_projects,
                                sizes.poll_interval_s, progress=progress)
    idle = None
    if "idle" not in skip:
        progress("idle source requests")
        idle = run_idle_bench(workdir / "idle", sizes.idle_settle_s, sizes.idle_window_s)
    if "p6" in skip:
        p6 = p6_figure()
    else:
        progress(f"P6 worker restart with {sizes.restart_keys:,} keys, next to a full changelog replay")
        p6 = restart.restart_figure(restart.run_restart_bench(workdir / "p6", sizes.restart_keys))
    topics: list[Figure] = []
    if "replay" in skip:
        topics.append(not_measured("replay_vs_raw", "replay --dry-run events/s vs raw consumption",
                                   replay.GOAL, "skipped"))
    else:
        progress("dualwrite replay next to raw consumption")
        topics += replay.replay_figures(replay.run_replay_bench(workdir / "replay", sizes.records, sizes.updates))
    if "initial-sync" in skip:
        topics.append(not_measured("initial_sync", "initial sync rows/s vs bare httpx paging",
                                   f">= {initial_sync.GOAL:.0%}", "skipped"))
    else:
        progress("initial sync next to bare paging")
        topics += initial_sync.initial_sync_figures(
            initial_sync.run_initial_sync_bench(workdir / "initial-sync", sizes.initial_sync_rows))
    return [*replay_figures(p1, p1b), *latency_figures(e2e), *idle_figures(idle), p6, *topics]
