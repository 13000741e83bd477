"""`dualwrite reconcile`: compare both systems map by map through their APIs (`dualwrite.reconcile`).

Exit 0 when every map is in sync, 1 on any drift, 2 with one line when an API cannot be read
(unreachable, credentials refused, an answer that is not rows) or a map name is unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="Compare Dataverse and Finance map by map; exit 1 on drift.",
                  add_completion=False)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

if TYPE_CHECKING:
    from dualwrite.reconcile import MapReport

_COLUMNS = ("in_sync", "missing", "different", "extra", "unresolved")


def report_table(reports: Sequence[MapReport]) -> Table:
    """One row per map: in sync, missing, different, extra, unresolved (drift in red)."""
    table = Table(title="reconcile", title_justify="left")
    table.add_column("map (source -> target)", overflow="fold")
    for column in _COLUMNS:
        table.add_column(column.replace("_", " "), justify="right", no_wrap=True)
    for r in reports:
        counts = r.counts()
        cells = [str(counts[c]) if c == "in_sync" or not counts[c] else f"[red]{counts[c]}[/red]"
                 for c in _COLUMNS]
        table.add_row(f"{r.map}\n[dim]{r.source} -> {r.target}[/dim]", *cells)
    return table


@app.callback(invoke_without_command=True)
def reconcile(
    maps: Annotated[list[str] | None, typer.Option(
        "--map", metavar="NAME", help="Only this map (repeat for more; see `dualwrite maps list`).")] = None,
    json_file: Annotated[Path | None, typer.Option(
        "--json", metavar="FILE", help="Write the full report (keys, differing fields with both "
        "values) to FILE.")] = None,
    page_size: Annotated[int, typer.Option(
        min=1, max=5000, help="Rows per page asked of each API (odata.maxpagesize).")] = 5000,
) -> None:
    """Read every map's source and target tables through the APIs, compute what the target must
    hold with the processor's own transform, and print per map: in sync, missing, different,
    extra (target rows no source row produces) and unresolved (source rows whose lookups name a
    missing row, or that the map refuses)."""
    from dualwrite.apiclient import ApiError
    from dualwrite.capture import map_registry
    from dualwrite.reconcile import ApiTables, ReconcileError, api_sessions, reconcile, report_json
    from dualwrite.settings import Settings

    settings = Settings()
    registry = map_registry(settings)
    unknown = [name for name in maps or () if name not in registry]
    if unknown:
        known = ", ".join(m.name for m in registry.maps)
        raise typer.BadParameter(f"no map {', '.join(unknown)}; the maps are: {known}",
                                 param_hint="--map")
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} rows"),
                  TimeElapsedColumn(), console=err, transient=True) as progress:
        tasks: dict[tuple[str, str], TaskID] = {}

        def on_page(system: str, table: str, rows: int) -> None:
            if (system, table) not in tasks:
                tasks[system, table] = progress.add_task(f"{system} {table}", total=None)
            progress.update(tasks[system, table], advance=rows)

        tables = ApiTables(api_sessions(settings), page_size=page_size, on_page=on_page)
        try:
            reports = reconcile(registry, tables, maps)
        except (ReconcileError, ApiError) as exc:
            progress.stop()
            err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            tables.close()
    out.print(report_table(reports))
    if json_file is not None:
        try:
            json_file.write_bytes(orjson.dumps(report_json(reports), option=orjson.OPT_INDENT_2))
        except OSError as exc:
            err.print(f"[red]error:[/red] cannot write the report to {json_file}: {exc.strerror}")
            raise typer.Exit(2) from None
    drifting = [r.map for r in reports if r.drift]
    if drifting:
        hint = f" (keys in {json_file})" if json_file else " (--json FILE lists the keys)"
        err.print(f"[red]drift[/red] in {len(drifting)} of {len(reports)} maps: "
                  f"{', '.join(drifting)}{hint}", soft_wrap=True)
        raise typer.Exit(1)
    err.print(f"[green]in sync[/green]: all {len(reports)} maps")
