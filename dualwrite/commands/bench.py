"""`dualwrite bench`: every figure next to its peer, measured in the same run, as one table.

`dualwrite bench` alone runs the whole suite (`bench.suite`); `bench pipeline` and `bench idle`
run one part. All of them print the same five columns (`bench.figures`) and write the same
JSON with ``--json FILE``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench.figures import Figure, figures_json, figures_table

app = typer.Typer(help="Benchmarks (not tests): `dualwrite bench` alone measures every figure next "
                  "to its peer and prints one table (about 14 minutes); a sub-command runs one part.",
                  invoke_without_command=True)
console = Console()

Workdir = Annotated[Path | None, typer.Option(help="Scratch directory (default: a temp dir).")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the figures here (JSON).")]


def _show(figures: list[Figure], title: str, json_out: Path | None, meta: dict[str, object]) -> None:
    console.print(figures_table(figures, title))
    if json_out is not None:
        json_out.write_text(figures_json(figures, meta))


def _load() -> list[float]:
    with open("/proc/loadavg") as fh:
        return [float(x) for x in fh.read().split()[:3]]


@app.callback()
def suite(
    ctx: typer.Context,
    records: Annotated[int, typer.Option(help="P1: projects in the replay workload.")] = 2000,
    updates: Annotated[int, typer.Option(help="P1: versions of each project.")] = 10,
    actuals: Annotated[int, typer.Option(help="P1b: actuals in the replay workload.")] = 2000,
    actuals_updates: Annotated[int, typer.Option(help="P1b: versions of each actual.")] = 10,
    burst_records: Annotated[int, typer.Option(help="Sink burst: records.")] = 200,
    burst_updates: Annotated[int, typer.Option(help="Sink burst: updates of each record.")] = 10,
    rate: Annotated[list[float] | None, typer.Option(help="P3: paced rates in changes/s (repeat).")] = None,
    rate_seconds: Annotated[float, typer.Option(help="P3: seconds of writes at each rate.")] = 10.0,
    burst_projects: Annotated[int, typer.Option(help="P3: burst projects (three tasks each).")] = 200,
    poll_interval: Annotated[float, typer.Option(help="P3: the sources' active poll interval (s).")] = 0.25,
    idle_settle: Annotated[float, typer.Option(help="Idle: seconds after the snapshots.")] = 45.0,
    idle_window: Annotated[float, typer.Option(help="Idle: seconds counted.")] = 60.0,
    initial_sync_rows: Annotated[int, typer.Option(help="Initial sync: rows of the table synced.")] = 50_000,
    restart_keys: Annotated[int, typer.Option(help="P6: keys in the worker's tables at the restart.")] = 1_000_000,
    skip: Annotated[list[str] | None, typer.Option(
        help="Parts to leave out: p1b, p3, idle, p6, replay, initial-sync.")] = None,
    workdir: Workdir = None,
    json_out: JsonOut = None,
) -> None:
    """Every figure (P1, P1b, records per change, P3 latency, idle polling, P6, replay, initial
    sync) next to its peer, in one table. Starts its own brokers and stacks, one at a time;
    about 14 minutes at the defaults on 2 cores (P6 about 2.5)."""
    if ctx.invoked_subcommand is not None:
        return
    from bench.suite import PARTS, BenchSizes, run_suite

    unknown = set(skip or ()) - set(PARTS)
    if unknown:
        raise typer.BadParameter(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}",
                                 param_hint="--skip")
    sizes = BenchSizes(records, updates, actuals, actuals_updates, burst_records, burst_updates,
                       tuple(rate or (50.0, 200.0)), rate_seconds, burst_projects, poll_interval,
                       idle_settle, idle_window, initial_sync_rows, restart_keys)
    started = time.monotonic()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        figures = run_suite((workdir or Path(tmp)).resolve(), sizes, skip=frozenset(skip or ()),
                            progress=lambda msg: console.print(f"[dim]bench: {msg}[/dim]"))
    seconds = time.monotonic() - started
    load_after = _load()
    _show(figures, f"dualwrite bench ({seconds:.0f} s; load average {load_after[0]:.2f} at the end)",
          json_out, {"sizes": sizes.__dict__, "seconds": seconds, "load_before": load_before,
                     "load_after": load_after})


@app.command()
def pipeline(
    records: Annotated[int, typer.Option(help="Projects in the replay workload.")] = 2000,
    updates: Annotated[int, typer.Option(help="Versions of each project in the replay workload.")] = 10,
    burst_records: Annotated[int, typer.Option(help="Records in the sink burst.")] = 200,
    burst_updates: Annotated[int, typer.Option(help="Updates of each record in one flush window.")] = 10,
    workdir: Workdir = None,
    json_out: JsonOut = None,
) -> None:
    """P1 only: processor replay throughput vs raw aiokafka and a naive Faust agent, records per
    change in the worker, sink requests per change in a burst. Starts its own Kafka broker."""
    from bench.pipeline import run_pipeline_bench
    from bench.suite import replay_figures

    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        result = run_pipeline_bench((workdir or Path(tmp)).resolve(), records, updates,
                                    burst_records, burst_updates)
    _show(replay_figures(result, None, p1b_row=False),
          f"dualwrite bench pipeline ({result.replay_events} replayed events, "
          f"{result.burst_changes} burst changes)", json_out, {"load_after": _load()})


@app.command()
def idle(
    settle: Annotated[float, typer.Option(help="Seconds after the snapshots before counting.")] = 45.0,
    window: Annotated[float, typer.Option(help="Seconds during which requests are counted.")] = 60.0,
    workdir: Workdir = None,
    json_out: JsonOut = None,
) -> None:
    """Idle source requests per second per target, next to one user's service-protection budget.
    Starts its own Kafka broker, both emulators and both sources."""
    from bench.polling import run_idle_bench
    from bench.suite import idle_figures

    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        figures = run_idle_bench((workdir or Path(tmp)).resolve(), settle, window)
    _show(idle_figures(figures), f"dualwrite bench idle ({window:.0f} s counted at the emulators)",
          json_out, {"load_after": _load()})


@app.command("initial-sync")
def initial_sync(
    rows: Annotated[int, typer.Option(help="Customers added to the seeded ones.")] = 50_000,
    page_size: Annotated[int, typer.Option(help="Rows per page, for both loops.")] = 1000,
    workdir: Workdir = None,
    json_out: JsonOut = None,
) -> None:
    """Initial sync rows/s into the topics from the Finance emulator, next to a bare httpx paging
    loop over the same table in the same run (the ceiling). Starts its own broker and emulator."""
    from bench.initial_sync import initial_sync_figures, run_initial_sync_bench

    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        result = run_initial_sync_bench((workdir or Path(tmp)).resolve(), rows, page_size)
    _show(initial_sync_figures(result), f"dualwrite bench initial-sync ({result.rows} rows)", json_out,
          {"load_after": _load()})


@app.command("replay")
def replay(
    records: Annotated[int, typer.Option(help="Projects in the workload.")] = 2000,
    updates: Annotated[int, typer.Option(help="Versions of each project.")] = 10,
    workdir: Workdir = None,
    json_out: JsonOut = None,
) -> None:
    """`dualwrite replay --dry-run` events/s (read the acks and the range, decode and classify
    every record of an applied history) next to a bare confluent-kafka consumer reading the same
    topic in the same run (the ceiling). Starts its own Kafka broker."""
    from bench.replay import replay_figures, run_replay_bench

    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        result = run_replay_bench((workdir or Path(tmp)).resolve(), records, updates)
    _show(replay_figures(result), f"dualwrite bench replay ({result.events} events)", json_out,
          {"load_after": _load()})


@app.command("restart")
def restart(
    keys: Annotated[int, typer.Option(help="Keys in the worker's tables at the restart.")] = 1_000_000,
    workdir: Workdir = None,
    json_out: JsonOut = None,
) -> None:
    """P6 only: seconds from a worker's SIGKILL and start to processing again with `--keys` keys in
    its RocksDB tables, next to the same restart with every key replayed from the changelogs (the
    peer, same run). Starts its own broker and one worker."""
    from bench.restart import restart_figure, run_restart_bench

    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        result = run_restart_bench((workdir or Path(tmp)).resolve(), keys)
    _show([restart_figure(result)], f"dualwrite bench restart ({result.keys:,} keys)", json_out,
          {"load_after": _load()})
