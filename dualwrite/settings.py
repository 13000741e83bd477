"""One settings model for every command.

Environment variables with the ``DUALWRITE_`` prefix and ``__`` nesting, or a ``.env`` file:
``DUALWRITE_KAFKA__BOOTSTRAP_SERVERS=broker:9092``,
``DUALWRITE_DATAVERSE__CLIENT_SECRET=...``. Secrets are ``SecretStr`` and never logged.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.common.pacing import DEFAULT_PACE, IDLE_BUDGET_RPS
from connectors.common.window import DEFAULT_LINGER_S
from streams.tuning import Tuning

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

__all__ = ["ApiSettings", "DataverseSettings", "FinanceSettings", "KafkaSettings", "LocalKafkaSettings",
           "Settings", "TopicSettings", "invalid_settings"]

STATE_HOME = Path.home() / ".local" / "share" / "dualwrite"
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# The JAAS login module of each mechanism, for Kafka's Java clients.
_LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                  "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                  "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}
KAFKA_ENV = "DUALWRITE_KAFKA__"


def _env(name: str) -> str:
    return f"{KAFKA_ENV}{name.upper()}"


class KafkaSettings(BaseModel):
    """How every process reaches the Kafka cluster, and the one translation of these settings
    into each client's terms: librdkafka (`librdkafka`: sources, sinks, admin and operations
    commands) and Faust (`faust_credentials`: the worker; the aiokafka status tools use Faust's
    own mapping of them, `streams.config.StreamsConfig.aiokafka_auth`). The clients disagree on defaults (without a mechanism
    librdkafka uses GSSAPI, Faust and aiokafka PLAIN), so nothing is left to a default here: an
    incomplete combination is refused at load with the variable to set."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol.")
    sasl_mechanism: str | None = Field(
        None, description="SASL mechanism when the protocol is SASL_*: PLAIN, SCRAM-SHA-256 or "
        "SCRAM-SHA-512 (GSSAPI and OAUTHBEARER are not supported).")
    sasl_username: str | None = Field(None, description="SASL user name.")
    sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    sasl_password_file: Path | None = Field(
        None, description="File holding the SASL password (instead of SASL_PASSWORD).")
    ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers.")
    ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS).")

    @field_validator("sasl_mechanism", mode="before")
    @classmethod
    def _supported_mechanism(cls, value: object) -> object:
        if value is None or value == "":
            return None
        name = str(value).strip().upper()
        if name not in SASL_MECHANISMS:
            raise ValueError(f"{name} is not supported; use one of {', '.join(SASL_MECHANISMS)}")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        protocol = self.security_protocol
        sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
        if self.sasl_password_file is not None:
            if self.sasl_password is not None:
                raise ValueError(f"set {_env('sasl_password')} or {_env('sasl_password_file')}, "
                                 "not both")
            self.password()  # readable now, or a clear error naming the setting
        if sasl:
            for name in ("sasl_mechanism", "sasl_username", "sasl_password"):
                if getattr(self, name) is None and not (name == "sasl_password"
                                                        and self.sasl_password_file):
                    raise ValueError(f"{_env(name)} must be set when {_env('security_protocol')} "
                                     f"is {protocol}")
        else:
            for name in ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{_env(name)} is set but {_env('security_protocol')} is "
                                     f"{protocol}; use SASL_SSL or SASL_PLAINTEXT")
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is None:
                continue
            if not tls:
                raise ValueError(f"{_env(name)} is set but {_env('security_protocol')} is "
                                 f"{protocol}; use SSL or SASL_SSL")
            if not path.is_file():
                raise ValueError(f"{_env(name)}: no such file {path}")
        if (self.ssl_keyfile is None) != (self.ssl_certfile is None):
            raise ValueError(f"{_env('ssl_certfile')} and {_env('ssl_keyfile')} go together "
                             "(mutual TLS)")
        return self

    def password(self) -> SecretStr | None:
        """The SASL password, from ``sasl_password`` or read from ``sasl_password_file`` (read
        each time a client is configured, so a rotated file is picked up by the next one)."""
        if self.sasl_password_file is None:
            return self.sasl_password
        try:
            return SecretStr(self.sasl_password_file.read_text().strip())
        except OSError as exc:
            raise ValueError(f"{_env('sasl_password_file')}: cannot read "
                             f"{self.sasl_password_file} ({exc.strerror})") from None

    def librdkafka(self) -> dict[str, str | SecretStr]:
        """The librdkafka (confluent-kafka) settings; the password stays a `SecretStr` until a
        client is built (`connectors.common.kafka.KafkaConfig.base`)."""
        cfg: dict[str, str | SecretStr] = {"security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL_"):
            password = self.password()
            assert self.sasl_mechanism and self.sasl_username and password
            cfg |= {"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                    "sasl.password": password}
        if self.ssl_cafile:
            cfg["ssl.ca.location"] = str(self.ssl_cafile)
        if self.ssl_certfile and self.ssl_keyfile:
            cfg["ssl.certificate.location"] = str(self.ssl_certfile)
            cfg["ssl.key.location"] = str(self.ssl_keyfile)
        return cfg

    def java_client(self) -> dict[str, str | SecretStr]:
        """The same settings in the terms of Kafka's Java clients, which analytics tools embed
        (Kafka's console consumer, Flink's Kafka connector, ksqlDB, Kafka Connect): the SASL
        user and password as a JAAS line, the CA bundle and a client certificate as PEM stores
        (the client key given inline: the Java clients take a PEM key file only combined with
        its certificate). Anything holding a secret stays a `SecretStr`
        (`dualwrite.kafka.properties` writes the file)."""
        cfg: dict[str, str | SecretStr] = {"bootstrap.servers": self.bootstrap_servers,
                                           "security.protocol": self.security_protocol}
        if self.security_protocol.startswith("SASL_"):
            password = self.password()
            assert self.sasl_mechanism and self.sasl_username and password
            cfg["sasl.mechanism"] = self.sasl_mechanism
            cfg["sasl.jaas.config"] = SecretStr(
                f"{_LOGIN_MODULES[self.sasl_mechanism]} required username={_jaas(self.sasl_username)} "
                f"password={_jaas(password.get_secret_value())};")
        if self.ssl_cafile:
            cfg |= {"ssl.truststore.type": "PEM", "ssl.truststore.location": str(self.ssl_cafile)}
        if self.ssl_certfile and self.ssl_keyfile:
            cfg |= {"ssl.keystore.type": "PEM",
                    "ssl.keystore.certificate.chain": self.ssl_certfile.read_text(),
                    "ssl.keystore.key": SecretStr(self.ssl_keyfile.read_text())}
        return cfg

    def client_config(self) -> dict[str, str]:
        """A complete librdkafka configuration, secrets revealed: hand it to a client at once
        (an `AdminClient`), never to a log."""
        return {"bootstrap.servers": self.bootstrap_servers,
                **{k: v.get_secret_value() if isinstance(v, SecretStr) else v
                   for k, v in self.librdkafka().items()}}

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of the Python clients (Faust, aiokafka); None without TLS."""
        if not self.security_protocol.endswith("SSL"):
            return None
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
        if self.ssl_certfile and self.ssl_keyfile:
            ctx.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile))
        return ctx

    def faust_credentials(self) -> CredentialsT | None:
        """Faust's ``broker_credentials`` (its aiokafka driver turns them into aiokafka's
        arguments, and so does `aiokafka`); None for PLAINTEXT."""
        import faust

        ctx = self.ssl_context()
        if self.security_protocol.startswith("SASL_"):
            password = self.password()
            assert password is not None
            return faust.SASLCredentials(username=self.sasl_username,
                                         password=password.get_secret_value(),
                                         ssl_context=ctx, mechanism=self.sasl_mechanism)
        return faust.SSLCredentials(ctx) if ctx is not None else None


def _jaas(value: str) -> str:
    """A JAAS option value: double-quoted, with backslashes and quotes escaped (Kafka's JAAS
    parser reads quoted strings as Java's StreamTokenizer does)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# The local broker's JVM: C1 only. On a small machine the broker shares its cores with the
# pipeline, and a fresh JVM's C2 compiler threads took 0.2 to 0.4 CPU-seconds of every 50,000
# records produced, still after four warm-up rounds (`dualwrite bench initial-sync`, 2 cores),
# where C1's took 0.02; the request threads' own CPU was the same, P1 did not move, and the
# broker is ready about 0.4 s sooner. A long-running broker under heavy load gains from C2:
# set ``jvm_options`` without ``-XX:TieredStopAtLevel=1``.
DEFAULT_BROKER_JVM_OPTIONS = "-XX:+UseG1GC -XX:TieredStopAtLevel=1"


class LocalKafkaSettings(BaseModel):
    """The single-node broker started by ``dualwrite kafka up``."""

    port: int = Field(9092, ge=1, le=65535, description="Client listener port on 127.0.0.1.")
    controller_port: int | None = Field(None, description="KRaft controller port (default port+1).")
    data_dir: Path = Field(STATE_HOME / "kafka", description="Log dirs, pid file and broker log.")
    heap: str = Field("768m", description="Broker JVM heap (-Xmx).")
    jvm_options: str = Field(DEFAULT_BROKER_JVM_OPTIONS, description=(
        "Broker JVM options besides the heap, space-separated (default: G1 and the C1 compiler "
        "only, which costs a broker sharing a small machine far less CPU while it warms up)."))


class TopicSettings(BaseModel):
    """Layout of the topic catalog."""

    partitions: int = Field(3, ge=1, description="Partitions of every keyed topic.")
    replication: int = Field(1, ge=1, description="Replication factor (3 in production).")
    cdc_retention_days: int = Field(14, ge=1, description="Retention of CDC/command topics (replay horizon).")
    dlq_retention_days: int = Field(30, ge=1, description="Retention of sync.dlq.")


class ProcessorSettings(Tuning):
    """Decisions of the stream processor (`dualwrite worker`); the ones it runs with are
    `streams.tuning.Tuning`'s."""

    max_parked_age_s: float = Field(300.0, ge=0, description="`dualwrite status` exits 1 when a "
                                    "change has been parked longer than this many seconds, naming "
                                    "what it waits for and the map that brings it (its "
                                    "--max-parked-age overrides it).")
    maps: str = Field("", description="The table maps as module:attribute (a MapRegistry, a "
                      "sequence of TableMap or a function returning one); empty: the built-in "
                      "maps. Every process reads it: the worker runs these maps, the sources "
                      "capture their tables, `topics apply` creates their CDC topics.")

    @field_validator("maps")
    @classmethod
    def _loadable(cls, value: str) -> str:
        """A registry that cannot be imported, or whose tables lack a declaration, is one line
        at start, not a traceback in one of the processes."""
        if value:
            from streams.maps import load_registry

            registry = load_registry(value)  # RegistryError is a ValueError: one settings line
            registry.captured("dataverse")
        return value


class ApiSettings(BaseModel):
    """One target API reached with OAuth2 client credentials."""

    url: str = Field(..., description="Service root, e.g. https://org.crm.dynamics.com.")
    token_url: str = Field(..., description="OAuth2 token endpoint (Microsoft identity platform).")
    # The default secret only opens the local emulators started by `dualwrite demo`.
    client_id: str = Field("dualwrite", description="OAuth2 client (application) id.")
    client_secret: SecretStr = Field(SecretStr("dualwrite-local-secret"), description="OAuth2 client secret.")
    scope: str | None = Field(None, description="OAuth2 scope (default <url>/.default).")
    # Sources poll all the time and sinks write in bursts: separate identities give each its
    # own service-protection budget (counted per user) and their own audit trail.
    source_client_id: str = Field("dualwrite-source", description="OAuth2 client id of the source "
                                  "(change capture); the sink uses CLIENT_ID.")
    source_client_secret: SecretStr | None = Field(
        None, description="OAuth2 client secret of the source (default: CLIENT_SECRET).")
    extra_tables: str = Field("", description="Comma-separated tables to capture that no map "
                              "reads (for other consumers of the CDC topics); a Dataverse one as "
                              "entityset:primarykeycolumn.")
    poll_interval_s: float = Field(DEFAULT_PACE.active_s, gt=0, description="Source: wait between "
                                   "polls of a table that changed recently.")
    poll_idle_max_s: float = Field(DEFAULT_PACE.idle_max_s, gt=0, description="Source: longest wait "
                                   "between polls of an idle table (the wait doubles up to it).")
    poll_hot_s: float = Field(DEFAULT_PACE.hot_s, ge=0, description="Source: a table is polled at "
                              "POLL_INTERVAL_S for this long after its last change.")
    poll_idle_budget_rps: float = Field(IDLE_BUDGET_RPS, gt=0, description="Source: requests per "
                                        "second all idle tables together may cost (the idle wait "
                                        "grows with the number of tables to stay within it).")
    sink_tx_wait_s: float = Field(30.0, ge=0, description="Sink: how long to hold the members of "
                                  "a source transaction while others have not come (past it they go "
                                  "as far as they got; a member parked in the processor holds them "
                                  "until it comes).")
    sink_linger_s: float = Field(DEFAULT_LINGER_S, ge=0, description="Sink: after a window's "
                                 "first command, wait this long for more to write with it "
                                 "(updates of one record coalesce; longer saves requests at low "
                                 "rates, shorter saves latency).")

    def extra(self) -> list[tuple[str, str | None]]:
        """`extra_tables` as (table, declared primary key or None)."""
        out: list[tuple[str, str | None]] = []
        for item in self.extra_tables.split(","):
            name, _, key = item.strip().partition(":")
            if name.strip():
                out.append((name.strip(), key.strip() or None))
        return out


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
    log_format: Literal["console", "json"] = Field("console", description=(
        "How the worker, sources and sinks log on stderr: console (a line a person reads) or json "
        "(one object a line: ts, level, logger, message, exc, and a call's extra fields)."))


_EXPECTED = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "path_type": "a file path", "string_type": "a string",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}


