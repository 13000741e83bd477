"""`dualwrite bench ...`: benchmarks, each figure next to a peer measured in the same run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Benchmarks (not tests): figures next to peers measured in the same run.",
                  no_args_is_help=True)
console = Console()


@app.command()
def pipeline(
    records: Annotated[int, typer.Option(help="Projects in the replay workload.")] = 2000,
    updates: Annotated[int, typer.Option(help="Versions of each project in the replay workload.")] = 10,
    burst_records: Annotated[int, typer.Option(help="Records in the sink burst.")] = 200,
    burst_updates: Annotated[int, typer.Option(help="Updates of each record in one flush window.")] = 10,
    workdir: Annotated[Path | None, typer.Option(help="Scratch directory (default: a temp dir).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures here.")] = None,
) -> None:
    """Processor replay throughput vs raw aiokafka and a naive Faust agent; sink requests per
    change in an update burst vs a naive per-event sink. Starts its own Kafka broker."""
    from bench.pipeline import run_pipeline_bench

    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        result = run_pipeline_bench((workdir or Path(tmp)).resolve(), records, updates,
                                    burst_records, burst_updates)
    table = Table(title=f"dualwrite bench pipeline ({result.replay_events} replayed events, "
                        f"{result.burst_changes} burst changes)")
    table.add_column("figure")
    table.add_column("dualwrite", justify="right")
    table.add_column("peer", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("replay, events/s vs raw aiokafka", f"{result.processor_eps:,.0f}",
                  f"{result.raw_aiokafka_eps:,.0f}", f"{result.processor_eps / result.raw_aiokafka_eps:.1%}")
    table.add_row("replay, events/s vs naive Faust agent", f"{result.processor_eps:,.0f}",
                  f"{result.naive_faust_eps:,.0f}", f"{result.processor_eps / result.naive_faust_eps:.2f}x")
    table.add_row("burst, requests per change vs naive sink", f"{result.sink_requests_per_change:.3f}",
                  f"{result.naive_sink_requests_per_change:.3f}",
                  f"{result.sink_requests_per_change / max(result.naive_sink_requests_per_change, 1e-9):.1%}")
    table.add_row("burst, seconds to apply vs naive sink", f"{result.sink_seconds:.1f}",
                  f"{result.naive_sink_seconds:.1f}", "")
    console.print(table)
    console.print("Targets: replay >= 25% of raw consumption and >= 5x the naive agent; "
                  "<= 0.25 requests per change in the burst.")
    if json_out is not None:
        json_out.write_text(result.as_json())
