"""`dualwrite source dataverse|finance` and `dualwrite sink dataverse|finance`.

Each command builds the connector's frozen configuration from `dualwrite.settings.Settings`
(environment ``DUALWRITE_*`` or ``.env``) plus its options, then runs the engine until SIGINT or
SIGTERM. Secrets stay `SecretStr` all the way down; nothing here prints them.

A source captures the tables the map registry derives (`dualwrite.capture`) with their
declared keys, signs in as the source identity (``SOURCE_CLIENT_ID``: its own
service-protection budget, apart from the sink's) and paces each table by itself
(`connectors.common.pacing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Annotated

import typer

from connectors.common.http import HttpConfig
from connectors.common.images import ImageStoreError
from connectors.common.kafka import KafkaConfig
from connectors.common.run import run_until_signalled
from connectors.common.sink import SinkSettings
from connectors.common.source import SourceEngine, SourceSettings
from connectors.dataverse import DataverseConnection, dataverse_sink, dataverse_source
from connectors.finance import FinanceConnection, finance_sink, finance_source
from dualwrite.capture import capture_tables
from dualwrite.logs import configure as configure_logging
from dualwrite.settings import ApiSettings, Settings
from topics import System

__all__ = ["dataverse_connection", "finance_connection", "kafka_config", "sink_app", "source_app",
           "source_settings"]

source_app = typer.Typer(help="Capture changes from Dataverse or Finance into the CDC topics.",
                         no_args_is_help=True)
sink_app = typer.Typer(help="Apply sync.commands.<target> to Dataverse or Finance and publish acks.",
                       no_args_is_help=True)

TablesOpt = Annotated[list[str] | None, typer.Option(
    "--table", help="Table to capture (repeatable; default: every table the maps read, plus "
    "EXTRA_TABLES).")]
PollOpt = Annotated[float | None, typer.Option(
    help="Seconds between polls of a table that changed recently (default: POLL_INTERVAL_S).")]
# Dataverse's guidance is to start with batches of about 10 and prefer parallel requests.
BatchOpt = Annotated[int, typer.Option(help="Operations per $batch request (1 = plain requests).")]
FlushOpt = Annotated[float, typer.Option(help="Longest wait for a window's first command, in seconds.")]
GroupOpt = Annotated[str | None, typer.Option(help="Consumer group id (default dualwrite-sink-<target>).")]
ConcurrencyOpt = Annotated[int, typer.Option(help="Most concurrent requests (AIMD ceiling).")]
TopicsWaitOpt = Annotated[float, typer.Option(
    help="Seconds to wait at start for the topics it reads and writes (`dualwrite topics apply` "
    "creates them; a table no map reads needs EXTRA_TABLES); then exit with 1 naming the missing "
    "ones.")]

log = logging.getLogger(__name__)


def kafka_config(settings: Settings) -> KafkaConfig:
    """The connectors' Kafka config: the settings' one librdkafka translation, secrets hidden."""
    return KafkaConfig(bootstrap_servers=settings.kafka.bootstrap_servers,
                       client=settings.kafka.librdkafka())


def _identity(api: ApiSettings, source: bool) -> dict[str, object]:
    """The client id and secret of the sink (CLIENT_ID) or of the source (SOURCE_CLIENT_ID)."""
    if source:
        return {"client_id": api.source_client_id,
                "client_secret": api.source_client_secret or api.client_secret}
    return {"client_id": api.client_id, "client_secret": api.client_secret}


def dataverse_connection(settings: Settings, concurrency: int = 32, *,
                         source: bool = False) -> DataverseConnection:
    dv = settings.dataverse
    keys = {t.name: t.primary_key for t in capture_tables(settings, "dataverse") if t.primary_key}
    return DataverseConnection.model_validate({
        "url": dv.url, "token_url": dv.token_url, **_identity(dv, source), "scope": dv.scope,
        "http": HttpConfig(concurrency_max=concurrency), "primary_keys": keys})


def finance_connection(settings: Settings, concurrency: int = 32, *,
                       source: bool = False) -> FinanceConnection:
    fo = settings.finance
    return FinanceConnection.model_validate({
        "url": fo.url, "token_url": fo.token_url, **_identity(fo, source), "scope": fo.scope,
        "company": fo.company, "http": HttpConfig(concurrency_max=concurrency)})


def source_settings(settings: Settings, system: System, tables: list[str] | None,
                    poll_interval: float | None) -> SourceSettings:
    """What one source captures (the maps' tables unless ``--table`` names others) and its pace."""
    api = settings.dataverse if system == "dataverse" else settings.finance
    declared = capture_tables(settings, system)
    return SourceSettings(system=system, tables=tuple(tables or (t.name for t in declared)),
                          declared=declared, poll_interval_s=poll_interval or api.poll_interval_s,
                          idle_max_s=api.poll_idle_max_s, hot_s=api.poll_hot_s,
                          idle_budget_rps=api.poll_idle_budget_rps,
                          images_path=settings.state_dir / "sources" / f"{system}-images.lmdb")


def sink_settings(settings: Settings, target: System, batch_size: int, flush_interval: float,
                  group_id: str | None) -> SinkSettings:
    """One sink's window and waits: the command's options and the target's settings."""
    api = settings.dataverse if target == "dataverse" else settings.finance
    return SinkSettings(target=target, batch_size=batch_size, flush_interval_s=flush_interval,
                        group_id=group_id, tx_wait_s=api.sink_tx_wait_s, linger_s=api.sink_linger_s)


def _serve(settings: Settings) -> None:
    """A service's logs (in ``DUALWRITE_LOG_FORMAT``) and metrics endpoint."""
    configure_logging(settings.log_format)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port)


