"""One settings model for every command.

Environment variables with the ``DUALWRITE_`` prefix and ``__`` nesting, or a ``.env`` file:
``DUALWRITE_KAFKA__BOOTSTRAP_SERVERS=broker:9092``,
``DUALWRITE_DATAVERSE__CLIENT_SECRET=...``. Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ApiSettings", "DataverseSettings", "FinanceSettings", "KafkaSettings", "LocalKafkaSettings", "Settings", "TopicSettings"]

STATE_HOME = Path.home() / ".local" / "share" / "dualwrite"


class KafkaSettings(BaseModel):
    """How every process reaches the Kafka cluster."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")

    def client_config(self) -> dict[str, str]:
        """librdkafka (confluent-kafka) configuration for these settings."""
        cfg = {"bootstrap.servers": self.bootstrap_servers,
               "security.protocol": self.security_protocol}
        if self.sasl_mechanism:
            cfg["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            cfg["sasl.username"] = self.sasl_username
        if self.sasl_password:
            cfg["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_cafile:
            cfg["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile:
            cfg["ssl.certificate.location"] = str(self.ssl_certfile)
        if self.ssl_keyfile:
            cfg["ssl.key.location"] = str(self.ssl_keyfile)
        return cfg


class LocalKafkaSettings(BaseModel):
    """The single-node broker started by ``dualwrite kafka up``."""

    port: int = Field(9092, ge=1, le=65535, description="Client listener port on 127.0.0.1.")
    controller_port: int | None = Field(None, description="KRaft controller port (default port+1).")
    data_dir: Path = Field(STATE_HOME / "kafka", description="Log dirs, pid file and broker log.")
    heap: str = Field("768m", description="Broker JVM heap (-Xmx).")


class TopicSettings(BaseModel):
    """Layout of the topic catalog."""

    partitions: int = Field(3, ge=1, description="Partitions of every keyed topic.")
    replication: int = Field(1, ge=1, description="Replication factor (3 in production).")
    cdc_retention_days: int = Field(14, ge=1, description="Retention of CDC/command topics (replay horizon).")
    dlq_retention_days: int = Field(30, ge=1, description="Retention of sync.dlq.")


class ProcessorSettings(BaseModel):
    """Decisions of the stream processor (`dualwrite worker`)."""

    tx_timeout_ms: int = Field(10_000, ge=0, description="Release a source transaction whose events "
                               "did not all arrive after this long (members go as far as they got).")
    conflict_window_ms: int = Field(5_000, ge=0, description="Edits of a two-way field on both "
                                    "sides closer than this are a conflict (the map's master wins).")
    pause_after_rejections: int = Field(100, ge=0, description="Pause a map (on sync.control, "
                                        "resumed with `dualwrite maps resume`) after this many of its "
                                        "changes failed to transform in a row; 0 never pauses.")
    producer_linger_ms: int = Field(10, ge=0, description="How long the worker's producer gathers "
                                    "sends into one request (throughput against per-hop latency).")


class ApiSettings(BaseModel):
    """One target API reached with OAuth2 client credentials."""

    url: str = Field(..., description="Service root, e.g. https://org.crm.dynamics.com.")
    token_url: str = Field(..., description="OAuth2 token endpoint (Microsoft identity platform).")
    # The default secret only opens the local emulators started by `dualwrite demo`.
    client_id: str = Field("dualwrite", description="OAuth2 client (application) id.")
    client_secret: SecretStr = Field(SecretStr("dualwrite-local-secret"), description="OAuth2 client secret.")
    scope: str | None = Field(None, description="OAuth2 scope (default <url>/.default).")


class DataverseSettings(ApiSettings):
    """The Dataverse Web API (default: the local emulator)."""

    url: str = Field("http://127.0.0.1:8081", description="Dataverse organization URL.")
    token_url: str = Field("http://127.0.0.1:8081/local/oauth2/v2.0/token",
                           description="OAuth2 token endpoint.")


class FinanceSettings(ApiSettings):
    """The Finance OData service (default: the local emulator)."""

    url: str = Field("http://127.0.0.1:8082", description="Finance environment URL.")
    token_url: str = Field("http://127.0.0.1:8082/local/oauth2/v2.0/token",
                           description="OAuth2 token endpoint.")
    company: str = Field("usmf", description="Default company (dataAreaId) of the integration user.")


class Settings(BaseSettings):
    """Everything the `dualwrite` commands read from the environment."""

    model_config = SettingsConfigDict(env_prefix="DUALWRITE_", env_nested_delimiter="__",
                                      env_file=".env", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    local_kafka: LocalKafkaSettings = Field(default_factory=LocalKafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    dataverse: DataverseSettings = Field(default_factory=DataverseSettings)
    finance: FinanceSettings = Field(default_factory=FinanceSettings)
    state_dir: Path = Field(STATE_HOME / "state", description="Local state (Faust RocksDB tables).")
    metrics_port: int | None = Field(None, description="Expose Prometheus metrics on this port.")
    log_format: Literal["console", "json"] = Field("console", description="Structured log renderer.")
