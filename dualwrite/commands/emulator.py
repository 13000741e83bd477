"""`dualwrite emulator dataverse|finance`: run one emulator as a real HTTP server.

The OAuth2 clients it accepts are named with ``--client-id`` (repeatable); their secret never
travels on the command line (``ps`` shows every process's arguments to every local user): it is
read from the file given with ``--client-secret-file`` or else from the environment variable
``DUALWRITE_EMULATOR_CLIENT_SECRET``. Every listed client id shares that one secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from emulators.common.config import CLIENT_SECRET_ENV, EmulatorConfig, FaultConfig, ServiceLimits

app = typer.Typer(help="Run a local stand-in for Dataverse or Finance (HTTP over SQLite).",
                  no_args_is_help=True)

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="SQLite file (created on first start).")]
ClientOpt = Annotated[
    list[str] | None,
    typer.Option("--client-id", help="OAuth2 client id accepted (repeatable); its secret comes "
                 f"from --client-secret-file or ${CLIENT_SECRET_ENV}."),
]
SecretFileOpt = Annotated[
    Path | None,
    typer.Option("--client-secret-file", help="File holding the client secret (first line).",
                 exists=True, dir_okay=False, readable=True),
]
SeedOpt = Annotated[bool, typer.Option(help="Load the demo tenant's reference data if empty.")]
LatencyOpt = Annotated[int, typer.Option(help="Fault: milliseconds added to every API call.")]
ErrorRateOpt = Annotated[float, typer.Option(help="Fault: share of API calls answered 500/503.")]
DropRateOpt = Annotated[float, typer.Option(help="Fault: share of API calls whose connection drops.")]
RequestsOpt = Annotated[int, typer.Option(help="Service protection: requests per window per client.")]
WindowOpt = Annotated[float, typer.Option(help="Service protection: window length in seconds.")]
ConcurrentOpt = Annotated[int, typer.Option(help="Service protection: concurrent requests per client.")]


def _secret(secret_file: Path | None) -> SecretStr | None:
    if secret_file is not None:
        lines = secret_file.read_text(encoding="utf-8").splitlines()
        return SecretStr(lines[0].strip()) if lines and lines[0].strip() else None
    value = os.environ.get(CLIENT_SECRET_ENV, "")
    return SecretStr(value) if value else None


def _clients(client_ids: list[str] | None, secret_file: Path | None) -> dict[str, SecretStr]:
    if not client_ids:
        return {}
    secret = _secret(secret_file)
    if secret is None:
        source = f"--client-secret-file {secret_file}" if secret_file else f"${CLIENT_SECRET_ENV}"
        raise typer.BadParameter(f"--client-id needs a client secret, and {source} is empty.")
    return {client_id: secret for client_id in client_ids}


def _config(host: str, port: int, db: Path, client: list[str] | None, secret_file: Path | None,
            seed: bool, latency_ms: int, error_rate: float, drop_rate: float, requests: int,
            window: float, concurrent: int, **extra: object) -> EmulatorConfig:
    return EmulatorConfig(
        host=host, port=port, db_path=db, clients=_clients(client, secret_file), seed=seed,
        limits=ServiceLimits(requests_per_window=requests, window_seconds=window,
                             max_concurrent=concurrent),
        faults=FaultConfig(latency_ms=latency_ms, error_rate=error_rate, drop_rate=drop_rate),
        **extra,
    )


@app.command()
def dataverse(
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8081,
    db: DbOpt = None,
    client: ClientOpt = None,
    client_secret_file: SecretFileOpt = None,
    seed: SeedOpt = False,
    latency_ms: LatencyOpt = 0,
    error_rate: ErrorRateOpt = 0.0,
    drop_rate: DropRateOpt = 0.0,
    requests: RequestsOpt = 6000,
    window: WindowOpt = 300.0,
    concurrent: ConcurrentOpt = 52,
) -> None:
    """Dataverse Web API emulator: /api/data/v9.2, change tracking, $batch, service protection."""
    from emulators.common.server import serve
    from emulators.dataverse.app import create_app

    cfg = _config(host, port, db or Path("dataverse.db"), client, client_secret_file, seed,
                  latency_ms, error_rate, drop_rate, requests, window, concurrent)
    serve(create_app(cfg), cfg)


@app.command()
def finance(
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8082,
    db: DbOpt = None,
    client: ClientOpt = None,
    client_secret_file: SecretFileOpt = None,
    seed: SeedOpt = False,
    company: Annotated[str, typer.Option(help="Callers' default company (dataAreaId).")] = "usmf",
    latency_ms: LatencyOpt = 0,
    error_rate: ErrorRateOpt = 0.0,
    drop_rate: DropRateOpt = 0.0,
    requests: RequestsOpt = 6000,
    window: WindowOpt = 300.0,
    concurrent: ConcurrentOpt = 52,
) -> None:
    """Finance OData emulator: /data/<entity>, change feed, $batch, throttling, back-office jobs."""
    from emulators.common.server import serve
    from emulators.finance.app import create_app

    cfg = _config(host, port, db or Path("finance.db"), client, client_secret_file, seed,
                  latency_ms, error_rate, drop_rate, requests, window, concurrent,
                  default_company=company)
    serve(create_app(cfg), cfg)
