"""`dualwrite demo`: everything on one machine with embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run the whole pipeline on this machine.", invoke_without_command=True)


@app.callback(invoke_without_command=True)
def demo(
    seconds: Annotated[float | None, typer.Option(
        help="Generate random activity for N seconds, then drain and check (exit 0 only if "
             "everything arrived). Without it: a short scripted scenario.")] = None,
    workdir: Annotated[Path, typer.Option(help="Kafka data, databases, state and logs (wiped first).")]
    = Path(".dualwrite/demo"),
    port: Annotated[int, typer.Option(help="Kafka port on 127.0.0.1.")] = 9092,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline to drain.")]
    = 180.0,
    keep_kafka: Annotated[bool, typer.Option(help="Leave Kafka running at the end.")] = False,
    workers: Annotated[int, typer.Option(
        min=1, max=8, help="Worker processes in the processor's consumer group.")] = 1,
    brokers: Annotated[int, typer.Option(
        min=1, max=3, help="Kafka nodes: 3 is a local cluster (ports port..port+5, "
        "replication 3, min.insync.replicas 2).")] = 1,
) -> None:
    """Local Kafka, both emulators, topics, worker, sources, sinks and a scenario, with live
    progress; Ctrl-C stops everything cleanly."""
    from dualwrite.demo.run import DemoOptions, run_demo

    raise typer.Exit(run_demo(DemoOptions(workdir.resolve(), port, seconds, drain_timeout, keep_kafka,
                                          workers=workers, brokers=brokers)))
