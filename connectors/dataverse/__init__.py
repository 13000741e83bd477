"""Dataverse connectors: change capture (source) and Web API writes (sink)."""

from __future__ import annotations

import httpx

from connectors.common.clock import Clock
from connectors.common.images import ImageStore
from connectors.common.kafka import KafkaConfig
from connectors.common.sink import SinkEngine, SinkSettings
from connectors.common.source import SourceEngine, SourceSettings
from connectors.dataverse.client import DataverseConnection, build_api, entity_key, primary_key
from connectors.dataverse.sink import DataverseWriter
from connectors.dataverse.source import DataverseReader

__all__ = [
    "DataverseConnection",
    "DataverseReader",
    "DataverseWriter",
    "dataverse_sink",
    "dataverse_source",
    "entity_key",
    "primary_key",
]


def dataverse_source(conn: DataverseConnection, kafka: KafkaConfig, settings: SourceSettings,
                     transport: httpx.AsyncBaseTransport | None = None,
                     clock: Clock | None = None) -> SourceEngine:
    """A ready source engine: ``await engine.run(stop_event)``."""
    reader = DataverseReader(conn, build_api(conn, transport, clock), clock,
                             captured=tuple(settings.tables),
                             declared={d.name: d for d in settings.declared},
                             images=ImageStore(settings.images_path))
    return SourceEngine(settings, kafka, reader, clock)


def dataverse_sink(conn: DataverseConnection, kafka: KafkaConfig, settings: SinkSettings,
                   transport: httpx.AsyncBaseTransport | None = None,
                   clock: Clock | None = None) -> SinkEngine:
    """A ready sink engine: ``await engine.run(stop_event)``."""
    writer = DataverseWriter(build_api(conn, transport, clock), conn.api_url, settings.batch_size,
                             conn.primary_keys)
    return SinkEngine(settings, kafka, writer, clock)
