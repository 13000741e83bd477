"""`dualwrite replay`: re-drive a map's or a topic's CDC history through the live processor.

Replay never runs a processor of its own and never touches the worker's consumer group: it
reads the selected range of each CDC partition with a consumer that assigns partitions and
commits nothing (`read_range`), decides per record, and sends what must go again back to its
topic through `dualwrite dlq retry`'s mechanism (`dualwrite.ops.dlq.retry_headers`, produced
by `dualwrite.ops.dlq.redrive`): the ``dualwrite.retry`` header lets the worker's dedupe take
that source version once more, and the commands it makes carry `CommandSource.redriven`, so
the sink writes one even at the version it last applied. Everything downstream (lookups, the
gate, transactions, the sink's change sets, echo and no-op checks) applies as for a live change.

Default mode (`classify`): a record whose source version the target acknowledged (an
`Applied` ack on ``sync.applied.<target>`` of the same source record at that version or a newer
one, for every selected map that acked the record) is *already applied* and not re-driven, so a
replay of applied history costs no writes by construction. A row every selected map's filter
refuses is *filtered*, and one the worker's dedupe recorded (its ``versions`` changelog) and no
dead letter names is *in the processor* (parked until what it waits for arrives, or a no-op):
the processor would drop or park them again. The rest, dead-lettered (`dead_lettered`: at
ingest, at the gate or at a sink) or never seen by the worker, are re-driven: only the latest
record per source record (a CDC image is the whole row; older ones are *superseded*). Run it
with the worker caught up: a record it has not read yet counts as never seen. Records of tables
no selected map reads from (lookup rows, the targets' own feeds: also two-way edits flowing
back) are never re-driven; tombstones and undecodable records neither (the latter are on the
DLQ already). Limits: the ack topic is compacted, so an ack that
compaction removed is only known through the newer ack of its target row; a fan-out map counts
as applied once any member's copy is acked at that version.

Repair mode (`repair_plan`): the last image per source record in range stands in for the
source table (`HistoryTables`), `dualwrite.reconcile` computes what the target must hold with
the processor's transform and compares it with the target's rows read through its API; only the
keys found *missing* or *different* are re-driven (the latest record of their source record).
Target rows no replayed record produces are reported as *extra*, never deleted; a narrower range
than the whole topic reports the target rows of records outside it as extra as well.

Ranges (`Bound`, `resolve_ranges`): ``--from`` (inclusive) and ``--to`` (exclusive) take an
offset for every partition (``42``), one partition's offset (``1:42``) or an ISO time (the first
record at or after it, via ``offsets_for_times``); offsets only when one topic is replayed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.common.kafka import KafkaConfig, KafkaRecord, read_compacted
from dualwrite.ops.dlq import DeadLetter, retry_headers
from dualwrite.ops.errors import OpsError
from dualwrite.ops.kafka import OutRecord, reaching
from dualwrite.reconcile import MapReport, Row, Tables, reconcile
from streams.dedupe import seen_from
from streams.maps import MapRegistry
from streams.maps.model import TableMap
from streams.pending import split_record_ref
from topics import Applied, DecodeError, System, decode_ack, decode_event, decode_key

__all__ = [
    "AppliedIndex",
    "BadRange",
    "Bound",
    "Change",
    "Decided",
    "HistoryTables",
    "RepairPlan",
    "Summary",
    "Verdict",
    "applied_index",
    "classify",
    "compare_history",
    "dead_lettered",
    "decide",
    "decode_change",
    "latest_per_record",
    "parse_bound",
    "read_acks",
    "read_range",
    "read_seen",
    "redrive_records",
    "repair_plan",
    "resolve_ranges",
    "watermarks",
]

Partition = tuple[str, int]  # (topic, partition)
Range = tuple[int, int]  # [start, end) offsets


class BadRange(OpsError):
    """A ``--from``/``--to`` value that names no position: usage error."""

    exit_code = 2


# -- ranges -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bound:
    """One ``--from``/``--to`` value: an offset (of one partition, or of every one) or a time."""

    offset: int | None = None
    partition: int | None = None  # None: every partition
    time_ms: int | None = None


def parse_bound(text: str) -> Bound:
    """``42`` (every partition), ``1:42`` (partition 1) or an ISO 8601 time (``2026-12-01T10:00``,
    ``...Z`` or with an offset; without a zone it is UTC)."""
    raw = text.strip()
    if raw.isdigit():
        return Bound(offset=int(raw))
    part, sep, off = raw.partition(":")
    if sep and part.isdigit() and off.isdigit():
        return Bound(offset=int(off), partition=int(part))
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRange(f"{text!r} is not an offset (42), a PARTITION:OFFSET (1:42) or an ISO "
                       "time (2026-12-01T10:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return Bound(time_ms=int(moment.timestamp() * 1000))


OffsetAt = Callable[[str, int, int], int]  # (topic, partition, time_ms) -> first offset at/after


def _pick(bounds: Sequence[Bound], topic: str, partition: int, default: int, offset_at: OffsetAt) -> int:
    """The bound for one partition: its own ``P:O`` wins over a value for every partition."""
    own = [b for b in bounds if b.partition == partition]
    general = [b for b in bounds if b.partition is None]
    if not own and not general:
        return default
    chosen = (own or general)[-1]
    if chosen.time_ms is not None:
        return offset_at(topic, partition, chosen.time_ms)
    assert chosen.offset is not None
    return chosen.offset


def resolve_ranges(bounds: Mapping[Partition, Range], start: Sequence[Bound], end: Sequence[Bound],
                   offset_at: OffsetAt) -> dict[Partition, Range]:
    """``[start, end)`` per partition, clamped to what the log holds (``bounds``: low and high
    watermark); an empty range is left out. Offsets only make sense for one topic (refused for
    more: `BadRange`); a ``P:O`` naming no partition of it is refused too."""
    topics = {t for t, _ in bounds}
    offsets = [b for b in (*start, *end) if b.time_ms is None]
    if offsets and len(topics) > 1:
        raise BadRange("offsets in --from/--to need one topic (--topic, or --map); "
                       f"{len(topics)} are replayed: use a time instead")
    partitions = {p for _, p in bounds}
    for b in offsets:
        if b.partition is not None and b.partition not in partitions:
            raise BadRange(f"partition {b.partition} does not exist (partitions: "
                           f"{', '.join(map(str, sorted(partitions)))})")
    out: dict[Partition, Range] = {}
    for (topic, p), (low, high) in sorted(bounds.items()):
        first = max(low, _pick(start, topic, p, low, offset_at))
        stop = min(high, _pick(end, topic, p, high, offset_at))
        if stop > first:
            out[topic, p] = (first, stop)
    return out


# -- decisions ----------------------------------------------------------------------------------

class Verdict(StrEnum):
    APPLIED = "already applied"
    REDRIVE = "re-drive"
    SUPERSEDED = "superseded"  # an older record of a source record whose latest is re-driven
    FILTERED = "filtered"  # every selected map's filter refuses the row
    IN_PROCESSOR = "in the processor"  # seen by the worker, not dead-lettered, not acked (parked)
    FEED = "not a map's source"
    TOMBSTONE = "tombstone"
    UNDECODABLE = "undecodable"


@dataclass(frozen=True)
class Change:
    """A CDC record read back: where it is, and the source record and version it carries."""

    record: KafkaRecord
    system: System
    table: str
    record_id: str | None = None
    version: int | None = None
    row: Mapping[str, Any] | None = None  # None for a delete
    undecodable: bool = False

    @property
    def ref(self) -> tuple[str, str]:
        return (self.record.topic, self.record_id or "")


def decode_change(record: KafkaRecord, system: System, table: str) -> Change:
    """The record as the worker's ingest reads it; a record it would dead-letter is
    ``undecodable``, a tombstone has no version."""
    if record.value is None:
        return Change(record, system, table)
    try:
        record_id = decode_key(record.key).id
        event = decode_event(record.value)
    except DecodeError:
        return Change(record, system, table, undecodable=True)
    assert event is not None
    return Change(record, system, table, record_id, event.source.version_int,
                  None if event.is_delete else event.row)


SourceRef = tuple[str, str, str]  # (system, table, source record id)
AppliedIndex = dict[SourceRef, dict[str, int]]  # -> map name -> newest acked source version


def applied_index(acks: Iterable[Applied]) -> AppliedIndex:
    """The newest source version each map's target acknowledged, per source record."""
    index: AppliedIndex = {}
    for ack in acks:
        by_map = index.setdefault((ack.source_system, ack.source_table, ack.source_id), {})
        by_map[ack.map] = max(by_map.get(ack.map, -1), ack.source_version)
    return index


