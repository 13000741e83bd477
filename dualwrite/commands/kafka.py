"""`dualwrite kafka up|status|down`: a local single-node Apache Kafka (KRaft)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dualwrite.kafka import ClasspathError, LocalKafka, LocalKafkaError
from dualwrite.settings import Settings

app = typer.Typer(help="Run a local single-node Apache Kafka broker (KRaft) from Maven-resolved jars.",
                  no_args_is_help=True)
console = Console(stderr=True)

PortOpt = Annotated[int | None, typer.Option(help="Client port on 127.0.0.1 (controller: port+1).")]
DataOpt = Annotated[Path | None, typer.Option("--data-dir", help="Broker data, log and pid file.")]


def broker(port: int | None, data_dir: Path | None, secure: bool = False) -> LocalKafka:
    cfg = Settings().local_kafka
    return LocalKafka(data_dir or cfg.data_dir, port=port or cfg.port,
                      controller_port=cfg.controller_port if port is None else None, heap=cfg.heap,
                      secure=secure)


@app.command()
def up(port: PortOpt = None, data_dir: DataOpt = None,
       timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness.")] = 90.0,
       secure: Annotated[bool, typer.Option(
           "--secure", help="A SASL_SSL listener (SCRAM-SHA-512, a generated CA) instead of "
           "PLAINTEXT; prints the DUALWRITE_KAFKA__* variables of its clients.")] = False,
       ) -> None:
    """Start the broker (formats storage on first start); harmless when it already runs.

    Prints the bootstrap address on stdout; with --secure (or a data dir created secure) the
    `export DUALWRITE_KAFKA__...` lines instead, for `eval "$(dualwrite kafka up --secure)"`.
    The SASL password stays in a 0600 file of the data dir, named by
    DUALWRITE_KAFKA__SASL_PASSWORD_FILE."""
    kafka = broker(port, data_dir, secure)
    started = time.monotonic()
    try:
        with console.status(f"Starting Kafka on {kafka.bootstrap} ..."):
            status = kafka.up(timeout=timeout)
    except (LocalKafkaError, ClasspathError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"{status.describe()} ({time.monotonic() - started:.1f}s)")
    if kafka.secure:
        for name, value in kafka.client_env().items():
            typer.echo(f"export {name}={shlex.quote(value)}")
    else:
        typer.echo(status.bootstrap)


@app.command()
def status(port: PortOpt = None, data_dir: DataOpt = None) -> None:
    """Say whether the broker runs and answers; exit 1 when it does not."""
    st = broker(port, data_dir).status()
    typer.echo(st.describe())
    if not (st.running and st.answering):
        raise typer.Exit(1)


@app.command()
def down(port: PortOpt = None, data_dir: DataOpt = None) -> None:
    """Stop the broker started from this data directory (never another process)."""
    if broker(port, data_dir).down():
        typer.echo("Kafka stopped.")
    else:
        typer.echo("Kafka was not running.")
