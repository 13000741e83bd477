"""`dualwrite demo`: everything on one machine with embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run the whole pipeline on this machine.", invoke_without_command=True)


@app.callback(invoke_without_command=True)
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo keeps Kafka data, databases, logs.")]
    = Path(".dualwrite/demo"),
    port: Annotated[int, typer.Option(help="Kafka port on 127.0.0.1.")] = 9092,
) -> None:
    """Start local Kafka, apply the topics, send a sample change event through the broker."""
    from dualwrite.demo.roundtrip import run_roundtrip

    raise typer.Exit(run_roundtrip(workdir.resolve(), port))
