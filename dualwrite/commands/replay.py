"""`dualwrite replay`: re-drive a map's or a topic's CDC history through the live processor.

The decisions are in `dualwrite.replay` (range, already applied or not, repair); this module
reads the selection, shows progress (events, events/s, ETA) and prints the summary. Exit 0;
1 when something could not be re-driven (a repair key with no record in range, or a source row
no map resolves); 2 with one line on a usage, Kafka or API error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from dualwrite.commands.opscli import JsonOpt, PrefixOpt, TimeoutOpt, config, err, out
from dualwrite.ops.dlq import DEFAULT_APP_ID
from dualwrite.ops.errors import OpsError

if TYPE_CHECKING:
    from connectors.common.kafka import KafkaConfig
    from dualwrite import replay as rp
    from dualwrite.ops.dlq import DeadLetter
    from streams.maps import MapRegistry
    from streams.maps.model import TableMap
    from topics import System

app = typer.Typer(help="Re-drive a map's or a topic's CDC history through the processor.",
                  add_completion=False)

FromOpt = Annotated[list[str] | None, typer.Option(
    "--from", metavar="OFFSET|P:OFFSET|TIME", show_default=False,
    help="Where replay starts (inclusive); default the log start. Repeatable (one P:O each).")]
ToOpt = Annotated[list[str] | None, typer.Option(
    "--to", metavar="OFFSET|P:OFFSET|TIME", show_default=False,
    help="Where replay stops (exclusive); default the log end when replay starts. Repeatable.")]


class Usage(OpsError):
    exit_code = 2


class RateColumn(ProgressColumn):
    """Events per second, as rich measures the task's speed."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "- events/s")


@dataclass(frozen=True)
class Selection:
    """What is replayed: topics with their (system, table), and the maps reading each table."""

    topics: dict[str, tuple[System, str]]
    maps: dict[tuple[str, str], list[TableMap]]  # (system, table) -> selected maps

    def map_names(self) -> list[str]:
        return sorted({m.name for ms in self.maps.values() for m in ms})


def select(registry: MapRegistry, map_name: str | None, topic: str | None, prefix: str,
           cdc: list[tuple[System, str]]) -> Selection:
    from dualwrite.ops.maps import resolve
    from topics import cdc_topic

    if map_name is not None and topic is not None:
        raise Usage("give --map or --topic, not both")
    by_topic = {prefix + cdc_topic(s, t): (s, t) for s, t in cdc}
    if map_name is not None:
        m = resolve(registry, map_name)
        name = prefix + cdc_topic(m.source.system, m.source.table)
        return Selection({name: (m.source.system, m.source.table)},
                         {(m.source.system, m.source.table): [m]})
    if topic is not None:
        if topic not in by_topic:
            raise Usage(f"{topic} is not a CDC topic of the catalog (<system>.cdc.<table> of a "
                        "table some map reads; or use --map)")
        system, table = by_topic[topic]
        return Selection({topic: (system, table)},
                         {(system, table): registry.sourced_from(system, table)})
    sources = {(m.source.system, m.source.table) for m in registry.maps}
    return Selection({n: st for n, st in by_topic.items() if st in sources},
                     {st: registry.sourced_from(*st) for st in sources})


def _bounds(texts: list[str] | None) -> list[rp.Bound]:
    from dualwrite.replay import parse_bound

    return [parse_bound(t) for t in texts or ()]


def _read(cfg: KafkaConfig, sel: Selection, ranges: dict[tuple[str, int], tuple[int, int]],
          timeout: float, json: bool) -> Iterator[rp.Change]:
    """Every record of the ranges, decoded, with a progress bar on stderr."""
    from dualwrite.ops.kafka import reaching
    from dualwrite.replay import decode_change, read_range

    total = sum(end - start for start, end in ranges.values())
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), RateColumn(),
                  TimeRemainingColumn(), console=err, transient=False, disable=json) as progress:
        task = progress.add_task("read", total=total)
        with reaching(cfg):
            for record in read_range(cfg, ranges, timeout=max(timeout, 30.0)):
                progress.advance(task)
                yield decode_change(record, *sel.topics[record.topic])


