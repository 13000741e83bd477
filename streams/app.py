"""The Faust application: topics bound to the catalog, tables, and the agents.

    create_app(config) -> faust.App

Topics read: ``<system>.cdc.<table>`` of every table a map reads, indexes or writes;
``sync.applied.<target>``; ``sync.control``. Topics written: ``sync.commands.<target>``,
``sync.dlq``, and the internal ``<app id>-gate`` topic that every piece of gate state goes
through (see `streams.wire`). Tables (Faust changelogged, RocksDB in deployments):

    versions  source record -> last seen version (+ offset)        updated by `ingest`
    facts     fact key -> lookup row / mapped key / presence          updated by `gate`
    targets   target record key -> what we wrote / what it holds      updated by `gate`
    parked    gate key -> slot; its chunks of changes: `streams.gate` updated by `gate`
    pairs     two-way record pair -> per-field last changes           updated by `gate`
    states    "<map>@<partition>" -> running | paused                 updated by `gate`

At-least-once: offsets are committed after the producer is flushed; no exactly_once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import faust
from confluent_kafka import KafkaException

from streams.config import StreamsConfig
from streams.declare import (
    TopicsNotReady,
    await_catalog_topics,
    catalog_topics,
    declare_internal_topics,
    internal_topics,
)
from streams.lineage import written_by_batch
from streams.maps.registry import MapRegistry, default_registry
from streams.transport import Transport
from streams.tuning import DEFAULT_FETCH_MAX_WAIT_MS
from streams.watchdog import EXIT_STALLED
from streams.wire import encode_gate
from topics import applied_topic, cdc_topic, commands_topic
from topics.partitioner import KeyPartitioner

__all__ = ["Runtime", "StreamsApp", "create_app"]

log = logging.getLogger(__name__)

EXIT_CONFIG = 78  # EX_CONFIG: the cluster is not as the worker needs it

TABLES = ("versions", "facts", "targets", "parked", "pairs", "states")


class StreamsApp(faust.App):
    """A Faust app that carries its runtime (topics, tables, maps)."""

    runtime: Runtime
    fetch_max_wait_ms: int = DEFAULT_FETCH_MAX_WAIT_MS  # read by `streams.transport`

    def _new_transport(self) -> Transport:
        """Faust's aiokafka transport with the worker's fetch wait (`streams.transport`)."""
        return Transport(self.conf.broker_consumer, self)

    async def on_first_start(self) -> None:
        """Before any child service (the consumer joining its group among them) starts: the
        worker's own topics exist and the metadata lists them, and so do the catalog topics it
        reads and writes (`streams.declare`)."""
        await super().on_first_start()
        await self.check_topics()

    async def check_topics(self) -> None:
        """Declare the worker's own topics and wait for the catalog's (either engine, before it
        joins its group); exit 78 naming what is missing or sized otherwise, or, for the Faust
        agents, when the batch engine committed the group's offsets (`streams.lineage`)."""
        config = self.runtime.config
        try:
            await declare_internal_topics(internal_topics(self), auth=config.aiokafka_auth(),
                                          bootstrap_servers=config.bootstrap_list())
            await await_catalog_topics(catalog_topics(self), auth=config.aiokafka_auth(),
                                    bootstrap_servers=config.bootstrap_list(),
                                    timeout_s=config.topics_wait_s)
        except TopicsNotReady as exc:
            _refuse(str(exc))
        if config.engine != "faust":
            return
        try:
            batch = await asyncio.to_thread(
                written_by_batch, {**config.kafka_client(), "bootstrap.servers": config.bootstrap_servers},
                config.app_id, read_topics(self))
        except KafkaException as exc:  # the coordinator not there yet: the supervisor starts it again
            _refuse(f"could not read group {config.app_id}'s committed offsets ({exc}); try again",
                    EXIT_STALLED)
        if batch:
            _refuse(f"group {config.app_id} was committed by the batch engine, whose gate state the "
                    "Faust agents cannot read (a parked change could be skipped). Start the worker "
                    "with --engine batch, or with a new --app-id (fresh state, from the topics).")


def read_topics(app: StreamsApp) -> list[str]:
    """Every topic the worker's group consumes: the CDC topics of its maps, the acks, control
    and the gate."""
    rt = app.runtime
    return sorted({*rt.topic("cdc").topics, *rt.topic("applied").topics, *rt.topic("control").topics,
                   rt.gate_topic_name})


def _refuse(reason: str, code: int = EXIT_CONFIG) -> NoReturn:
    log.critical("dualwrite worker: %s", reason)
    logging.shutdown()
    os._exit(code)