def invalid_settings(exc: ValidationError) -> list[str]:
    """One line per invalid setting of `Settings`: the environment variable and what it
    expects, e.g. ``DUALWRITE_TOPICS__PARTITIONS: expected an integer, got 'abc'``. The value
    is echoed only for plain fields (never for a secret, nor for a whole section)."""
    lines = []
    for error in exc.errors():
        path = [str(p) for p in error["loc"] if isinstance(p, str)]
        ctx = error.get("ctx") or {}
        if error["type"] == "value_error":
            reason = str(ctx.get("error", error["msg"]))
            if reason.startswith("DUALWRITE_"):
                lines.append(reason)  # a rule across settings names its variables itself
                continue
        elif error["type"] in _EXPECTED:
            reason = f"expected {_EXPECTED[error['type']]}"
        elif error["type"] == "literal_error":
            reason = f"expected one of {ctx.get('expected')}"
        elif error["type"] in _BOUNDS:
            bound = next(iter(ctx.values()), "")
            reason = f"expected a value {_BOUNDS[error['type']]} {bound}"
        else:
            reason = error["msg"][:1].lower() + error["msg"][1:]
        name = "DUALWRITE_" + "__".join(p.upper() for p in path)
        value = error.get("input")
        secret = any(word in name for word in ("PASSWORD", "SECRET"))
        shown = f", got {value!r}" if isinstance(value, str | int | float) and not secret else ""
        lines.append(f"{name}: {reason}{shown}")
    return lines
