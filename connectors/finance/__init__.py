"""Finance connectors: change feed capture (source) and OData writes (sink)."""

from __future__ import annotations

import httpx

from connectors.common.clock import Clock
from connectors.common.images import ImageStore
from connectors.common.kafka import KafkaConfig
from connectors.common.sink import SinkEngine, SinkSettings
from connectors.common.source import SourceEngine, SourceSettings
from connectors.finance.client import FinanceConnection, build_api, entity_key, key_string
from connectors.finance.sink import FinanceWriter
from connectors.finance.source import FinanceReader

__all__ = [
    "FinanceConnection",
    "FinanceReader",
    "FinanceWriter",
    "entity_key",
    "finance_sink",
    "finance_source",
    "key_string",
]


def finance_source(conn: FinanceConnection, kafka: KafkaConfig, settings: SourceSettings,
                   transport: httpx.AsyncBaseTransport | None = None,
                   clock: Clock | None = None) -> SourceEngine:
    """A ready source engine: ``await engine.run(stop_event)``."""
    reader = FinanceReader(conn, build_api(conn, transport, clock), clock,
                           declared={d.name: d for d in settings.declared},
                           images=ImageStore(settings.images_path), captured=tuple(settings.tables))
    return SourceEngine(settings, kafka, reader, clock)


def finance_sink(conn: FinanceConnection, kafka: KafkaConfig, settings: SinkSettings,
                 transport: httpx.AsyncBaseTransport | None = None,
                 clock: Clock | None = None) -> SinkEngine:
    """A ready sink engine: ``await engine.run(stop_event)``."""
    writer = FinanceWriter(build_api(conn, transport, clock), conn.api_url, settings.batch_size)
    return SinkEngine(settings, kafka, writer, clock)
