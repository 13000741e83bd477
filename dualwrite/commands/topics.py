"""`dualwrite topics apply [--check]`, `schema`, `tail` and `client-properties`.

``schema`` reads the column types of each captured table from the configured APIs' own
``$metadata`` (`topics.table_schema`), so a real deployment documents its real columns; an API
that cannot be read is one line and exit 2, and ``--offline`` prints the envelope-only schemas
without asking any API. ``tail`` prints a topic's records as JSON lines, on confluent-kafka with
the deployment's Kafka settings (TLS/SASL); it joins no consumer group and commits nothing.
``client-properties`` writes those settings for Kafka's Java clients (`dualwrite.kafka.properties`),
so the console consumer, Flink, ksqlDB or Kafka Connect read the topics of a TLS/SASL cluster.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)
from rich.console import Console
from rich.markup import escape

from connectors.common.kafka import KafkaConfig
from dualwrite.capture import cdc_tables, topic_catalog
from dualwrite.commands.connectors import kafka_config
from dualwrite.commands.opscli import TimeoutOpt, expected_failures
from dualwrite.kafka.properties import write_properties
from dualwrite.ops.kafka import describe, kafka_failure, quiet, reaching, require_topic
from dualwrite.settings import Settings
from topics import System, TopicSpec, apply_topics, cdc_topic, topic_schemas
from topics.schema import TableSchema
from topics.table_schema import EntityShape, MetadataError, parse_csdl

app = typer.Typer(help="Create, verify, document and read the topic catalog.", no_args_is_help=True)
console = Console(stderr=True)

TOPIC_PATTERNS = ("dataverse.cdc.<entity set>, finance.cdc.<collection>, sync.commands.<target>, "
                  "sync.applied.<target>, sync.dlq, sync.control, sync.source-offsets")


def settings_catalog(settings: Settings) -> list[TopicSpec]:
    return topic_catalog(settings)


def _fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


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
        raise _fail(str(failure)) from None
    for name in report.created:
        console.print(f"created {name}")
    for drift in report.drifts:
        console.print(f"[red]drift[/red] {drift}")
    console.print(f"{len(report.created)} created, {len(report.present)} present, "
                  f"{len(report.drifts)} drift(s)")
    if report.drifts:
        raise typer.Exit(1)


# -- schema --------------------------------------------------------------------------------------

class MetadataUnavailable(Exception):
    """An API's ``$metadata`` could not be read: one line saying which and why."""


def read_metadata(settings: Settings, systems: set[System]) -> dict[System, dict[str, EntityShape]]:
    """Each system's entity sets, from its API's ``$metadata`` (sink identity, like reconcile)."""
    from dualwrite.apiclient import ApiError, checked_request
    from dualwrite.reconcile import api_sessions

    sessions = api_sessions(settings)
    out: dict[System, dict[str, EntityShape]] = {}
    try:
        for system in sorted(systems):
            session = sessions[system]
            where = f"{system} $metadata at {session.api_url}/$metadata"
            try:
                response = checked_request(session, system, "GET", "$metadata",
                                           headers={"Accept": "application/xml"})
            except ApiError as exc:
                raise MetadataUnavailable(str(exc)) from None
            if response.status_code != 200:
                raise MetadataUnavailable(f"{where} answered HTTP {response.status_code}")
            try:
                out[system] = parse_csdl(response.content)
            except MetadataError as exc:
                raise MetadataUnavailable(f"{where}: {exc}") from None
    finally:
        for session in sessions.values():
            session.close()
    return out


def _entity(shapes: dict[str, EntityShape], table: str) -> EntityShape | None:
    """The table's entity set: by its exact name, else ignoring case (Finance's collection names
    are case-insensitive in URLs)."""
    if table in shapes:
        return shapes[table]
    lowered = {name.lower(): shape for name, shape in shapes.items()}
    return lowered.get(table.lower())


