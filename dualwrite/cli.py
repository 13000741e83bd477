"""The `dualwrite` command: one entry point, one sub-command group per area."""

from __future__ import annotations

import faulthandler
import signal
from pathlib import Path
from typing import Annotated

import typer

from dualwrite.commands import (
    bench,
    connectors,
    demo,
    dlq,
    emulator,
    initial_sync,
    kafka,
    maps,
    reconcile,
    replay,
    scenario,
    status,
    topics,
    worker,
)

app = typer.Typer(
    name="dualwrite",
    help="Keep Dataverse (Project Operations) and Dynamics 365 Finance in step through Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(kafka.app, name="kafka")
app.add_typer(topics.app, name="topics")
app.add_typer(emulator.app, name="emulator")
app.add_typer(worker.app, name="worker")
app.add_typer(connectors.source_app, name="source")
app.add_typer(connectors.sink_app, name="sink")
app.add_typer(demo.app, name="demo")
app.add_typer(bench.app, name="bench")
app.add_typer(maps.app, name="maps")
app.add_typer(dlq.app, name="dlq")
app.add_typer(status.app, name="status")
app.add_typer(reconcile.app, name="reconcile")
app.add_typer(replay.app, name="replay")
app.add_typer(scenario.app, name="scenario")
app.command("initial-sync")(initial_sync.initial_sync)


@app.command()
def settings(
    readme: Annotated[Path | None, typer.Option(help="Rewrite the table inside this README.")] = None,
) -> None:
    """Print every setting (environment variable, default, meaning) as a Markdown table."""
    from dualwrite.settings_doc import settings_table, update_readme

    if readme is None:
        typer.echo(settings_table())
    else:
        readme.write_text(update_readme(readme.read_text()))


@app.command("compile")
def compile_hot_path(
    check: Annotated[bool, typer.Option(
        "--check", help="Only say whether the worker would run compiled; exit 1 when not.")] = False,
) -> None:
    """Compile the worker's per-change path with mypyc (a C compiler and Python's headers needed).

    The worker then decides a change in about a quarter less time. The build is used only while
    the sources are the ones it was made from; after an edit or an upgrade the worker runs the
    sources as written until this is run again. DUALWRITE_NATIVE=0 turns it off.
    """
    from streams import native

    if check:
        line = native.status()
        typer.echo(line)
        raise typer.Exit(0 if line.startswith("compiled") else 1)
    if native.built() is None:
        typer.echo(f"compiling {len(native.MODULES)} modules of the worker with mypyc (about a minute)...")
    try:
        place = native.build()
    except native.NativeBuildError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"compiled: {place}")


def main() -> None:
    """Run the CLI; an invalid ``DUALWRITE_*`` value is one line per setting on stderr and exit 2
    (the variable and what it expects), not a validation traceback."""
    from pydantic import ValidationError

    from dualwrite.settings import invalid_settings

    # `kill -USR1 <pid>` prints every thread's stack on stderr (a process's log under the
    # supervisor) and the process goes on: how a stuck worker, source or sink says where it is.
    if hasattr(signal, "SIGUSR1"):  # POSIX only
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        app()
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        for line in invalid_settings(exc):
            typer.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None
