"""`dualwrite kafka fetch|up|status|down`: a local Apache Kafka (KRaft), one node or a cluster
(`--brokers 3`: three broker+controller nodes, replication 3, ``min.insync.replicas`` 2).
`fetch --flink` also resolves Flink SQL's jars (dualwrite.flink), for `make test`."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dualwrite.flink import flink_classpath, runner_classes
from dualwrite.kafka import ClasspathError, LocalKafka, LocalKafkaError, UnsupportedLayout
from dualwrite.kafka.classpath import resolve_classpath
from dualwrite.settings import Settings

app = typer.Typer(help="Run a local Apache Kafka (KRaft), one broker or a cluster, from Maven-resolved jars.",
                  no_args_is_help=True)
console = Console(stderr=True)

PortOpt = Annotated[int | None, typer.Option(
    help="Client port on 127.0.0.1 (controller: port+1); a cluster of N uses port..port+N-1 "
    "for clients and the next N for controllers.")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="Broker data, log and pid file.")]


def broker(port: int | None, data_dir: Path | None, secure: bool = False,
           brokers: int | None = None) -> LocalKafka:
    """The launcher for these options; a layout it does not build is a usage error (exit 2)."""
    cfg = Settings().local_kafka
    try:
        return LocalKafka(data_dir or cfg.data_dir, port=port or cfg.port,
                          controller_port=cfg.controller_port if port is None else None,
                          heap=cfg.heap, secure=secure, brokers=brokers,
                          jvm_options=cfg.jvm_options)
    except UnsupportedLayout as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def fetch(flink: Annotated[bool, typer.Option(
        "--flink", help="Also Flink SQL's jars and its job (dualwrite.flink), which the "
        "end-to-end tests read the CDC topics with.")] = False) -> None:
    """Resolve the broker's jars with Maven now (`up` does it on first use): for a machine that
    goes offline later, and before parallel test workers start brokers (or Flink) at once."""
    try:
        with console.status("Resolving the Kafka jars with Maven ..."):
            jars = resolve_classpath().split(":")
        typer.echo(f"{len(jars)} jars ready")
        if flink:
            with console.status("Resolving the Flink jars with Maven and compiling its job ..."):
                runner_classes()
                typer.echo(f"{len(flink_classpath().split(':'))} Flink jars ready")
    except ClasspathError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command()
def up(port: PortOpt = None, data_dir: DataOpt = None,
       timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
       secure: Annotated[bool, typer.Option(
           "--secure", help="A SASL_SSL listener (SCRAM-SHA-512, a generated CA) instead of "
           "PLAINTEXT; prints the DUALWRITE_KAFKA__* variables of its clients.")] = False,
       brokers: Annotated[int | None, typer.Option(
           min=1, max=3, help="Nodes (broker+controller each): 3 is a local cluster with "
           "replication 3 and min.insync.replicas 2; default: what the data dir holds, else 1. "
           "Not with --secure.")] = None,
       ) -> None:
    """Start the broker (formats storage on first start); harmless when it already runs.

    Prints the bootstrap address on stdout; with --secure (or a data dir created secure) or a
    cluster the `export DUALWRITE_...` lines instead, for `eval "$(dualwrite kafka up --secure)"`
    (a cluster's include DUALWRITE_TOPICS__REPLICATION for `topics apply` and the worker).
    The SASL password stays in a 0600 file of the data dir, named by
    DUALWRITE_KAFKA__SASL_PASSWORD_FILE. Run again, it restarts any node that is down."""
    kafka = broker(port, data_dir, secure, brokers)
    started = time.monotonic()
    try:
        with console.status(f"Starting Kafka on {kafka.bootstrap} ..."):
            status = kafka.up(timeout=timeout)
    except (LocalKafkaError, ClasspathError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{status.describe()} ({time.monotonic() - started:.1f}s)")
    if kafka.secure or kafka.brokers > 1:
        for name, value in kafka.client_env().items():
            typer.echo(f"export {name}={shlex.quote(value)}")
    else:
        typer.echo(status.bootstrap)


@app.command()
def status(port: PortOpt = None, data_dir: DataOpt = None) -> None:
    """Say whether the broker (every node of a cluster) runs and answers; exit 1 when not."""
    st = broker(port, data_dir).status()
    typer.echo(st.describe())
    if not st.complete:
        raise typer.Exit(1)


@app.command()
def down(port: PortOpt = None, data_dir: DataOpt = None) -> None:
    """Stop the broker (every node) started from this data directory (never another process)."""
    if broker(port, data_dir).down():
        typer.echo("Kafka stopped.")
    else:
        typer.echo("Kafka was not running.")