@app.command()
def schema(
    topic: Annotated[str | None, typer.Argument(help="Only this topic.")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="Ask no API: CDC topics get the envelope only (before/after as any "
                          "object). Without it the column types come from each API's $metadata "
                          "and an API that cannot be read exits 2.")] = False,
) -> None:
    """Print each topic's key and value JSON Schema (for Flink, ClickHouse, ksqlDB users).

    A CDC topic's before/after list its table's columns with their JSON types and nullability,
    read from the source API's $metadata; its key names the key fields; a null value is the
    tombstone after a delete. Command and ack topics are keyed by the target record key."""
    settings = Settings()
    specs = settings_catalog(settings)
    if topic is not None:
        specs = [s for s in specs if s.name == topic]
        if not specs:
            raise _fail(f"unknown topic {topic!r}; the catalog's topics are {TOPIC_PATTERNS} "
                        "(`dualwrite topics schema` lists them)")
    names = {s.name for s in specs}
    wanted = {cdc_topic(system, table): (system, table) for system, table in cdc_tables(settings)
              if cdc_topic(system, table) in names}
    tables: dict[str, TableSchema] = {}
    if wanted and not offline:
        try:
            shapes = read_metadata(settings, {system for system, _ in wanted.values()})
        except MetadataUnavailable as exc:
            raise _fail(f"{exc}; `--offline` prints the schemas without column types") from None
        for name, (system, table) in wanted.items():
            shape = _entity(shapes[system], table)
            if shape is None:
                console.print(f"[yellow]warning:[/yellow] {system} $metadata declares no entity set "
                              f"{escape(table)}: {name} is described without its columns",
                              highlight=False, soft_wrap=True)
                continue
            tables[name] = TableSchema(system, shape.entity_set, shape)
    typer.echo(orjson.dumps(topic_schemas(specs, tables), option=orjson.OPT_INDENT_2).decode())


# -- tail ----------------------------------------------------------------------------------------

def _decoded(data: str | bytes | None, json: bool) -> Any:
    """JSON where the bytes are JSON (and ``json``), else the text (bad UTF-8 replaced)."""
    if data is None or isinstance(data, str):
        return data
    if json:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return data.decode("utf-8", "replace")


def record_json(msg: Message, spec: TopicSpec) -> dict[str, Any]:
    """One record for printing: where it sits, its key and value (JSON where the topic's are),
    and its headers as [name, value] pairs (a name may repeat)."""
    kind, ts = msg.timestamp()
    headers = msg.headers() or []  # a consumed record's are a list of (name, value) pairs
    pairs = headers.items() if isinstance(headers, dict) else headers
    return {"partition": msg.partition(), "offset": msg.offset(),
            "timestamp_ms": ts if kind else None,
            "key": _decoded(msg.key(), spec.key_model is not None),
            "value": _decoded(msg.value(), True),
            "headers": [[name, _decoded(value, False)] for name, value in pairs]}


def key_matches(msg: Message, spec: TopicSpec, wanted: str) -> bool:
    """The record's key as text, or on a JSON-keyed topic its ``id`` (a CDC row id), is ``wanted``."""
    raw = msg.key()
    if raw is None:
        return False
    if raw.decode("utf-8", "replace") == wanted:
        return True
    decoded = _decoded(raw, spec.key_model is not None)
    return isinstance(decoded, dict) and str(decoded.get("id")) == wanted


