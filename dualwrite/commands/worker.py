"""`dualwrite worker`: the stream processor (decode, dedupe, echo filter, table maps,
dependency gate) between the CDC topics and the sinks' command topics."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dualwrite.logs import configure as configure_logging
from dualwrite.logs import faust_logging_config
from dualwrite.settings import Settings
from streams.tuning import Tuning

if TYPE_CHECKING:
    from streams import StreamsConfig

app = typer.Typer(help="Run the stream processor (the batch engine, or the Faust agents).", add_completion=False)



class EngineName(StrEnum):
    batch = "batch"
    faust = "faust"


LogLevel = Annotated[str, typer.Option(help="Log level: debug, info, warning, error.")]


def build_config(settings: Settings, *, app_id: str, data_dir: Path | None,
                 topic_prefix: str = "", session_timeout_s: float = 30.0,
                 stall_timeout_s: float = 30.0, instance_id: str | None = None,
                 topics_wait_s: float = 60.0, engine: str | None = None) -> StreamsConfig:
    """The worker's frozen config from the settings (Kafka, topic layout, state dir)."""
    from streams import StreamsConfig

    k = settings.kafka
    return StreamsConfig(
        bootstrap_servers=k.bootstrap_servers, broker_credentials=k.faust_credentials(),
        librdkafka=k.librdkafka(),
        app_id=app_id,
        data_dir=data_dir or settings.state_dir / app_id,
        partitions=settings.topics.partitions, replication=settings.topics.replication,
        topic_prefix=topic_prefix, metrics_port=settings.metrics_port,
        session_timeout_s=session_timeout_s, stall_timeout_s=stall_timeout_s,
        instance_id=instance_id, topics_wait_s=topics_wait_s,
        **{**settings.processor.model_dump(include=set(Tuning.model_fields)),
           **({"engine": engine} if engine else {})},
    )


@app.callback(invoke_without_command=True)
def worker(
    data_dir: Annotated[Path | None, typer.Option(
        help="Where the RocksDB tables live (default: <state_dir>/<app id>).")] = None,
    app_id: Annotated[str, typer.Option(
        help="Consumer group and prefix of internal and changelog topics.")] = "dualwrite-streams",
    log_level: LogLevel = "info",
    session_timeout: Annotated[float, typer.Option(
        help="Seconds after which a crashed worker's partitions move to the others.")] = 30.0,
    stall_timeout: Annotated[float, typer.Option(
        help="Exit with 75 (for the supervisor to restart) when the worker is stuck this long: the "
        "batch engine's loop made no turn (a Kafka call that does not return after a broker is "
        "lost), or the Faust agents' gate handled nothing or their offsets stood still.")] = 30.0,
    instance_id: Annotated[str | None, typer.Option(
        help="A stable name for this worker, unique in the group (e.g. its host name): restarted "
        "under it, the worker takes its partitions back at once instead of after the session "
        "timeout (static membership). A worker stopped for good then holds its partitions until "
        "the session timeout. The member id adds a digest of the topics the worker reads, so a "
        "worker restarted with other maps gets a fresh assignment.")] = None,
    topics_wait: Annotated[float, typer.Option(
        help="Seconds to wait at start for the catalog topics the worker reads and writes "
        "(`dualwrite topics apply` creates them); then exit with 78 naming the missing ones.")] = 60.0,
    engine: Annotated[EngineName | None, typer.Option(
        help="faust (the Faust agents) or batch (one loop over batches, a Kafka transaction each, "
        "no hop for a gate key this worker owns); default DUALWRITE_PROCESSOR__ENGINE, else faust.")] = None,
    topic_prefix: Annotated[str, typer.Option(
        help="Prefix of every catalog topic name (isolated test runs).", hidden=True)] = "",
) -> None:
    """Run the stream processor until SIGTERM or Ctrl-C.

    Reads the CDC topics of every table map, sync.applied.* and sync.control; writes
    sync.commands.<target> and sync.dlq. Kafka and topic layout come from DUALWRITE_* settings.
    """
    from dualwrite.capture import map_registry
    from streams import run_worker

    settings = Settings()
    configure_logging(settings.log_format, log_level)
    config = build_config(settings, app_id=app_id, data_dir=data_dir, topic_prefix=topic_prefix,
                          session_timeout_s=session_timeout, stall_timeout_s=stall_timeout,
                          instance_id=instance_id, topics_wait_s=topics_wait,
                          engine=engine.value if engine else None)
    run_worker(config, loglevel=log_level, maps=map_registry(settings),
               logging_config=faust_logging_config(settings.log_format, log_level))


if __name__ == "__main__":
    app()