def _await_topics(settings: Settings, who: str, topics: list[str], wait_s: float, hint: str = "") -> None:
    """The catalog topics a source or sink uses exist, or one line and exit 1. Started before
    `dualwrite topics apply`, a sink used to make ``sync.applied.<target>`` itself through a
    broker with ``auto.create.topics.enable`` (not compacted, 7 days: a drift `topics apply`
    names but never repairs), and a source its checkpoint topic (whose checkpoints the broker's
    retention would then delete)."""
    from dualwrite.ops.errors import OpsError
    from dualwrite.ops.kafka import await_topics

    try:
        await_topics(kafka_config(settings), topics, wait_s, on_wait=lambda missing: log.warning(
            "%s: waiting for topics %s (created by `dualwrite topics apply`)", who, ", ".join(missing)))
    except OpsError as exc:
        typer.echo(f"error: {exc}{hint}", err=True)
        raise typer.Exit(exc.exit_code) from None


def _source_topics(config: SourceSettings) -> list[str]:
    return [*(config.topic(t) for t in config.tables), config.offsets_topic, config.dlq_topic]


def outside_catalog_hint(config: SourceSettings) -> str:
    """What to say of ``--table`` tables that no map reads and ``EXTRA_TABLES`` does not name:
    `dualwrite topics apply` does not create their topics (empty when there are none)."""
    known = {t.name for t in config.declared}
    outside = [t for t in config.tables if t not in known]
    if not outside:
        return ""
    return (f" No map reads {', '.join(outside)} and DUALWRITE_{config.system.upper()}__EXTRA_TABLES "
            "does not name it: add it there first, so that `dualwrite topics apply` creates its topic.")


def _sink_topics(config: SinkSettings) -> list[str]:
    return [config.commands, config.applied, config.dlq_topic]


def _source(build: Callable[[], SourceEngine]) -> SourceEngine:
    """The source engine; a state file it cannot use is one line and exit 1, not a traceback."""
    try:
        return build()
    except ImageStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@source_app.command("dataverse")
def source_dataverse(table: TablesOpt = None, poll_interval: PollOpt = None,
                      topics_wait: TopicsWaitOpt = 60.0) -> None:
    """Capture Dataverse changes (change tracking / delta links) into dataverse.cdc.<table>."""
    settings = Settings()
    _serve(settings)
    config = source_settings(settings, "dataverse", table, poll_interval)
    engine = _source(lambda: dataverse_source(dataverse_connection(settings, source=True),
                                              kafka_config(settings), config))
    # After the engine: a state file it cannot use is said at once, before any wait for Kafka.
    _await_topics(settings, "source dataverse", _source_topics(config), topics_wait,
                  outside_catalog_hint(config))
    asyncio.run(run_until_signalled(engine.run))


@source_app.command("finance")
def source_finance(table: TablesOpt = None, poll_interval: PollOpt = None,
                    topics_wait: TopicsWaitOpt = 60.0) -> None:
    """Capture Finance changes (the change feed) into finance.cdc.<entity>."""
    settings = Settings()
    _serve(settings)
    config = source_settings(settings, "finance", table, poll_interval)
    engine = _source(lambda: finance_source(finance_connection(settings, source=True),
                                            kafka_config(settings), config))
    # After the engine: a state file it cannot use is said at once, before any wait for Kafka.
    _await_topics(settings, "source finance", _source_topics(config), topics_wait,
                  outside_catalog_hint(config))
    asyncio.run(run_until_signalled(engine.run))


@sink_app.command("dataverse")
def sink_dataverse(batch_size: BatchOpt = 10, flush_interval: FlushOpt = 0.5, group_id: GroupOpt = None,
                   concurrency: ConcurrencyOpt = 32, topics_wait: TopicsWaitOpt = 60.0) -> None:
    """Write sync.commands.dataverse to the Dataverse Web API; acks to sync.applied.dataverse."""
    settings = Settings()
    _serve(settings)
    config = sink_settings(settings, "dataverse", batch_size, flush_interval, group_id)
    _await_topics(settings, "sink dataverse", _sink_topics(config), topics_wait)
    engine = dataverse_sink(dataverse_connection(settings, concurrency), kafka_config(settings), config)
    asyncio.run(run_until_signalled(engine.run))


@sink_app.command("finance")
def sink_finance(batch_size: BatchOpt = 50, flush_interval: FlushOpt = 0.5, group_id: GroupOpt = None,
                 concurrency: ConcurrencyOpt = 32, topics_wait: TopicsWaitOpt = 60.0) -> None:
    """Write sync.commands.finance to Finance OData; acks to sync.applied.finance."""
    settings = Settings()
    _serve(settings)
    config = sink_settings(settings, "finance", batch_size, flush_interval, group_id)
    _await_topics(settings, "sink finance", _sink_topics(config), topics_wait)
    engine = finance_sink(finance_connection(settings, concurrency), kafka_config(settings), config)
    asyncio.run(run_until_signalled(engine.run))