def classify(change: Change, index: AppliedIndex, maps: Sequence[TableMap],
             seen: Mapping[SourceRef, int] | None = None,
             dead: Collection[tuple[SourceRef, int]] = ()) -> Verdict:
    """What replay does with one record, ``maps`` being the selected maps reading its table,
    ``seen`` the newest version the worker's dedupe recorded per source record and ``dead`` the
    (source record, version) pairs on the DLQ.

    Already applied: some selected map acked this source record, and every selected map that
    acked it did so at this version or a newer one (a newer ack means the target moved past it;
    re-driving it would be dropped as older anyway). A map that never acked the record is not
    asked (it filters the record out, or failed it). Filtered: a row every selected map's filter
    refuses; the processor would drop it again. In the processor: not acked, but the worker saw
    this version and did not dead-letter it (a change parked until what it waits for arrives,
    a no-op, a stale change): re-driving it would add a copy of what is already there.
    Everything else is re-driven: dead-lettered, or never seen by the worker (lost)."""
    if change.undecodable:
        return Verdict.UNDECODABLE
    if change.version is None or change.record_id is None:
        return Verdict.TOMBSTONE
    ref = (change.system, change.table, change.record_id)
    acked = index.get(ref, {})
    if not maps:
        return Verdict.APPLIED if any(v >= change.version for v in acked.values()) else Verdict.FEED
    relevant = [v for name, v in acked.items() if name in {m.name for m in maps}]
    if relevant and all(v >= change.version for v in relevant):
        return Verdict.APPLIED
    if change.row is not None and not any(m.passes(change.row) for m in maps):
        return Verdict.FILTERED
    if (ref, change.version) not in dead and (seen or {}).get(ref, -1) >= change.version:
        return Verdict.IN_PROCESSOR
    return Verdict.REDRIVE


