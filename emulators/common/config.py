"""Start-up configuration shared by both emulators.

These are plain frozen models: the `dualwrite emulator ...` commands build them from CLI
options (client secrets from the environment or a file, never the command line), tests build
them directly. Client secrets are ``SecretStr``, so a config's repr never shows them. Live objects (the ASGI app, the SQLite connection, the
token registry) are built from a config by each emulator's ``create_app`` and closed by it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

# Where `dualwrite emulator ... --client-id ID` reads the client secret when no
# --client-secret-file is given: secrets never go on a command line.
CLIENT_SECRET_ENV = "DUALWRITE_EMULATOR_CLIENT_SECRET"


class ServiceLimits(BaseModel):
    """Service protection limits per client over a sliding window.

    Defaults are Dataverse's documented numbers (per user, per web server, 5 minutes).
    """

    model_config = ConfigDict(frozen=True)

    requests_per_window: int = Field(6000, ge=1, description="Requests allowed per window.")
    execution_seconds_per_window: float = Field(
        1200.0, gt=0, description="Combined server execution time allowed per window."
    )
    window_seconds: float = Field(300.0, gt=0, description="Length of the sliding window.")
    max_concurrent: int = Field(52, ge=1, description="Concurrent requests allowed at once.")


class FaultConfig(BaseModel):
    """Faults injected into API responses; all off by default.

    Changeable at run time through ``PUT /_admin/faults``.
    """

    model_config = ConfigDict(frozen=True)

    latency_ms: int = Field(0, ge=0, description="Delay added before every API response.")
    error_rate: float = Field(0.0, ge=0, le=1, description="Share of API calls answered 5xx.")
    error_statuses: tuple[int, ...] = Field((500, 503), description="Statuses drawn for 5xx faults.")
    throttle_storm_seconds: float = Field(
        0.0, ge=0, description="Answer every API call 429 for this long from when it is set."
    )
    throttle_retry_after_seconds: int = Field(2, ge=1, description="Retry-After sent during a storm.")
    drop_rate: float = Field(0.0, ge=0, le=1, description="Share of API calls whose connection is dropped.")
    feed_paused: bool = Field(False, description="Change feed / delta links return no new changes.")


class EmulatorConfig(BaseModel):
    """Everything an emulator needs to start."""

    model_config = ConfigDict(frozen=True)

    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(0, ge=0, le=65535, description="TCP port (0 picks a free one).")
    db_path: Path = Field(..., description="SQLite file; created on first start, kept across restarts.")
    clients: dict[str, SecretStr] = Field(
        default_factory=dict, description="OAuth2 client id -> client secret accepted by the token endpoint."
    )
    token_ttl_seconds: int = Field(3600, ge=1, description="Lifetime of issued bearer tokens.")
    seed: bool = Field(False, description="Load the demo tenant's reference data on start if empty.")
    default_company: str = Field("usmf", description="Finance: the callers' default company (dataAreaId).")
    max_batch_requests: int = Field(
        1000, ge=1, description=(
            "Most requests in one $batch, change sets included; a larger batch is refused whole "
            "(400). Dataverse documents 1,000; Finance publishes no limit, its emulator uses the same."))
    max_page_size: int | None = Field(
        None, ge=1, description="Server page size (None: 5,000 for Dataverse, 10,000 for Finance)."
    )
    limits: ServiceLimits = Field(default_factory=lambda: ServiceLimits.model_validate({}))
    faults: FaultConfig = Field(default_factory=lambda: FaultConfig.model_validate({}))