@contextmanager
def ctrl_c() -> Iterator[threading.Event]:
    """An event set by Ctrl-C (SIGINT) while the block runs, instead of a KeyboardInterrupt.

    confluent-kafka 2.16's poll checks for signals between slices of its wait, and a full run
    saw a tail still polling 30 s after SIGINT, its KeyboardInterrupt gone: a handler that only
    sets a flag cannot be lost that way, and the loop reads the flag between polls."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def follow(config: KafkaConfig, spec: TopicSpec, *, from_beginning: bool,
           idle_s: float | None, timeout: float = 15.0,
           stop: threading.Event | None = None) -> Generator[Message, None, None]:
    """The topic's records as they arrive (every partition; from its start or its end), until
    ``idle_s`` pass without one or ``stop`` is set. Joins no group and commits nothing."""
    consumer = Consumer({**config.base(), "group.id": f"dualwrite-tail-{uuid.uuid4()}",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        with reaching(config):
            partitions = consumer.list_topics(spec.name, timeout=timeout).topics[spec.name].partitions
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            consumer.assign([TopicPartition(spec.name, p, start) for p in sorted(partitions)])
            last = time.monotonic()
            while (stop is None or not stop.is_set()) and (idle_s is None or time.monotonic() - last < idle_s):
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                if msg.error():
                    raise KafkaException(msg.error())
                last = time.monotonic()
                yield msg
    finally:
        consumer.close()


@app.command("client-properties")
def client_properties(
    out: Annotated[Path, typer.Option(
        "--out", help="The file to write (created readable by its owner only; replaced if it exists).",
        dir_okay=False)],
) -> None:
    """Write the deployment's Kafka settings (DUALWRITE_KAFKA__*) as a Java client properties
    file, for the tools that read the topics: Kafka's console consumer (--consumer.config FILE),
    Flink SQL (each line as a 'properties.<name>' table option), ksqlDB, Kafka Connect. It holds
    the SASL password when there is one: keep it as you keep that password."""
    settings = Settings()
    try:
        props = settings.kafka.java_client()
    except OSError as exc:  # the client certificate or key named by the settings
        raise _fail(f"cannot read {exc.filename}: {exc.strerror}; check DUALWRITE_KAFKA__SSL_CERTFILE "
                    "and DUALWRITE_KAFKA__SSL_KEYFILE") from None
    try:
        write_properties(out, props)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc.strerror}; choose another --out") from None
    console.print(f"wrote {len(props)} Kafka client settings for {settings.kafka.security_protocol} "
                  f"to {out} (0600)", highlight=False, soft_wrap=True)
    console.print(f"read a topic: kafka-console-consumer.sh --bootstrap-server "
                  f"{settings.kafka.bootstrap_servers} --consumer.config {out} --topic TOPIC --from-beginning",
                  highlight=False, soft_wrap=True)


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="A topic of the catalog.")],
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Start at each partition's first record (default: only new ones).")] = False,
    max_records: Annotated[int | None, typer.Option(
        "--max", min=1, help="Stop after printing this many records.")] = None,
    key: Annotated[str | None, typer.Option(
        "--key", help="Only records with this key: the key as text, or a CDC row's id.")] = None,
    idle: Annotated[float | None, typer.Option(
        "--idle", min=0.1, help="Stop after this many seconds without a record (default: never).")] = None,
    timeout: TimeoutOpt = 15.0,
) -> None:
    """Print a topic's records as they arrive, one JSON line each: partition, offset,
    timestamp, key, value (JSON; text where it is not) and headers. Ctrl-C ends it."""
    settings = Settings()
    spec = next((s for s in settings_catalog(settings) if s.name == topic), None)
    if spec is None:
        raise _fail(f"unknown topic {topic!r}; the catalog's topics are {TOPIC_PATTERNS}")
    kafka = quiet(kafka_config(settings))
    printed = 0
    with expected_failures():
        require_topic(kafka, topic, timeout=timeout)
        try:
            with ctrl_c() as stop, closing(follow(kafka, spec, from_beginning=from_beginning, idle_s=idle,
                                                  timeout=timeout, stop=stop)) as records:
                for msg in records:
                    if key is not None and not key_matches(msg, spec, key):
                        continue
                    sys.stdout.write(orjson.dumps(record_json(msg, spec)).decode() + "\n")
                    sys.stdout.flush()
                    printed += 1
                    if max_records is not None and printed >= max_records:
                        break
        except KeyboardInterrupt:
            pass  # Ctrl-C before the handler was in place: `follow` closed its consumer, the end
        except BrokenPipeError:
            # `| head` has what it wanted; point stdout at /dev/null so the exit flush is quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