def dead_lettered(letters: Iterable[DeadLetter], cdc: Mapping[str, tuple[System, str]]) -> set[tuple[SourceRef, int]]:
    """The (source record, version) of every dead letter that names one: a CDC record
    dead-lettered at ingest (by its topic and key), a change the gate dead-lettered or a command
    a sink did (both carry their `CommandSource`). Letters naming none (undecodable) are left out."""
    out: set[tuple[SourceRef, int]] = set()
    for d in letters:
        parsed = d.value_json()
        source = parsed.get("source") if isinstance(parsed, dict) else None
        if not isinstance(source, dict):
            continue
        version = source.get("version")
        if not (isinstance(version, int) or (isinstance(version, str) and version.isdigit())):
            continue
        if d.original_topic is not None and d.original_topic in cdc:
            try:
                record_id = decode_key(d.key).id
            except DecodeError:
                continue
            system, table = cdc[d.original_topic]
            out.add(((system, table, record_id), int(version)))
        elif all(isinstance(source.get(k), str) for k in ("system", "table", "id")):
            out.add(((source["system"], source["table"], source["id"]), int(version)))
    return out


def latest_per_record(changes: Iterable[Change]) -> dict[tuple[str, str], Change]:
    """The newest record (highest version, then latest offset) per (topic, source record id)."""
    latest: dict[tuple[str, str], Change] = {}
    for c in changes:
        if c.version is None or c.record_id is None:
            continue
        held = latest.get(c.ref)
        if held is None or (c.version, c.record.offset) >= (held.version or 0, held.record.offset):
            latest[c.ref] = c
    return latest


def redrive_records(changes: Iterable[Change]) -> list[OutRecord]:
    """Each change's original key and value to its topic, with the retry headers."""
    return [(c.record.topic, c.record.key, c.record.value,
             retry_headers(f"replay:{c.record.topic}:{c.record.partition}:{c.record.offset}"))
            for c in changes]


@dataclass
class Summary:
    """What a replay read and did, by verdict; ``dead_letters``: DLQ records of the range."""

    reread: int = 0
    verdicts: dict[Verdict, int] = field(default_factory=lambda: dict.fromkeys(Verdict, 0))
    redriven: int = 0
    dead_letters: int = 0
    unresolved: int = 0  # repair: keys that differ but have no record in range, or that no map resolves
    extra: int = 0  # repair: target rows no replayed record produces (reported, never deleted)

    def as_json(self) -> dict[str, int]:
        return {"reread": self.reread, "already_applied": self.verdicts[Verdict.APPLIED],
                "redrive_candidates": self.verdicts[Verdict.REDRIVE],
                "superseded": self.verdicts[Verdict.SUPERSEDED],
                "filtered": self.verdicts[Verdict.FILTERED],
                "in_processor": self.verdicts[Verdict.IN_PROCESSOR], "not_a_source": self.verdicts[Verdict.FEED],
                "tombstones": self.verdicts[Verdict.TOMBSTONE],
                "undecodable": self.verdicts[Verdict.UNDECODABLE], "redriven": self.redriven,
                "dead_letters": self.dead_letters, "unresolved": self.unresolved, "extra": self.extra}


