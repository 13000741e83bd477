"""`dualwrite status`: what an operator reads first when something looks wrong.

Everything comes from Kafka, so the command works from any machine that reaches the cluster:

- map states from the compacted ``sync.control`` (a map with no record runs);
- consumer lag of the worker's group and both sinks' groups (committed vs end offset per topic);
- parked changes, rebuilt from the worker's ``<app id>-parked-changelog``, with the map that
  would bring what the oldest waits for (`streams.status.awaited`, from the map registry);
- dead letters on ``sync.dlq`` counted by stage, map and error class (from the ``dlq.*`` headers);
- source checkpoints from the compacted ``sync.source-offsets``;
- acks per target on ``sync.applied.<target>``. The sinks' throttling budget (429s, AIMD
  concurrency) is not on Kafka: it lives in their Prometheus metrics
  (`connectors.common.metrics`), which this command does not invent.

Gathering functions do I/O and return small frozen dataclasses; `summarize_dlq`,
`summarize_parked`, `topic_lags`, `health_problems`, `parse_since` and `report_json` are pure.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from connectors.common.kafka import KafkaConfig, read_compacted
from connectors.common.sink import SinkSettings
from dualwrite.ops.dlq import DeadLetter, read_dead_letters
from dualwrite.ops.kafka import kafka_failure
from dualwrite.settings import Settings
from streams.maps.registry import MapRegistry
from streams.status import awaited
from topics import DecodeError, MapState, SourceOffset, applied_topic, commands_topic, decode_model

__all__ = [
    "AppliedRow",
    "DlqCount",
    "DlqSummary",
    "GroupLag",
    "MapRow",
    "ParkedSummary",
    "SourceRow",
    "StatusOptions",
    "StatusReport",
    "TopicLag",
    "gather",
    "health_problems",
    "parse_since",
    "report_json",
    "summarize_dlq",
    "summarize_parked",
    "topic_lags",
]

CONTROL_TOPIC = "sync.control"
DLQ_TOPIC = "sync.dlq"
SOURCE_OFFSETS_TOPIC = "sync.source-offsets"
TARGETS = ("finance", "dataverse")
BUDGET_NOTE = ("Throttling budget (429/503 answers, AIMD concurrency) is not on Kafka: read the "
               "sinks' Prometheus metrics dualwrite_connector_throttled, "
               "dualwrite_connector_retries and dualwrite_sink_concurrency "
               "(set DUALWRITE_METRICS_PORT on each sink).")


# ---------------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class MapRow:
    map: str
    state: str  # running | paused | unreadable
    reason: str | None
    ts_ms: int | None  # None: no record on sync.control (a map runs by default)
    age_s: float | None


@dataclass(frozen=True)
class TopicLag:
    topic: str
    partitions: int
    committed: int  # sum of committed offsets (partitions without one count from the start)
    end: int  # sum of end offsets
    lag: int
    # Records deleted (retention) between the group's committed offset and the log start, never
    # read by the group: the changes they carried did not reach the target through it.
    expired: int = 0


@dataclass(frozen=True)
class GroupLag:
    group: str
    role: str
    started: bool  # False: the group has no committed offset at all
    topics: tuple[TopicLag, ...]
    state: str = "unknown"  # the broker's group state: stable, empty, dead, preparing_rebalancing...
    members: int = 0  # consumers in the group now

    @property
    def condition(self) -> str:
        """``committing`` | ``running, nothing committed yet`` | ``not started``."""
        if self.started:
            return "committing"
        return "running, nothing committed yet" if self.members else "not started"

    @property
    def lag(self) -> int:
        return sum(t.lag for t in self.topics)


@dataclass(frozen=True)
class ParkedSummary:
    map: str
    count: int
    oldest_change_id: str
    oldest_waits_for: str
    oldest_age_s: float
    unwritten_deletes: int = 0  # deletes of records never written: held, not stuck (not in count)
    oldest_brought_by: tuple[str, ...] = ()  # maps whose writes bring what the oldest waits for
    oldest_hint: str = ""  # what would release it: "the <map> map brings it: ...", "no map ..."


@dataclass(frozen=True)
class DlqCount:
    stage: str
    map: str
    error_class: str
    count: int


@dataclass(frozen=True)
class DlqSummary:
    total: int
    since_ms: int | None  # None: every record counts as recent
    recent: int  # records at or after since_ms
    newest_ts_ms: int | None
    newest_age_s: float | None
    counts: tuple[DlqCount, ...]


@dataclass(frozen=True)
class SourceRow:
    system: str
    table: str
    snapshot_done: bool
    ts_ms: int
    age_s: float


@dataclass(frozen=True)
class AppliedRow:
    target: str
    published: int  # every ack ever produced (sum of end offsets)
    retained: int  # still on the compacted topic (sum of end - start offsets)


@dataclass(frozen=True)
class StatusOptions:
    app_id: str = "dualwrite-streams"
    timeout_s: float = 10.0
    dlq_since_ms: int | None = None
    max_parked_age_s: float = 300.0
    topic_prefix: str = ""
    finance_group: str | None = None  # default: the Finance sink's own (dualwrite-sink-finance)
    dataverse_group: str | None = None


@dataclass(frozen=True)
class StatusReport:
    bootstrap: str
    now_ms: int
    maps: tuple[MapRow, ...]
    groups: tuple[GroupLag, ...]
    parked_available: bool  # False: no parked changelog (the worker never ran with this app id)
    parked: tuple[ParkedSummary, ...]
    dlq: DlqSummary
    sources: tuple[SourceRow, ...]
    applied: tuple[AppliedRow, ...]
    budget_note: str = BUDGET_NOTE
    problems: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------------ pure parts

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now_ms: int) -> int:
    """``--dlq-since``: a duration back from now (``90``, ``15m``, ``2h``, ``1d``) or an ISO-8601
    time (``2026-11-25T12:00:00Z``; no zone means UTC). Raises ValueError otherwise."""
    match = _DURATION.match(text)
    if match:
        return now_ms - int(float(match.group(1)) * _UNIT_S[match.group(2)] * 1000)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (90, 15m, 2h, 1d) nor an ISO-8601 "
                         "time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _age(now_ms: int, ts_ms: int | None) -> float | None:
    return None if ts_ms is None else max(0.0, (now_ms - ts_ms) / 1000)


def map_rows(known: Iterable[str], states: Iterable[MapState | tuple[str, str]],
             now_ms: int) -> list[MapRow]:
    """Every known map (running when it has no record) plus every map named on the topic.

    ``states`` holds decoded values or ``(key, error)`` pairs for undecodable ones."""
    rows: dict[str, MapRow] = {name: MapRow(name, "running", None, None, None) for name in known}
    for item in states:
        if isinstance(item, MapState):
            rows[item.map] = MapRow(item.map, item.state, item.reason, item.ts_ms,
                                    _age(now_ms, item.ts_ms))
        else:
            rows[item[0]] = MapRow(item[0], "unreadable", item[1], None, None)
    return [rows[name] for name in sorted(rows)]


def topic_lags(committed: dict[tuple[str, int], int],
               watermarks: dict[tuple[str, int], tuple[int, int]]) -> list[TopicLag]:
    """Committed vs end offsets summed per topic.

    ``committed`` maps (topic, partition) to the committed offset (negative: none, the group
    would start at the earliest offset); ``watermarks`` maps (topic, partition) to (start, end).
    A partition whose watermarks are unknown (topic deleted) counts nothing. A committed offset
    below the log start counts the records in between as expired: retention deleted them before
    the group read them."""
    per_topic: dict[str, list[tuple[int, int, int, int]]] = {}
    for (topic, partition), offset in committed.items():
        if (topic, partition) not in watermarks:
            continue
        low, high = watermarks[(topic, partition)]
        position = offset if offset >= 0 else low
        expired = low - offset if 0 <= offset < low else 0
        per_topic.setdefault(topic, []).append(
            (max(offset, 0), high, max(0, high - max(position, low)), expired))
    return [TopicLag(topic, len(parts), sum(p[0] for p in parts), sum(p[1] for p in parts),
                     sum(p[2] for p in parts), sum(p[3] for p in parts))
            for topic, parts in sorted(per_topic.items())]


def summarize_parked(entries: Iterable[Any], maps: MapRegistry | None = None) -> list[ParkedSummary]:
    """Count per map and the oldest entry (`streams.status.ParkedEntry`-shaped items), with the
    map that would bring what the oldest waits for when ``maps`` is given.

    Deletes of records never written are counted apart: they wait, by design, for a create that
    may still come and are no reason for alarm, so they never make the oldest age.
    """
    by_map: dict[str, list[Any]] = {}
    for entry in entries:
        by_map.setdefault(entry.map, []).append(entry)
    out = []
    for name, items in sorted(by_map.items()):
        waiting = [e for e in items if not getattr(e, "unwritten_delete", False)]
        held = len(items) - len(waiting)
        if not waiting:
            out.append(ParkedSummary(name, 0, "", "", 0.0, held))
            continue
        oldest = min(waiting, key=lambda e: e.parked_ms)
        why = awaited(maps, oldest.waits_for) if maps is not None else None
        out.append(ParkedSummary(name, len(waiting), oldest.change_id, oldest.waits_for,
                                 round(oldest.age_s, 1), held,
                                 why.brought_by if why else (), why.hint if why else ""))
    return out


def summarize_dlq(letters: Iterable[DeadLetter], since_ms: int | None, now_ms: int) -> DlqSummary:
    """Counts by (stage, map, error class), most frequent first; ``recent`` counts the records
    at or after ``since_ms`` (every record when None); the newest record's time and age."""
    counts: Counter[tuple[str, str, str]] = Counter()
    newest: int | None = None
    recent = total = 0
    for letter in letters:
        total += 1
        counts[(letter.stage, letter.map or "-", letter.error_class)] += 1
        if letter.ts_ms is not None and (newest is None or letter.ts_ms > newest):
            newest = letter.ts_ms
        if since_ms is None or (letter.ts_ms is not None and letter.ts_ms >= since_ms):
            recent += 1
    rows = tuple(DlqCount(s, m, e, n) for (s, m, e), n in
                 sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return DlqSummary(total, since_ms, recent, newest, _age(now_ms, newest), rows)


def health_problems(report: StatusReport, max_parked_age_s: float) -> list[str]:
    """Why the pipeline needs attention (empty: healthy). Lag without progress is not judged."""
    problems = [f"map {m.map} is paused" + (f": {m.reason}" if m.reason else "")
                for m in report.maps if m.state == "paused"]
    problems += [f"map {m.map}: sync.control record cannot be read ({m.reason})"
                 for m in report.maps if m.state == "unreadable"]
    if report.dlq.recent:
        when = "" if report.dlq.since_ms is None else " since the --dlq-since time"
        problems.append(f"{report.dlq.recent} dead letter(s) on sync.dlq{when}")
    problems += [f"{p.count} change(s) of map {p.map} parked; the oldest for {p.oldest_age_s:.0f}s "
                 f"(> {max_parked_age_s:g}s), waiting for {p.oldest_waits_for}"
                 + (f"; {p.oldest_hint}" if p.oldest_hint else "")
                 for p in report.parked if p.oldest_age_s > max_parked_age_s]
    problems += [f"{t.expired} record(s) of {t.topic} were deleted by retention before group {g.group} "
                 f"({g.role}) read them: run `dualwrite reconcile`, then `dualwrite replay --repair` "
                 "for what differs"
                 for g in report.groups for t in g.topics if t.expired]
    return problems


def report_json(report: StatusReport) -> dict[str, Any]:
    """The ``--json`` document: every section, plus ``healthy`` and ``problems``."""
    doc = asdict(report)
    doc["groups"] = [{**asdict(g), "lag": g.lag, "condition": g.condition} for g in report.groups]
    doc["problems"] = list(report.problems)
    doc["healthy"] = not report.problems
    return doc


# -------------------------------------------------------------------------------------- gathering


@dataclass
class Cluster:
    """One admin client and the topics the cluster has, shared by every gathering step."""

    settings: Settings
    admin: AdminClient
    kafka: KafkaConfig
    topics: dict[str, int]  # name -> partition count
    timeout_s: float
    prefix: str = ""

    def name(self, topic: str) -> str:
        return self.prefix + topic


def connect(settings: Settings, timeout_s: float, prefix: str = "") -> Cluster:
    """Raises `KafkaUnreachable` when no broker answers within ``timeout_s`` (`KafkaRefused`
    when it answers but refuses the client's credentials, certificate or protocol)."""
    client = settings.kafka.client_config()
    quiet: dict[str, str | int | float | bool] = {
        **client, "log_level": 0,
        "socket.connection.setup.timeout.ms": max(1000, int(timeout_s * 1000))}
    admin = AdminClient(quiet)
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        detail = error.str() if hasattr(error, "str") else str(error)
        raise kafka_failure(KafkaConfig(bootstrap_servers=settings.kafka.bootstrap_servers,
                                        client=settings.kafka.librdkafka()), detail) from None
    topics = {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}
    servers = client.pop("bootstrap.servers")
    return Cluster(settings, admin, KafkaConfig(bootstrap_servers=servers,
                                                client={**client, "log_level": "0"}),
                   topics, timeout_s, prefix)


def watermarks(cluster: Cluster, topics: Iterable[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(start, end) offsets of every partition of the topics that exist."""
    tps = [TopicPartition(t, p) for t in sorted(set(topics)) if t in cluster.topics
           for p in range(cluster.topics[t])]
    if not tps:
        return {}
    out: dict[tuple[str, int], tuple[int, int]] = {}
    starts = cluster.admin.list_offsets({tp: OffsetSpec.earliest() for tp in tps},  # type: ignore[no-untyped-call]
                                        request_timeout=cluster.timeout_s)
    ends = cluster.admin.list_offsets({tp: OffsetSpec.latest() for tp in tps},  # type: ignore[no-untyped-call]
                                      request_timeout=cluster.timeout_s)
    for tp in tps:
        low = _by_tp(starts, tp).result(cluster.timeout_s).offset
        high = _by_tp(ends, tp).result(cluster.timeout_s).offset
        out[(tp.topic, tp.partition)] = (low, high)
    return out


def _by_tp(futures: dict[TopicPartition, Any], tp: TopicPartition) -> Any:
    for key, future in futures.items():
        if key.topic == tp.topic and key.partition == tp.partition:
            return future
    raise KeyError(tp)


def read_map_rows(cluster: Cluster, known: Sequence[str], now_ms: int) -> list[MapRow]:
    raw = read_compacted(cluster.kafka, cluster.name(CONTROL_TOPIC), timeout=cluster.timeout_s)
    states: list[MapState | tuple[str, str]] = []
    for key, value in raw.items():
        if value is None:
            continue
        try:
            states.append(decode_model(MapState, value))
        except DecodeError as exc:
            states.append((key.decode(errors="replace"), str(exc)))
    return map_rows(known, states, now_ms)


def group_lag(cluster: Cluster, group: str, role: str, expected: Sequence[str] = ()) -> GroupLag:
    """Lag of one group on every topic it committed to; a group without any committed offset
    is not started, and its lag is counted from the start of the ``expected`` topics."""
    request = [ConsumerGroupTopicPartitions(group)]
    result = cluster.admin.list_consumer_group_offsets(request, request_timeout=cluster.timeout_s)
    listed = result[group].result(cluster.timeout_s).topic_partitions or []
    committed = {(tp.topic, tp.partition): tp.offset for tp in listed if tp.offset >= 0}
    started = bool(committed)
    if not started:
        committed = {(t, p): -1 for t in expected if t in cluster.topics
                     for p in range(cluster.topics[t])}
    marks = watermarks(cluster, {t for t, _ in committed})
    state, members = describe_group(cluster, group)
    return GroupLag(group, role, started, tuple(topic_lags(committed, marks)), state, members)


def describe_group(cluster: Cluster, group: str) -> tuple[str, int]:
    """The group's state as the broker names it (lower case) and how many members it has."""
    futures = cluster.admin.describe_consumer_groups([group], request_timeout=cluster.timeout_s)
    description = futures[group].result(cluster.timeout_s)
    state = getattr(description.state, "name", str(description.state)).lower()
    return state, len(description.members or [])


def pipeline_groups(cluster: Cluster, app_id: str,
                    sink_groups: dict[str, str | None] | None = None) -> list[GroupLag]:
    """The worker's group and each sink's (the sink's own default group id unless given)."""
    out = [group_lag(cluster, app_id, "worker")]
    for target in TARGETS:
        sink = SinkSettings(target=target, group_id=(sink_groups or {}).get(target))
        out.append(group_lag(cluster, sink.group, f"sink {target}",
                             [cluster.name(commands_topic(sink.target))]))
    return out


def read_parked_entries(cluster: Cluster, app_id: str) -> tuple[bool, list[Any]]:
    """The worker's parked changes; (False, []) when its changelog topic does not exist."""
    changelog = f"{app_id}-parked-changelog"
    if changelog not in cluster.topics:
        return False, []
    from dualwrite.commands.worker import build_config
    from streams.status import read_parked

    settings = cluster.settings.model_copy(update={"topics": cluster.settings.topics.model_copy(
        update={"partitions": cluster.topics[changelog]})})
    config = build_config(settings, app_id=app_id, data_dir=None)
    entries = asyncio.run(asyncio.wait_for(read_parked(config, timeout_s=cluster.timeout_s),
                                           cluster.timeout_s + 5))
    return True, entries


def read_dlq(cluster: Cluster) -> list[DeadLetter]:
    """Every record of ``sync.dlq`` up to its end at call time (none when the topic is missing),
    read by `dualwrite.ops.dlq` (the reader behind `dualwrite dlq`)."""
    topic = cluster.name(DLQ_TOPIC)
    if topic not in cluster.topics:
        return []
    return read_dead_letters(cluster.kafka, topic=topic, timeout=cluster.timeout_s)


def read_sources(cluster: Cluster, now_ms: int) -> list[SourceRow]:
    raw = read_compacted(cluster.kafka, cluster.name(SOURCE_OFFSETS_TOPIC), timeout=cluster.timeout_s)
    rows = []
    for value in raw.values():
        if value is None:
            continue
        try:
            offset = decode_model(SourceOffset, value)
        except DecodeError:
            continue  # not a checkpoint this version can read
        rows.append(SourceRow(offset.system, offset.table, offset.snapshot_done, offset.ts_ms,
                              _age(now_ms, offset.ts_ms) or 0.0))
    return sorted(rows, key=lambda r: (r.system, r.table))


def applied_rows(cluster: Cluster) -> list[AppliedRow]:
    names = {t: cluster.name(applied_topic(t)) for t in TARGETS}  # type: ignore[arg-type]
    marks = watermarks(cluster, names.values())
    out = []
    for target, topic in names.items():
        parts = [v for (t, _), v in marks.items() if t == topic]
        out.append(AppliedRow(target, sum(h for _, h in parts), sum(h - lo for lo, h in parts)))
    return out


def gather(settings: Settings, options: StatusOptions, known_maps: Sequence[str],
           registry: MapRegistry | None = None) -> StatusReport:
    """Read every section from Kafka (``registry`` names the map that brings what a parked
    change waits for). Raises `OpsError` (`KafkaUnreachable`), KafkaException or TimeoutError."""
    cluster = connect(settings, options.timeout_s, options.topic_prefix)
    now_ms = int(time.time() * 1000)
    maps = read_map_rows(cluster, known_maps, now_ms)
    groups = pipeline_groups(cluster, options.app_id, {"finance": options.finance_group,
                                                       "dataverse": options.dataverse_group})
    parked_available, entries = read_parked_entries(cluster, options.app_id)
    dlq = summarize_dlq(read_dlq(cluster), options.dlq_since_ms, now_ms)
    report = StatusReport(
        bootstrap=settings.kafka.bootstrap_servers, now_ms=now_ms, maps=tuple(maps),
        groups=tuple(groups), parked_available=parked_available,
        parked=tuple(summarize_parked(entries, registry)), dlq=dlq, sources=tuple(read_sources(cluster, now_ms)),
        applied=tuple(applied_rows(cluster)))
    return replace(report, problems=tuple(health_problems(report, options.max_parked_age_s)))


# ------------------------------------------------------------------------------------- formatting


def _ago(age_s: float | None) -> str:
    if age_s is None:
        return "-"
    if age_s < 120:
        return f"{age_s:.0f}s ago"
    if age_s < 7200:
        return f"{age_s / 60:.0f}m ago"
    if age_s < 172800:
        return f"{age_s / 3600:.1f}h ago"
    return f"{age_s / 86400:.1f}d ago"


def tables(report: StatusReport) -> list[Any]:
    """One Rich table per section, in reading order, then where the sinks' budget is."""
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    maps = Table(title="Map states (sync.control; no record = running)")
    for col in ("map", "state", "reason", "since"):
        maps.add_column(col)
    for m in report.maps:
        style = "red" if m.state != "running" else ""
        maps.add_row(m.map, f"[{style}]{m.state}[/{style}]" if style else m.state, escape(m.reason or ""),
                     _ago(m.age_s) if m.ts_ms is not None else "(no record)")

    lag = Table(title="Consumer lag (committed vs end offset)")
    for col in ("group", "role", "condition", "members", "topic", "partitions", "committed",
                "end", "lag"):
        lag.add_column(col, justify="right" if col in ("partitions", "committed", "end", "lag") else "left")
    for g in report.groups:
        condition = g.condition if g.started else f"[yellow]{g.condition}[/yellow]"
        members = f"{g.members} ({g.state})"
        if not g.topics:
            lag.add_row(g.group, g.role, condition, members, "-", "", "", "", "")
        for t in g.topics:
            lag.add_row(g.group, g.role, condition, members, t.topic, str(t.partitions),
                        str(t.committed), str(t.end),
                        str(t.lag) + (f" [red](+{t.expired} expired)[/red]" if t.expired else ""))

    parked = Table(title="Parked changes (worker's parked table)")
    for col in ("map", "count", "oldest", "age", "waits for", "brought by", "unwritten deletes"):
        parked.add_column(col)
    if not report.parked_available:
        parked.add_row("-", "", "no parked changelog: the worker never ran with this app id", "", "",
                       "", "")
    for p in report.parked:
        parked.add_row(p.map, str(p.count), escape(p.oldest_change_id),
                       f"{p.oldest_age_s:.0f}s" if p.count else "", escape(p.oldest_waits_for),
                       escape(p.oldest_hint), str(p.unwritten_deletes))

    d = report.dlq
    newest = "" if d.newest_ts_ms is None else f", the newest {_ago(d.newest_age_s)}"
    dlq = Table(title=f"Dead letters (sync.dlq): {d.total}{newest}")
    for col in ("stage", "map", "error class", "count"):
        dlq.add_column(col, justify="right" if col == "count" else "left")
    for c in d.counts:
        dlq.add_row(escape(c.stage), escape(c.map), escape(c.error_class), str(c.count))

    sources = Table(title="Source checkpoints (sync.source-offsets)")
    for col in ("system", "table", "snapshot", "checkpoint"):
        sources.add_column(col)
    for s in report.sources:
        sources.add_row(s.system, s.table, "done" if s.snapshot_done else "[yellow]in progress[/yellow]",
                        _ago(s.age_s))

    applied = Table(title="Sink acks (sync.applied.<target>)")
    for col in ("target", "acks published", "retained (compacted)"):
        applied.add_column(col, justify="left" if col == "target" else "right")
    for a in report.applied:
        applied.add_row(a.target, str(a.published), str(a.retained))
    return [maps, lag, parked, dlq, sources, applied, Text(report.budget_note, style="dim")]
