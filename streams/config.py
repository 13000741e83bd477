"""The worker's configuration: a frozen model, built by the CLI from `dualwrite.settings`.

Kafka security arrives already translated (Faust credentials), so the worker and the status
tools never interpret security settings themselves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types.auth import CredentialsT
from pydantic import ConfigDict, Field, SecretStr

from streams.tuning import Tuning

__all__ = ["StreamsConfig"]


class StreamsConfig(Tuning):
    """Everything `create_app` needs; each setting documents itself (the tuned decisions,
    ``tx_timeout_ms`` and the like, are `streams.tuning.Tuning`'s)."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    broker_credentials: CredentialsT | None = Field(
        None, description="SASL/TLS credentials, built by the CLI's one translation of the Kafka "
        "settings (`dualwrite.settings.KafkaSettings.faust_credentials`); None for PLAINTEXT.")
    librdkafka: dict[str, Any] = Field(
        default_factory=dict, description="The same security as librdkafka settings, secrets as "
        "`SecretStr` (`dualwrite.settings.KafkaSettings.librdkafka`), for the batch engine's clients.")
    app_id: str = Field("dualwrite-streams", description="Consumer group and prefix of internal topics.")
    store: str = Field("rocksdb://", description="Table store; memory:// only in unit tests.")
    data_dir: Path = Field(Path("state"), description="Where RocksDB tables live.")
    partitions: int = Field(3, ge=1, description="Partitions of every keyed topic (the catalog's).")
    replication: int = Field(1, ge=1, description="Replication of internal and changelog topics.")
    topic_prefix: str = Field("", description="Prefix of every catalog topic name (test isolation).")
    tick_interval_s: float = Field(2.0, gt=0, description="How often transaction timeouts are checked.")
    session_timeout_s: float = Field(
        30.0, gt=3, description="A worker killed without leaving the group is replaced after this.")
    instance_id: str | None = Field(
        None, description="Static group membership (Kafka KIP-345): a worker restarted under the "
        "same id takes its partitions back at once, not after the session timeout. One per worker; "
        "None: dynamic membership.")
    stall_timeout_s: float = Field(
        30.0, gt=0, description="Exit (for the supervisor to restart) when the gate handles "
        "nothing, not even its own ticks, for this long outside a rebalance.")
    metrics_port: int | None = Field(None, description="Expose Prometheus metrics on this port.")
    topics_wait_s: float = Field(
        60.0, ge=0, description="How long the worker waits at start for the catalog topics it reads and writes to exist "
        "(`dualwrite topics apply` creates them) before it exits with 78 naming the missing ones: a "
        "topic missing when the group assigns partitions would never be read.")

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def bootstrap_list(self) -> list[str]:
        return [h.strip() for h in self.bootstrap_servers.split(",") if h.strip()]

    def broker_urls(self) -> list[str]:
        return [f"kafka://{h}" for h in self.bootstrap_list()]

    def kafka_client(self) -> dict[str, Any]:
        """`librdkafka` with its secrets revealed: hand it to a client at once, never to a log."""
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self.librdkafka.items()}

    def aiokafka_auth(self) -> dict[str, Any]:
        """aiokafka's security arguments for `broker_credentials`, by the very mapping Faust's
        driver applies for the worker, so a tool reads Kafka exactly as the worker does."""
        return dict(credentials_to_aiokafka_auth(self.broker_credentials))
