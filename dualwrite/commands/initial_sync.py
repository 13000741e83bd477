"""`dualwrite initial-sync --map NAME... [--master dataverse|finance] [--company C...]`.

Builds one source engine per system from the settings as ``dualwrite source`` does (the source
identity, the maps' declared tables, the source's before-image file, so updates after the
hand-over carry their ``before``) and runs `dualwrite.initial_sync` with a rich progress bar per
map on stderr (rows, rows/s and, when the API counts the table, the ETA). The summary, one line
per map on stdout: rows read, emitted, skipped (the target, as master, keeps them), differing
(kept, and some mapped field differs), other companies, dead letters. Exit 2 with one line when
a map or company is unknown or an API or Kafka cannot be used; run it again to resume.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from connectors.common.errors import ConnectorError
from connectors.common.images import ImageStoreError
from connectors.common.source import DEAD_LETTERED, EMITTED, SourceEngine
from connectors.dataverse import dataverse_source
from connectors.finance import finance_source
from dualwrite.capture import map_registry
from dualwrite.commands.connectors import (
    dataverse_connection,
    finance_connection,
    kafka_config,
    source_settings,
)
from dualwrite.initial_sync import (
    DIFFERING,
    KEPT,
    OTHER_COMPANY,
    InitialSync,
    InitialSyncError,
    MasterDecision,
    Summary,
    SyncTask,
    plan,
    reconciled_decision,
)
from dualwrite.reconcile import ApiTables, api_sessions
from dualwrite.settings import Settings
from streams.maps.model import TableMap
from streams.maps.registry import RegistryError
from topics import System

__all__ = ["initial_sync", "summary_line"]

err = Console(stderr=True)


class RateColumn(ProgressColumn):
    """Rows per second of the running map."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:,.0f} rows/s")


class Bars:
    """A rich progress bar per map (`dualwrite.initial_sync.Reporter`)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.bars: dict[str, TaskID] = {}

    def start(self, task: SyncTask, total: int | None, done: int) -> None:
        self.bars[task.checkpoint_table] = self.progress.add_task(
            f"{task.map} ({task.system} {task.table})", total=total, completed=done)

    def advance(self, task: SyncTask, rows: int) -> None:
        self.progress.update(self.bars[task.checkpoint_table], advance=rows)


def summary_line(s: Summary) -> str:
    """One map's outcome, as printed (the integration test reads it too)."""
    t = s.task
    state = "done before" if s.before else ("resumed" if s.resumed else "complete")
    if s.handed_over:
        state += ", streaming checkpoint set"
    return (f"{t.map} {t.system} {t.table} companies={','.join(t.companies) or '*'}: "
            f"read={s.state.read} emitted={s.count(EMITTED)} "
            f"skipped={s.count(KEPT) + s.count(DIFFERING)} differing={s.count(DIFFERING)} "
            f"other_company={s.count(OTHER_COMPANY)} dead_lettered={s.count(DEAD_LETTERED)} ({state})")


def _engine(settings: Settings, system: System, tables: list[str], page_size: int | None) -> SourceEngine:
    config = source_settings(settings, system, tables, None)
    kafka = kafka_config(settings)
    if system == "dataverse":
        dv = dataverse_connection(settings, source=True)
        return dataverse_source(dv.model_copy(update={"page_size": page_size or dv.page_size}), kafka, config)
    fo = finance_connection(settings, source=True)
    return finance_source(fo.model_copy(update={"page_size": page_size or fo.page_size}), kafka, config)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", soft_wrap=True, markup=True, highlight=False)
    return typer.Exit(2)


def initial_sync(
    map_: Annotated[list[str], typer.Option("--map", help="Map to sync (repeatable); run in the "
                                            "registry's dependency order whatever the order named.")],
    master: Annotated[System | None, typer.Option(help="The system whose rows win where a row "
                                                   "exists on both sides (default: each map's source).")] = None,
    company: Annotated[list[str] | None, typer.Option(help="Only rows of this company (repeatable; "
                                                      "tables without a company column are read whole).")] = None,
    page_size: Annotated[int | None, typer.Option(min=1, help="Rows per page (default: the connection's).")] = None,
    restart: Annotated[bool, typer.Option(help="Ignore earlier checkpoints of these maps and read "
                                          "from the start.")] = False,
) -> None:
    """Copy every current row of each map's source onto its CDC topic (op "r") and hand over to
    streaming from the position captured before the first row: no gap, no row cap, resumable
    after a kill (run it again). It never moves a running `dualwrite source`'s checkpoint: start
    or keep the sources running as usual; a table with no checkpoint yet gets the captured one."""
    settings = Settings()
    try:
        registry = map_registry(settings)
        tasks = plan(registry, map_, company or (), master)
    except (RegistryError, InitialSyncError) as exc:
        raise _fail(str(exc)) from None

    def decide(m: TableMap) -> MasterDecision:
        tables = ApiTables(api_sessions(settings))
        try:
            return reconciled_decision(registry, tables, m)
        finally:
            tables.close()

    engines: dict[System, SourceEngine] = {}
    try:
        for system in sorted({t.system for t in tasks}):
            engines[system] = _engine(settings, system, sorted({t.table for t in tasks if t.system == system}),
                                      page_size)
    except ImageStoreError as exc:
        raise _fail(str(exc)) from None
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                  TimeRemainingColumn(), console=err) as progress:
        runner = InitialSync(registry, engines, decide, Bars(progress))
        try:
            summaries = asyncio.run(_run(runner, tasks, restart, engines))
        except (InitialSyncError, ConnectorError) as exc:
            progress.stop()
            raise _fail(str(exc)) from None
    for s in summaries:
        typer.echo(summary_line(s))


async def _run(runner: InitialSync, tasks: list[SyncTask], restart: bool,
               engines: dict[System, SourceEngine]) -> list[Summary]:
    try:
        return await runner.run(tasks, restart)
    finally:
        for engine in engines.values():
            await engine.close()
