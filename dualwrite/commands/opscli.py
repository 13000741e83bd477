"""Shared pieces of the operations commands (`dualwrite maps`, `dualwrite dlq`): options,
expected failures printed as one line with what to do next (no stack trace), time display."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from connectors.common.kafka import KafkaConfig
from dualwrite.commands.connectors import kafka_config
from dualwrite.ops.errors import OpsError
from dualwrite.ops.kafka import quiet
from dualwrite.settings import Settings

__all__ = ["JsonOpt", "PrefixOpt", "TimeoutOpt", "config", "err", "expected_failures", "out", "when"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]
TimeoutOpt = Annotated[float, typer.Option(
    help="Seconds to wait for the Kafka cluster before giving up.", min=0.5)]
PrefixOpt = Annotated[str, typer.Option(
    help="Prefix of every catalog topic name, as given to `dualwrite worker --topic-prefix` "
         "(isolated test runs).", hidden=True)]


def config() -> KafkaConfig:
    """How to reach Kafka, from the DUALWRITE_* settings."""
    return quiet(kafka_config(Settings()))


@contextmanager
def expected_failures() -> Iterator[None]:
    """Print an `OpsError` as ``error: ...`` on stderr and exit with its code."""
    try:
        yield
    except OpsError as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def when(ts_ms: int | None, now_ms: int | None = None) -> str:
    """``2026-11-25 03:12:09Z (4m ago)``; empty for None."""
    if ts_ms is None:
        return ""
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    stamp = datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    age = max(0, (now - ts_ms) // 1000)
    if age < 60:
        ago = f"{age}s"
    elif age < 3600:
        ago = f"{age // 60}m"
    elif age < 86400:
        ago = f"{age // 3600}h{age % 3600 // 60:02d}m"
    else:
        ago = f"{age // 86400}d{age % 86400 // 3600}h"
    return f"{stamp} ({ago} ago)"
