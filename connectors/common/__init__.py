"""Shared machinery of the connectors: auth, HTTP outcomes, AIMD, $batch, Kafka, engines."""

from connectors.common.aimd import AIMDLimiter
from connectors.common.auth import BearerAuth, ClientCredentials, TokenProvider
from connectors.common.clock import Clock, FakeClock, SystemClock
from connectors.common.errors import (
    AuthFailed,
    ConnectorError,
    PositionExpired,
    Rejected,
    RetryLater,
)
from connectors.common.http import ApiClient, HttpConfig
from connectors.common.kafka import AsyncProducer, KafkaConfig
from connectors.common.sink import DlqFlood, SinkEngine, SinkSettings
from connectors.common.source import SourceEngine, SourceSettings

__all__ = [
    "AIMDLimiter",
    "ApiClient",
    "AsyncProducer",
    "AuthFailed",
    "BearerAuth",
    "ClientCredentials",
    "Clock",
    "ConnectorError",
    "DlqFlood",
    "FakeClock",
    "HttpConfig",
    "KafkaConfig",
    "PositionExpired",
    "Rejected",
    "RetryLater",
    "SinkEngine",
    "SinkSettings",
    "SourceEngine",
    "SourceSettings",
    "SystemClock",
    "TokenProvider",
]