@dataclass
class Runtime:
    config: StreamsConfig
    maps: MapRegistry
    app: StreamsApp
    cdc_tables: dict[str, tuple[str, str]] = field(default_factory=dict)
    topics: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    topic_names: dict[str, str] = field(default_factory=dict)  # for `send`: single-topic ones

    def topic(self, name: str) -> Any:
        return self.topics[name]

    def table(self, name: str) -> Any:
        return self.tables[name]

    async def send(self, name: str, key: bytes | None, value: bytes | None, *,
                   partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        """Hand a record to the producer for one of the worker's own topics (``gate``,
        ``commands.<target>``, ``dlq``, ``control``), partitioned by its key like Faust's
        ``Topic.send``, without Faust's per-send message objects, callbacks and sensors
        (nothing reads them: offsets are committed after the producer is flushed)."""
        sent = await self.app.producer.send(self.topic_names[name], key, value, partition, None, headers)
        sent.add_done_callback(exit_if_lost)  # type: ignore[attr-defined]
        # Give the loop a turn, as Faust's send did: the producer's sender and the other agents
        # run between records. Without it an agent ran through all it had fetched first, and in
        # `dualwrite bench` P3 at 200 changes/s the p50 went from 0.7 s to 5-8 s.
        await asyncio.sleep(0)

    async def send_gate(self, key: str, msg: Any, partition: int | None = None) -> None:
        """A gate message, encoded, to the gate topic (`streams.wire`)."""
        await self.send("gate", key.encode(), encode_gate(msg), partition=partition)

    @property
    def gate_topic_name(self) -> str:
        return f"{self.config.app_id}-gate"


def exit_if_lost(sent: asyncio.Future[Any]) -> None:
    """A record the producer gave up on (after its retries) would be lost once a later offset is
    committed: exit for the supervisor to restart the worker from the committed offsets, so the
    record is made again (`streams.watchdog.EXIT_STALLED`). Cancelled at shutdown: nothing."""
    if sent.cancelled() or sent.exception() is None:
        return
    log.critical("dualwrite worker: Kafka did not take a record (%s); exiting to re-read from the "
                 "committed offsets", sent.exception())
    logging.shutdown()
    os._exit(EXIT_STALLED)


def _raw_topic(app: StreamsApp, *names: str, **kwargs: Any) -> Any:
    return app.topic(*names, key_serializer="raw", value_serializer="raw", **kwargs)


def group_instance_id(instance_id: str | None, topics: Iterable[str]) -> str | None:
    """The static member id (KIP-345) the worker joins under: its ``--instance-id`` and a digest
    of the topics it reads. A static member restarted under the same id gets its group's cached
    assignment back without a rebalance, even when it now reads more topics: a worker restarted
    with a map added would never be given the new map's CDC topics. Under a new id it joins as a
    new member (a rebalance, once its predecessor's session has timed out); unchanged, it keeps
    taking its partitions back at once."""
    if instance_id is None:
        return None
    digest = hashlib.sha256("\n".join(sorted(set(topics))).encode()).hexdigest()[:8]
    return f"{instance_id}-{digest}"


def create_app(config: StreamsConfig, maps: MapRegistry | None = None) -> StreamsApp:
    """Build the app; run it with `streams.runner.run_worker` (or ``app.main()``)."""
    registry = maps or default_registry()
    cdc = {config.topic(cdc_topic(system, table)): (system, table)  # type: ignore[arg-type]
           for system, table in registry.cdc_tables()}
    applied = [config.topic(applied_topic("finance")), config.topic(applied_topic("dataverse"))]
    control = config.topic("sync.control")
    app = StreamsApp(
        config.app_id,
        broker=config.broker_urls(),
        broker_credentials=config.broker_credentials,
        store=config.store,
        datadir=str(config.data_dir),
        topic_partitions=config.partitions,
        topic_replication_factor=config.replication,
        processing_guarantee="at_least_once",
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=config.session_timeout_s,
        consumer_group_instance_id=group_instance_id(config.instance_id, [*cdc, *applied, control]),
        producer_linger_ms=config.producer_linger_ms,
        producer_partitioner=KeyPartitioner(),  # murmur2, as aiokafka's: the same partitions, faster
    )
    app.fetch_max_wait_ms = config.fetch_max_wait_ms
    rt = Runtime(config=config, maps=registry, app=app, cdc_tables=cdc)
    rt.topics["cdc"] = _raw_topic(app, *rt.cdc_tables)
    rt.topics["applied"] = _raw_topic(app, *applied)
    rt.topics["control"] = _raw_topic(app, control)
    rt.topics["dlq"] = _raw_topic(app, config.topic("sync.dlq"))
    for target in ("finance", "dataverse"):
        rt.topics[f"commands.{target}"] = _raw_topic(app, config.topic(commands_topic(target)))
    rt.topics["gate"] = _raw_topic(app, rt.gate_topic_name, internal=True,
                                   partitions=config.partitions)
    rt.topic_names.update({name: topic.get_topic_name() for name, topic in rt.topics.items()
                           if len(topic.topics) == 1})
    for name in TABLES:
        rt.tables[name] = app.Table(name, default=None, partitions=config.partitions,
                                    key_type=str)
    app.runtime = rt

    from streams.agents import register_agents

    register_agents(rt)
    return app
