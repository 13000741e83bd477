"""`dualwrite topics apply [--check]` and `dualwrite topics schema`."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from confluent_kafka import KafkaException
from rich.console import Console
from rich.markup import escape

from dualwrite.capture import topic_catalog
from dualwrite.commands.connectors import kafka_config
from dualwrite.ops.kafka import describe, kafka_failure
from dualwrite.settings import Settings
from topics import apply_topics, topic_schemas

app = typer.Typer(help="Create, verify and document the topic catalog.", no_args_is_help=True)
console = Console(stderr=True)


def settings_catalog(settings: Settings) -> list:  # type: ignore[type-arg]
    return topic_catalog(settings)


@app.command()
def apply(
    check: Annotated[bool, typer.Option("--check", help="Create nothing; exit 1 on any drift.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the cluster.")] = 30.0,
) -> None:
    """Create every missing topic of the catalog (a no-op the second time) and report drift."""
    settings = Settings()
    try:
        # librdkafka's own lines (one per failed connect) stay quiet: the failure is told once.
        report = apply_topics({**settings.kafka.client_config(), "log_level": "2"},
                              settings_catalog(settings),
                              check=check, timeout=timeout)
    except KafkaException as exc:
        # Unreachable, or answering but refusing the client's security settings: say which.
        failure = kafka_failure(kafka_config(settings), describe(exc))
        console.print(f"[red]error:[/red] {escape(str(failure))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for name in report.created:
        console.print(f"created {name}")
    for drift in report.drifts:
        console.print(f"[red]drift[/red] {drift}")
    console.print(f"{len(report.created)} created, {len(report.present)} present, "
                  f"{len(report.drifts)} drift(s)")
    if report.drifts:
        raise typer.Exit(1)


@app.command()
def schema(topic: Annotated[str | None, typer.Argument(help="Only this topic.")] = None) -> None:
    """Print each topic's key and value JSON Schema (for Flink, ClickHouse, ksqlDB users)."""
    schemas = topic_schemas(settings_catalog(Settings()))
    if topic is not None:
        if topic not in schemas:
            console.print(f"[red]error:[/red] unknown topic {topic!r}; see `dualwrite topics schema`")
            raise typer.Exit(2)
        schemas = {topic: schemas[topic]}
    typer.echo(orjson.dumps(schemas, option=orjson.OPT_INDENT_2).decode())
