"""`dualwrite emulator dataverse|finance`: run one emulator as a real HTTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emulators.common.config import EmulatorConfig, FaultConfig, ServiceLimits

app = typer.Typer(help="Run a local stand-in for Dataverse or Finance (HTTP over SQLite).",
                  no_args_is_help=True)

HostOpt = Annotated[str, typer.Option(help="Interface to listen on.")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="SQLite file (created on first start).")]
ClientOpt = Annotated[
    list[str] | None,
    typer.Option("--client", help="OAuth2 client accepted, as ID:SECRET (repeatable)."),
]
SeedOpt = Annotated[bool, typer.Option(help="Load the demo tenant's reference data if empty.")]
LatencyOpt = Annotated[int, typer.Option(help="Fault: milliseconds added to every API call.")]
ErrorRateOpt = Annotated[float, typer.Option(help="Fault: share of API calls answered 500/503.")]
DropRateOpt = Annotated[float, typer.Option(help="Fault: share of API calls whose connection drops.")]
RequestsOpt = Annotated[int, typer.Option(help="Service protection: requests per window per client.")]
WindowOpt = Annotated[float, typer.Option(help="Service protection: window length in seconds.")]
ConcurrentOpt = Annotated[int, typer.Option(help="Service protection: concurrent requests per client.")]


def _clients(raw: list[str] | None) -> dict[str, str]:
    clients: dict[str, str] = {}
    for item in raw or []:
        client_id, sep, secret = item.partition(":")
        if not sep or not client_id or not secret:
            raise typer.BadParameter(f"--client must be ID:SECRET, got {item!r}")
        clients[client_id] = secret
    return clients


def _config(host: str, port: int, db: Path, client: list[str] | None, seed: bool, latency_ms: int,
            error_rate: float, drop_rate: float, requests: int, window: float, concurrent: int,
            **extra: object) -> EmulatorConfig:
    return EmulatorConfig(
        host=host, port=port, db_path=db, clients=_clients(client), seed=seed,
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

    cfg = _config(host, port, db or Path("dataverse.db"), client, seed, latency_ms, error_rate,
                  drop_rate, requests, window, concurrent)
    serve(create_app(cfg), cfg)


@app.command()
def finance(
    host: HostOpt = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8082,
    db: DbOpt = None,
    client: ClientOpt = None,
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

    cfg = _config(host, port, db or Path("finance.db"), client, seed, latency_ms, error_rate,
                  drop_rate, requests, window, concurrent, default_company=company)
    serve(create_app(cfg), cfg)