@dataclass
class Decided:
    """The outcome of `decide`: counts, the changes to re-drive, and (for repair) every change."""

    summary: Summary
    chosen: list[Change]
    history: list[Change]


def decide(changes: Iterable[Change], index: AppliedIndex,
           maps: Mapping[tuple[str, str], Sequence[TableMap]], seen: Mapping[SourceRef, int],
           dead: Collection[tuple[SourceRef, int]], *, keep_history: bool = False) -> Decided:
    """`classify` every change (``maps``: the selected maps per source table), keep the latest
    re-drive candidate per source record (the older ones are counted superseded), in topic
    order; ``keep_history`` keeps every change too (repair compares their last images)."""
    summary = Summary()
    candidates: list[Change] = []
    history: list[Change] = []
    for change in changes:
        summary.reread += 1
        verdict = classify(change, index, maps.get((change.system, change.table), ()), seen, dead)
        summary.verdicts[verdict] += 1
        if verdict is Verdict.REDRIVE:
            candidates.append(change)
        if keep_history:
            history.append(change)
    chosen = sorted(latest_per_record(candidates).values(),
                    key=lambda c: (c.record.topic, c.record.partition, c.record.offset))
    summary.verdicts[Verdict.SUPERSEDED] = len(candidates) - len(chosen)
    summary.verdicts[Verdict.REDRIVE] = len(chosen)
    return Decided(summary, chosen, history)


# -- repair -------------------------------------------------------------------------------------

class HistoryTables:
    """`Tables` whose replayed source tables hold the last image per record from the history
    (a record whose last change is a delete is absent); every other table is read from
    ``base`` (the APIs)."""

    def __init__(self, base: Tables, latest: Mapping[tuple[str, str], Change]) -> None:
        self.base = base
        self._rows: dict[tuple[str, str], list[Row]] = {}
        for c in latest.values():
            rows = self._rows.setdefault((c.system, c.table), [])
            if c.row is not None:
                rows.append(c.row)

    def rows(self, system: System, table: str) -> Sequence[Row]:
        if (system, table) in self._rows:
            return self._rows[system, table]
        return self.base.rows(system, table)

    def key_fields(self, table: str) -> tuple[str, ...]:
        return self.base.key_fields(table)


@dataclass
class RepairPlan:
    """Which changes to re-drive so the target holds what the history says, and what not."""

    changes: list[Change] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # target record key -> missing/different
    extra: list[tuple[str, str]] = field(default_factory=list)  # (map, target record key)
    unresolved: list[tuple[str, str]] = field(default_factory=list)  # (map, why)


def repair_plan(registry: MapRegistry, reports: Sequence[MapReport],
                latest: Mapping[tuple[str, str], Change], topic_of: Callable[[TableMap], str]) -> RepairPlan:
    """From reconcile's reports over `HistoryTables`: the latest record of every source record
    whose target row is missing or different (once per record, however many rows it writes)."""
    plan = RepairPlan()
    chosen: dict[tuple[str, str], Change] = {}
    for report in reports:
        m = registry[report.map]
        wrong = [(k, s, "missing") for k, s in report.missing] + \
                [(d.key, d.source_id, "different") for d in report.different]
        for key, sid, reason in wrong:
            change = None
            if sid is not None:
                change = latest.get((topic_of(m), split_record_ref(sid, m.fan_out is not None)[0]))
            if change is None:
                plan.unresolved.append((m.name, f"{key}: {reason}, but no record of it in range"))
                continue
            plan.reasons[key] = reason
            chosen.setdefault(change.ref, change)
        plan.extra += [(m.name, k) for k, _ in report.extra]
        plan.unresolved += [(m.name, f"source {u.source_id}: {u.reason} {' '.join(u.missing)}".strip())
                            for u in report.unresolved]
    plan.changes = sorted(chosen.values(), key=lambda c: (c.record.topic, c.record.partition, c.record.offset))
    return plan


def compare_history(registry: MapRegistry, base: Tables, latest: Mapping[tuple[str, str], Change],
                    names: Sequence[str]) -> list[MapReport]:
    """Reconcile's comparison of ``names`` with the history standing in for their sources."""
    return reconcile(registry, HistoryTables(base, latest), names)


# -- Kafka --------------------------------------------------------------------------------------

