"""The `dualwrite` command: one entry point, one sub-command group per area."""

from __future__ import annotations

import typer

from dualwrite.commands import emulator, kafka, topics

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


def main() -> None:
    app()