def _letters(cfg: KafkaConfig, prefix: str, timeout: float) -> list[DeadLetter]:
    from dualwrite.ops.dlq import DLQ_TOPIC, read_dead_letters
    from dualwrite.ops.errors import TopicMissing

    try:
        return read_dead_letters(cfg, topic=prefix + DLQ_TOPIC, timeout=timeout)
    except TopicMissing:
        return []


def in_range(letters: list[DeadLetter], ranges: dict[tuple[str, int], tuple[int, int]]) -> int:
    """Dead letters that came from a record of the ranges."""
    count = 0
    for d in letters:
        p, _, o = d.original_position.partition(":")
        if d.original_topic and p.isdigit() and o.isdigit():
            span = ranges.get((d.original_topic, int(p)))
            count += span is not None and span[0] <= int(o) < span[1]
    return count


def summary_table(s: rp.Summary, *, dry_run: bool, repair: bool) -> Table:
    table = Table(title="replay" + (" (dry run)" if dry_run else ""), title_justify="left",
                  show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    data = s.as_json()
    rows = [("re-read", "reread"), ("already applied", "already_applied"),
            ("not applied (latest re-driven)" if not repair else "not applied", "redrive_candidates"),
            ("superseded by a newer record", "superseded"),
            ("filtered (every map's filter refuses it)", "filtered"),
            ("in the processor (parked or no-op, not dead-lettered)", "in_processor"), ("not a map's source (feeds, lookups)", "not_a_source"),
            ("tombstones", "tombstones"), ("undecodable (on the DLQ)", "undecodable"),
            ("would re-drive" if dry_run else "re-driven", "redriven"),
            ("dead letters seen from the range", "dead_letters")]
    if repair:
        rows += [("extra on the target (not deleted)", "extra"), ("could not re-drive", "unresolved")]
    for label, key in rows:
        table.add_row(label, f"{data[key]:,}")
    return table


@app.callback(invoke_without_command=True)
def replay(
    map_name: Annotated[str | None, typer.Option(
        "--map", metavar="NAME", help="Replay this map's source topic (see `dualwrite maps list`).",
        show_default=False)] = None,
    topic: Annotated[str | None, typer.Option(
        metavar="TOPIC", help="Replay this CDC topic (every map reading its table).",
        show_default=False)] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Compare the target's rows with what the history says they should be and "
        "re-drive only the records of rows that differ or are missing.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Decide everything, produce nothing; list what would be re-driven.")] = False,
    app_id: Annotated[str, typer.Option(
        help="The worker's app id (replay reads its <app id>-versions-changelog: what it has "
             "seen).")] = DEFAULT_APP_ID,
    json: JsonOpt = False, timeout: TimeoutOpt = 10.0, topic_prefix: PrefixOpt = "",
) -> None:
    """Re-drive CDC history through the live processor (its own reader, no consumer group: the
    worker is not disturbed). Default: records whose version the target acknowledged, that
    every map filters out, or that wait in the processor are skipped (no writes); the latest
    record of each other source record (dead-lettered, or never seen) goes again with the
    dualwrite.retry header. Without --map/--topic: every map's source topic. --from/--to: an
    offset for every partition (42), one partition's (1:42), or an ISO time; --to excludes."""
    try:
        code = _run(map_name, topic, start, end, repair=repair, dry_run=dry_run, json=json,
                    timeout=timeout, prefix=topic_prefix, app_id=app_id)
    except OpsError as exc:
        err.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    if code:
        raise typer.Exit(code)