def _consumer(config: KafkaConfig) -> Consumer:
    """A consumer of no group that matters: it assigns partitions and commits nothing."""
    return Consumer({**config.base(), "group.id": f"dualwrite-replay-{uuid.uuid4()}",
                     "enable.auto.commit": False, "enable.partition.eof": False,
                     "auto.offset.reset": "earliest"})


def watermarks(config: KafkaConfig, topics: Sequence[str], timeout: float) -> dict[Partition, Range]:
    """(low, high) of every partition of ``topics``; a topic that does not exist has none."""
    with reaching(config):
        consumer = _consumer(config)
        try:
            out: dict[Partition, Range] = {}
            for topic in topics:
                info = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
                if info is None or info.error is not None:
                    continue
                for p in sorted(info.partitions):
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                    out[topic, p] = (int(low), int(high))
            return out
        finally:
            consumer.close()


def offset_lookup(config: KafkaConfig, timeout: float) -> OffsetAt:
    """``offsets_for_times`` for one partition: the first offset at or after the time (the end
    of the log when no record is that recent)."""

    def at(topic: str, partition: int, time_ms: int) -> int:
        with reaching(config):
            consumer = _consumer(config)
            try:
                [found] = consumer.offsets_for_times([TopicPartition(topic, partition, time_ms)],
                                                     timeout=timeout)
                if found.offset >= 0:
                    return int(found.offset)
                return int(consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                          timeout=timeout)[1])
            finally:
                consumer.close()

    return at


def read_range(config: KafkaConfig, ranges: Mapping[Partition, Range], *, timeout: float) -> Iterator[KafkaRecord]:
    """Every record in ``ranges``, in order within each partition. ``timeout``: the longest wait
    without a record before giving up (`TimeoutError`)."""
    if not ranges:
        return
    consumer = _consumer(config)
    try:
        consumer.assign([TopicPartition(t, p, start) for (t, p), (start, _) in ranges.items()])
        remaining = {tp: end for tp, (_, end) in ranges.items()}
        quiet_since = time.monotonic()
        while remaining:
            batch = consumer.consume(500, 0.5)
            if not batch:
                # Offsets may end in gaps (compaction, transaction markers): ask where we are.
                for tp in consumer.position([TopicPartition(t, p) for t, p in remaining]):
                    if tp.offset >= remaining[tp.topic, tp.partition]:
                        del remaining[tp.topic, tp.partition]
                if time.monotonic() - quiet_since > timeout:
                    raise TimeoutError(f"replay read nothing for {timeout:.0f}s with "
                                       f"{len(remaining)} partition(s) unfinished")
                continue
            quiet_since = time.monotonic()
            for msg in batch:
                if msg.error():
                    raise KafkaException(msg.error())
                where = (msg.topic() or "", msg.partition() or 0)
                offset = msg.offset() or 0
                if where not in remaining or offset >= remaining[where]:
                    continue
                _kind, ts = msg.timestamp()
                yield KafkaRecord(topic=where[0], partition=where[1], offset=offset, key=msg.key(),
                                  value=msg.value(), headers=[],  # replay re-sends without them
                                  timestamp_ms=ts if ts and ts > 0 else None)
                if offset + 1 >= remaining[where]:
                    del remaining[where]
    finally:
        consumer.close()


def read_acks(config: KafkaConfig, topics: Iterable[str], timeout: float) -> list[Applied]:
    """The acks of ``topics`` (latest per target row: the topics are compacted)."""
    acks: list[Applied] = []
    with reaching(config):
        for topic in topics:
            for value in read_compacted(config, topic, timeout=timeout).values():
                if value is None:
                    continue
                try:
                    acks.append(decode_ack(value))
                except DecodeError:
                    continue  # the worker dead-letters it; it says nothing about a write
    return acks


def read_seen(config: KafkaConfig, changelog: str, timeout: float) -> dict[SourceRef, int]:
    """The newest source version the worker's dedupe recorded per source record, from its
    ``versions`` table's changelog (``<app id>-versions-changelog``; empty when missing)."""
    out: dict[SourceRef, int] = {}
    with reaching(config):
        latest = read_compacted(config, changelog, timeout=timeout)
    for key, value in latest.items():
        try:
            text = key.decode()
            name = orjson.loads(text) if text.startswith('"') else text
            seen = seen_from(orjson.loads(value)) if value is not None else None
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            continue
        parts = str(name).split(":", 2)
        if seen is not None and len(parts) == 3 and parts[0] in ("dataverse", "finance"):
            system: System = "dataverse" if parts[0] == "dataverse" else "finance"
            out[system, parts[1], parts[2]] = seen["version"]
    return out
