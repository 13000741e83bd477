"""What ``ingest`` makes of one CDC record, without Kafka: the agent sends what it returns.

    Ingest(maps, cdc_tables, versions, view, gate_max_bytes).take(topic, key, value, offset, ...)
        -> None        nothing to do: a tombstone after a delete, or a duplicate version
           Refused     the record cannot be decoded or routed: to the DLQ (stage, error, message)
           Taken       the gate records to send, in order, and the maps that refused the change

Decode the key and the event, dedupe by source version (`streams.dedupe`), record the version,
route (`streams.route.route_change`, answering lookups from the worker's `FactView`) and learn
into the view what ingest knows before the gate hears it (a delete; a lookup row's indexed
columns). The two state changes happen here, before anything is sent: the agent sends the
records after ``take`` returns, and commits offsets only after the producer is flushed, so a
crash replays the record, which dedupe lets through at the same offset (`streams.dedupe`).

`bench.decisions` runs the P1 workload through this same object.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from streams import dedupe, metrics
from streams.factview import FactView, deleted_key
from streams.maps.registry import MapRegistry
from streams.route import Rejection, route_change
from streams.wire import FactMsg, gate_records
from topics import DecodeError, decode_event, decode_key

__all__ = ["Ingest", "Refused", "Taken"]


@dataclass(frozen=True)
class Refused:
    """The record itself cannot be taken: to the DLQ with these headers."""

    stage: str  # "decode" or "route"
    error: str
    message: str


@dataclass(frozen=True)
class Taken:
    records: list[tuple[bytes, bytes]]  # gate records (key, value), to send in this order
    rejected: list[Rejection]  # maps that refused the change: each to the DLQ, counted to its pause
    # The records' messages, in the same order: an engine that handles a record where it is made
    # (`streams.engine`) needs no decode of what was just encoded.
    messages: list[Any] = field(default_factory=list)


class Ingest:
    """``versions`` is written through (its changelog); ``reads`` reads it (by default the
    same), e.g. straight from its store (`streams.gatekeeper.StoreReads`)."""

    def __init__(self, maps: MapRegistry, cdc_tables: Mapping[str, tuple[str, str]],
                 versions: MutableMapping[str, Any], view: FactView, gate_max_bytes: int,
                 reads: Mapping[str, Any] | None = None) -> None:
        self.maps = maps
        self.cdc_tables = cdc_tables
        self.versions = versions
        self.reads = versions if reads is None else reads
        self.view = view
        self.gate_max_bytes = gate_max_bytes

    def take(self, topic: str, key: bytes | None, value: bytes | None, offset: int, *,
             retried: bool, now_ms: int) -> Taken | Refused | None:
        """One record of CDC topic ``topic`` at ``offset``; ``retried``: it carries
        ``dualwrite.retry`` (`dualwrite dlq retry`, `dualwrite replay`)."""
        if value is None:  # tombstone after a delete: the "d" event carried the change
            metrics.child(metrics.DROPPED, "-", metrics.TOMBSTONE).inc()
            return None
        try:
            record_id = decode_key(key).id
            change = decode_event(value)
        except DecodeError as exc:
            return Refused("decode", f"DecodeError.{exc.reason.value}", str(exc))
        assert change is not None
        # The topic names the table; the envelope's own source is the fallback.
        system, table = self.cdc_tables.get(topic) or (change.source.system, change.source.table)
        metrics.child(metrics.EVENTS_IN, system, table).inc()
        seen_key = dedupe.seen_key(system, table, record_id)
        version = change.source.version_int
        seen = dedupe.seen_from(self.reads.get(seen_key))
        if dedupe.is_duplicate(seen, version, offset, retried=retried):
            metrics.child(metrics.DUPLICATES, system, table).inc()
            return None
        self.versions[seen_key] = dedupe.Seen(version=version, offset=offset)
        if change.is_delete:
            self.view.learn(deleted_key(system, table, record_id), {"version": version}, version)
        try:
            routed = route_change(self.maps, system, table, record_id, change, now_ms, self.view.get,
                                  redriven=retried, prev_version=None if seen is None else seen["version"])
            records = gate_records(routed.messages, self.gate_max_bytes)
        except Exception as failure:  # a shape no check foresaw, or too big: this record only
            return Refused("route", type(failure).__name__, str(failure))
        for map_name, reason in routed.dropped:
            metrics.child(metrics.DROPPED, map_name, reason).inc()
        for fact_key, msg in routed.messages:
            if isinstance(msg, FactMsg) and msg.value is not None:
                self.view.learn(fact_key, msg.value, msg.version)  # known here before the gate hears
        return Taken(records, routed.rejected, [msg for _key, msg in routed.messages])