def _run(map_name: str | None, topic: str | None, start: list[str] | None, end: list[str] | None, *,
         repair: bool, dry_run: bool, json: bool, timeout: float, prefix: str, app_id: str) -> int:
    from dualwrite import replay as rp
    from dualwrite.apiclient import ApiError
    from dualwrite.capture import cdc_tables, map_registry
    from dualwrite.ops.dlq import redrive
    from dualwrite.reconcile import ApiTables, ReconcileError, api_sessions
    from dualwrite.settings import Settings
    from topics import applied_topic, cdc_topic

    settings = Settings()
    registry = map_registry(settings)
    sel = select(registry, map_name, topic, prefix, cdc_tables(settings, registry))
    froms, tos = _bounds(start), _bounds(end)
    cfg = config()
    bounds = rp.watermarks(cfg, sorted(sel.topics), timeout)
    ranges = rp.resolve_ranges(bounds, froms, tos, rp.offset_lookup(cfg, timeout))
    targets = sorted({registry[n].target.system for n in sel.map_names()})
    index = rp.applied_index(rp.read_acks(cfg, [prefix + applied_topic(t) for t in targets], timeout))
    seen = rp.read_seen(cfg, f"{app_id}-versions-changelog", timeout)
    letters = _letters(cfg, prefix, timeout)
    dead = rp.dead_lettered(letters, sel.topics)

    decided = rp.decide(_read(cfg, sel, ranges, timeout, json), index, sel.maps, seen, dead,
                        keep_history=repair)
    summary, chosen = decided.summary, decided.chosen
    summary.dead_letters = in_range(letters, ranges)
    reasons: dict[str, str] = {}
    plan = rp.RepairPlan()
    if repair:
        tables = ApiTables(api_sessions(settings))
        try:
            reports = rp.compare_history(registry, tables, rp.latest_per_record(decided.history),
                                         sel.map_names())
        except (ReconcileError, ApiError) as exc:
            raise Usage(str(exc)) from None
        finally:
            tables.close()

        def topic_of(m: TableMap) -> str:
            return prefix + cdc_topic(m.source.system, m.source.table)

        plan = rp.repair_plan(registry, reports, rp.latest_per_record(decided.history), topic_of)
        chosen, reasons = plan.changes, plan.reasons
        summary.extra, summary.unresolved = len(plan.extra), len(plan.unresolved)
    records = rp.redrive_records(chosen)
    if dry_run or not records:
        summary.redriven = len(records)
    else:
        summary.redriven = redrive(cfg, records, timeout=max(timeout, 30.0))
    _report(summary, chosen, plan, reasons, dry_run=dry_run, repair=repair, json=json)
    return 1 if plan.unresolved else 0


def _report(summary: rp.Summary, chosen: list[rp.Change], plan: rp.RepairPlan, reasons: dict[str, str],
            *, dry_run: bool, repair: bool, json: bool) -> None:
    listed = [{"topic": c.record.topic, "position": f"{c.record.partition}:{c.record.offset}",
               "id": c.record_id, "version": c.version} for c in chosen]
    if json:
        typer.echo(orjson.dumps({
            "dry_run": dry_run, "repair": repair, "summary": summary.as_json(),
            "redriven" if not dry_run else "would_redrive": listed,
            "repair_keys": reasons, "extra": [{"map": m, "key": k} for m, k in plan.extra],
            "unresolved": [{"map": m, "reason": r} for m, r in plan.unresolved],
        }, option=orjson.OPT_INDENT_2).decode())
        return
    if dry_run and listed:
        table = Table(title="would re-drive", title_justify="left")
        for column in ("topic", "position", "id", "version"):
            table.add_column(column, overflow="fold")
        for row in listed:
            table.add_row(*(str(row[c]) for c in ("topic", "position", "id", "version")))
        out.print(table)
    for key, reason in reasons.items():
        out.print(f"repair: {key} {reason}", soft_wrap=True, markup=False)
    for m, key in plan.extra:
        err.print(f"[yellow]extra[/yellow] {m}: {key} is on the target only (not deleted)",
                  soft_wrap=True)
    for m, why in plan.unresolved:
        err.print(f"[red]cannot re-drive[/red] {m}: {why}", soft_wrap=True)
    out.print(summary_table(summary, dry_run=dry_run, repair=repair))
