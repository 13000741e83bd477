"""`dualwrite maps list|pause|resume`: the table maps and their state on ``sync.control``."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
import typer
from rich.table import Table

from dualwrite.capture import map_registry
from dualwrite.commands.opscli import (
    JsonOpt,
    PrefixOpt,
    TimeoutOpt,
    config,
    err,
    expected_failures,
    out,
    when,
)
from dualwrite.ops import maps as ops
from dualwrite.settings import Settings

app = typer.Typer(help="List the table maps with their state; pause or resume one.",
                  no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Map name (see `dualwrite maps list`).",
                                        show_default=False, metavar="NAME")]


def _print_json(data: object) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@app.command("list")
def list_maps(json: JsonOpt = False, timeout: TimeoutOpt = 10.0, topic_prefix: PrefixOpt = "") -> None:
    """Every table map: source -> target, direction, what it waits for, and whether it runs
    (state from sync.control; a map never paused runs)."""
    with expected_failures():
        states = ops.read_states(config(), topic=topic_prefix + ops.CONTROL_TOPIC,
                                 timeout=timeout)
    rows = ops.map_rows(map_registry(Settings()), states)
    if json:
        _print_json({"maps": [r.as_json() for r in rows]})
        return
    table = Table(title="table maps", title_justify="left")
    for column in ("map", "source -> target", "direction", "depends on", "state", "reason", "since"):
        table.add_column(column, overflow="fold")
    for r in rows:
        direction = r.direction + (f"\ntwo-way: {', '.join(r.two_way)}" if r.two_way else "")
        state = "[green]running[/green]" if r.state == "running" else f"[yellow]{r.state}[/yellow]"
        table.add_row(r.name, f"{r.source}\n-> {r.target}", direction, "\n".join(r.depends_on) or "-",
                      state, r.reason or "", when(r.since_ms))
    out.print(table)
    paused = [r.name for r in rows if r.state == "paused"]
    if paused:
        out.print(f"{len(paused)} paused: {', '.join(paused)}; their changes wait in the gate "
                  "until `dualwrite maps resume NAME`.")
    else:
        out.print(f"all {len(rows)} maps running.")


def _set(name: str, state: Literal["running", "paused"], reason: str | None, json: bool,
         timeout: float, topic_prefix: str) -> None:
    topic = topic_prefix + ops.CONTROL_TOPIC
    with expected_failures():
        ops.resolve(map_registry(Settings()), name)
        kafka = config()
        current = ops.read_states(kafka, topic=topic, timeout=timeout).get(name)
        if (current.state if current else "running") == state and reason is None:
            # Idempotent: nothing to send, and the "since" of the current state stays true.
            if json:
                _print_json({"changed": False, "map": name, "state": state,
                             "reason": current.reason if current else None,
                             "ts_ms": current.ts_ms if current else None})
            else:
                since = f"since {when(current.ts_ms)}" if current else "never paused"
                err.print(f"{name} is already {state} ({since}); nothing sent.")
            return
        value = ops.set_state(kafka, name, state, reason=reason, topic=topic, timeout=timeout)
    if json:
        _print_json({"changed": True, **value.model_dump()})
    elif state == "paused":
        err.print(f"[yellow]paused[/yellow] {name}" + (f" ({reason})" if reason else "")
                  + f": written to {topic}. The worker parks this map's changes in the gate until "
                  f"`dualwrite maps resume {name}`.")
    else:
        err.print(f"[green]resumed[/green] {name}: written to {topic}. The worker releases its "
                  "parked changes in order.")


@app.command()
def pause(
    name: NameArg,
    reason: Annotated[str | None, typer.Option(
        help="Why (shown by `dualwrite maps list`), e.g. a ticket number.")] = None,
    json: JsonOpt = False, timeout: TimeoutOpt = 10.0, topic_prefix: PrefixOpt = "",
) -> None:
    """Pause a map: its changes park in the worker's gate (nothing is lost) until resumed."""
    _set(name, "paused", reason, json, timeout, topic_prefix)


@app.command()
def resume(
    name: NameArg,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the state).")] = None,
    json: JsonOpt = False, timeout: TimeoutOpt = 10.0, topic_prefix: PrefixOpt = "",
) -> None:
    """Resume a paused map: the worker releases its parked changes in their order."""
    _set(name, "running", reason, json, timeout, topic_prefix)
