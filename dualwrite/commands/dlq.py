"""`dualwrite dlq list|show|retry`: the dead letters on ``sync.dlq``, and re-driving them."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.syntax import Syntax
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
from dualwrite.ops import dlq as ops
from dualwrite.ops.errors import OpsError
from dualwrite.ops.maps import resolve
from dualwrite.settings import Settings

app = typer.Typer(help="Inspect dead letters on sync.dlq and re-drive them to their topics.",
                  no_args_is_help=True)

STAGES = ("decode", "dedupe", "transform", "gate", "sink", "capture", "source")  # "source": older capture letters

StageOpt = Annotated[str | None, typer.Option(
    help=f"Only dead letters of this stage ({', '.join(STAGES)}).", show_default=False)]
MapOpt = Annotated[str | None, typer.Option(
    "--map", help="Only dead letters of this table map (see `dualwrite maps list`).",
    show_default=False)]


class BadSelection(OpsError):
    exit_code = 2


def _check_filters(stage: str | None, map_name: str | None) -> None:
    if stage is not None and stage not in STAGES:
        raise BadSelection(f"unknown stage {stage!r}. Stages: {', '.join(STAGES)}.")
    if map_name is not None:
        resolve(map_registry(Settings()), map_name)


def _positions(texts: list[str] | None) -> list[ops.Position] | None:
    if not texts:
        return None
    try:
        return [ops.parse_position(t) for t in texts]
    except ValueError as exc:
        raise BadSelection(str(exc)) from None


def _read(timeout: float, topic_prefix: str) -> list[ops.DeadLetter]:
    return ops.read_dead_letters(config(), topic=topic_prefix + ops.DLQ_TOPIC,
                                 timeout=timeout)


def _print_json(data: object) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def _short(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("list")
def list_dead_letters(
    stage: StageOpt = None,
    map_name: MapOpt = None,
    limit: Annotated[int, typer.Option(
        help="Show only the newest N of the selection (the summary counts all of it).",
        min=1)] = 50,
    json: JsonOpt = False, timeout: TimeoutOpt = 10.0, topic_prefix: PrefixOpt = "",
) -> None:
    """Dead letters with their reasons (stage, error, map, origin, time), newest last, and a
    count by stage, map and error class."""
    with expected_failures():
        _check_filters(stage, map_name)
        chosen = ops.select(_read(timeout, topic_prefix), stage=stage, map_name=map_name)
    summary = ops.summarize(chosen)
    shown = chosen[-limit:]
    if json:
        _print_json({"summary": summary.as_json(), "shown": len(shown),
                     "dead_letters": [d.as_json() for d in shown]})
        return
    if not chosen:
        filters = " and ".join(f for f in (stage and f"stage {stage}", map_name and f"map {map_name}") if f)
        out.print(f"no dead letters{' for ' + filters if filters else ''} on "
                  f"{topic_prefix}{ops.DLQ_TOPIC}.")
        return
    table = Table(title=f"{topic_prefix}{ops.DLQ_TOPIC}", title_justify="left")
    for column in ("position", "time", "stage", "map", "error", "message", "original"):
        table.add_column(column, overflow="fold")
    for d in shown:
        stage_text = d.stage + (" [dim](retry)[/dim]" if d.retried else "")
        table.add_row(f"{d.partition}:{d.offset}", when(d.ts_ms), stage_text, d.map or "-",
                      d.error_class, _short(d.message),
                      f"{d.original_topic or '?'} {d.original_position}".strip())
    out.print(table)
    if len(shown) < len(chosen):
        out.print(f"showing the newest {len(shown)} of {len(chosen)} (--limit).")
    out.print(f"{summary.total} dead letter(s). by stage: {_counts(summary.by_stage)}; "
              f"by map: {_counts(summary.by_map)}; by error class: {_counts(summary.by_error)}",
              soft_wrap=True)
    out.print("see one with `dualwrite dlq show PARTITION:OFFSET`; re-drive with `dualwrite dlq retry`.")


@app.command()
def show(
    position: Annotated[str, typer.Argument(
        help="PARTITION:OFFSET on sync.dlq, as `dualwrite dlq list` shows it.", show_default=False,
        metavar="PARTITION:OFFSET")],
    json: JsonOpt = False, timeout: TimeoutOpt = 10.0, topic_prefix: PrefixOpt = "",
) -> None:
    """One dead letter in full: every header, the key and the value (pretty JSON when it is)."""
    with expected_failures():
        [where] = _positions([position]) or []
        d = ops.find(_read(timeout, topic_prefix), where)
    if json:
        _print_json(d.as_json(full=True))
        return
    table = Table(title=f"{topic_prefix}{ops.DLQ_TOPIC} {d.partition}:{d.offset}",
                  title_justify="left", show_header=False)
    table.add_column("header", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in d.headers.items():
        table.add_row(name, when(int(value)) if name == "dlq.ts_ms" and value.isdigit() else value)
    out.print(table)
    out.print(f"[bold]key[/bold]: {d.key.decode(errors='replace') if d.key is not None else '(none)'}")
    parsed = d.value_json()
    if d.value is None:
        out.print("[bold]value[/bold]: (none: a tombstone)")
    elif parsed is not None:
        out.print("[bold]value[/bold] (JSON):")
        out.print(Syntax(orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode(), "json",
                         word_wrap=True))
    else:
        out.print(f"[bold]value[/bold] ({len(d.value)} bytes, not JSON):")
        out.print(d.value.decode(errors="replace"), markup=False)


@app.command()
def retry(
    stage: StageOpt = None,
    map_name: MapOpt = None,
    offset: Annotated[list[str] | None, typer.Option(
        "--offset", help="Only this dead letter, PARTITION:OFFSET (repeatable).",
        show_default=False, metavar="PARTITION:OFFSET")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    app_id: Annotated[str, typer.Option(
        help="The worker's app id (its gate topic <app id>-gate takes back what the gate "
             "dead-lettered).")] = ops.DEFAULT_APP_ID,
    timeout: TimeoutOpt = 10.0, topic_prefix: PrefixOpt = "",
) -> None:
    """Re-produce the selected dead letters' original key and value to their original topic,
    marked with the dualwrite.retry header. Safe: the pipeline is idempotent; a record that
    fails again lands in the DLQ again. Only the catalog's CDC and command topics and the
    worker's gate topic are re-drive targets; a dead letter naming another topic is refused."""
    with expected_failures():
        _check_filters(stage, map_name)
        wanted = _positions(offset)
        letters = _read(timeout, topic_prefix)
        chosen = ops.select(letters, stage=stage, map_name=map_name, positions=wanted)
        if wanted is not None:
            missing = sorted(set(wanted) - {d.position for d in chosen})
            if missing:
                raise BadSelection("no dead letter matching the filters at "
                                   + ", ".join(f"{p}:{o}" for p, o in missing)
                                   + " (see `dualwrite dlq list`).")
        planned = ops.retry_plan(chosen, topic_prefix=topic_prefix, app_id=app_id)
        plan = planned.records
        for d in planned.unroutable:
            err.print(f"[yellow]skipped[/yellow] {d.partition}:{d.offset}: nowhere to send it "
                      "back (no dlq.original.topic, or a gate value that is not a change).")
        for d in planned.refused:
            err.print(f"[red]refused[/red] {d.partition}:{d.offset}: its dlq.original.topic "
                      f"{escape(repr(d.original_topic))} is not a CDC or command topic of the "
                      f"catalog nor the gate topic {app_id}{ops.GATE_SUFFIX}.", soft_wrap=True)
        if planned.refused:
            err.print(f"{len(planned.refused)} dead letter(s) refused (not re-driven).")
        if planned.repeats:
            err.print(f"{len(planned.repeats)} dead letter(s) repeat a record already in the "
                      "selection (it failed again after a retry); each record is sent once.")
        if not plan:
            err.print("nothing to re-drive.")
            return
        by_topic = Counter(topic for topic, *_ in plan)
        err.print(f"{len(plan)} record(s) to re-drive: "
                  + ", ".join(f"{n} to {t}" for t, n in by_topic.most_common()), soft_wrap=True)
        if not yes:
            if not sys.stdin.isatty():
                raise BadSelection("not confirmed: run it in a terminal to answer, or pass --yes.")
            if not typer.confirm("re-drive them?", default=False):
                err.print("nothing sent.")
                raise typer.Exit(1)
        with Progress(TextColumn("re-driving"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=False) as progress:
            task = progress.add_task("re-drive", total=len(plan))
            sent = ops.redrive(config(), plan, timeout=max(timeout, 30.0),
                               on_delivered=lambda: progress.advance(task))
    err.print(f"[green]re-drove {sent} record(s)[/green]: "
              + ", ".join(f"{n} to {t}" for t, n in by_topic.most_common())
              + ". Those that fail again come back to the DLQ (`dualwrite dlq list`).",
              soft_wrap=True)
