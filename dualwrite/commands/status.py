"""`dualwrite status`: map states, consumer lag, parked changes, dead letters, source checkpoints
and sink acks, read from Kafka; exit 1 with each reason when something needs attention."""

from __future__ import annotations

import time
from typing import Annotated, NoReturn

import orjson
import typer
from confluent_kafka import KafkaException
from rich.console import Console

from dualwrite.settings import Settings

app = typer.Typer(help="Show the pipeline's state from Kafka; exit 1 when it needs attention.",
                  add_completion=False)
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout (for scripts).")] = False,
    app_id: Annotated[str, typer.Option(
        help="The worker's app id (its consumer group and changelog prefix).")] = "dualwrite-streams",
    dlq_since: Annotated[str | None, typer.Option(
        help="Only dead letters since then need attention: a duration back from now (90, 15m, "
             "2h, 1d) or an ISO-8601 time. Default: any dead letter.")] = None,
    max_parked_age: Annotated[float | None, typer.Option(
        min=0, help="A change parked longer than this many seconds needs attention "
                    "(default: DUALWRITE_PROCESSOR__MAX_PARKED_AGE_S, 300).")] = None,
    timeout: Annotated[float, typer.Option(
        min=0.5, help="Seconds to wait for the cluster, per request and per topic read.")] = 10.0,
    finance_group: Annotated[str | None, typer.Option(
        help="The Finance sink's consumer group, if started with --group-id "
             "(default dualwrite-sink-finance).")] = None,
    dataverse_group: Annotated[str | None, typer.Option(
        help="The Dataverse sink's consumer group, if started with --group-id "
             "(default dualwrite-sink-dataverse).")] = None,
    topic_prefix: Annotated[str, typer.Option(
        help="Prefix of every catalog topic name (isolated test runs).", hidden=True)] = "",
) -> None:
    """Map states, consumer lag, parked changes, DLQ counts, source checkpoints and sink acks.

    Exit 0 when healthy; 1 when a map is paused, a dead letter is newer than --dlq-since, a
    change is parked longer than --max-parked-age (naming what it waits for and the map that
    brings it), or Kafka cannot be reached; 2 on usage errors.
    The sinks' throttling budget is in their Prometheus metrics, not on Kafka.
    """
    from dualwrite.capture import map_registry
    from dualwrite.ops.errors import KafkaUnreachable, OpsError
    from dualwrite.ops.status import (
        StatusOptions,
        gather,
        parse_since,
        report_json,
        tables,
    )

    since_ms = None
    if dlq_since is not None:
        try:
            since_ms = parse_since(dlq_since, int(time.time() * 1000))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--dlq-since") from None
    settings = Settings()
    options = StatusOptions(app_id=app_id, timeout_s=timeout, dlq_since_ms=since_ms,
                            max_parked_age_s=settings.processor.max_parked_age_s
                            if max_parked_age is None else max_parked_age,
                            topic_prefix=topic_prefix,
                            finance_group=finance_group, dataverse_group=dataverse_group)
    registry = map_registry(settings)
    try:
        report = gather(settings, options, [m.name for m in registry.maps], registry)
    except KafkaUnreachable as exc:
        _fail(as_json, settings.kafka.bootstrap_servers,
              f"{exc} `dualwrite kafka status` says whether the local broker runs.")
    except OpsError as exc:
        _fail(as_json, settings.kafka.bootstrap_servers, str(exc))
    except (KafkaException, TimeoutError, OSError) as exc:
        _fail(as_json, settings.kafka.bootstrap_servers,
              f"reading from Kafka at {settings.kafka.bootstrap_servers} failed: {exc}. "
              "Check the broker with `dualwrite kafka status`.")
    if as_json:
        typer.echo(orjson.dumps(report_json(report), option=orjson.OPT_INDENT_2).decode())
    else:
        out = Console()
        for table in tables(report):
            out.print(table)
    for problem in report.problems:
        err.print(f"[red]attention:[/red] {problem}", highlight=False)
    if report.problems:
        raise typer.Exit(1)
    err.print("[green]healthy[/green]")


def _fail(as_json: bool, bootstrap: str, message: str) -> NoReturn:
    if as_json:
        typer.echo(orjson.dumps({"bootstrap": bootstrap, "reachable": False, "healthy": False,
                                 "problems": [message]}).decode())
    err.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


if __name__ == "__main__":
    app()
