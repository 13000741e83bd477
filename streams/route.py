"""Where a decoded CDC event goes: pure, from the maps alone.

One change event of table T may be four things at once: a lookup row other maps index (a
`FactMsg`), the source of a map (a `Pending` per map), a member of a fan-out map (a `MemberMsg`)
and the target's own feed of a map (an `ObservedMsg`). A row of a table no map writes but some
map's `Dependency` waits for (a Finance customer, for a contract header) is a presence fact.
Each result is (gate key, message); the agent sends it keyed by that key.

An event of a multi-event source transaction goes to the transaction's key as one `TxMsg` with
the changes it starts (none when no map reads its table): the gate counts events, not changes,
against the transaction's size, so a transaction completes whatever the maps make of it.

Facts the worker already knows (``known``, a `streams.factview.FactView`'s ``get``) are collected
here: a change whose facts are all known leaves ``ingest`` keyed by its next real step (its
pairing or its emit key), not by the first fact it needs.

A change one map cannot take is a `Rejection` of that map (stage ``transform`` for a
`TransformError`, ``plan`` for any other error of its first step, ``route`` for a target row
whose key holds a list or an object); the other maps still get the event. What ingest finds
wrong is a lookup column or the target key; a field the map cannot take is found, and
dead-lettered, by the gate when it maps the fields to emit the change: when the full plan of a
change's next step fails, ingest asks for its key alone (`streams.pending.plan` with
``route_only``). A full plan is kept for the gate (`streams.pending.plan_ahead`), which the
batch engine runs on the same objects: a change is transformed once, not once more at the gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams import metrics
from streams.factview import LOOKUPS
from streams.maps.model import fanout_key, present_fact, row_fact
from streams.maps.registry import MapRegistry
from streams.pending import Drop, Need, Pending, Step, plan, plan_ahead, tx_key
from streams.transform import TransformError, lookup_facts
from streams.wire import FactMsg, MemberMsg, ObservedMsg, PendingMsg, TxMsg
from topics import ChangeEvent, CommandSource, target_key

__all__ = ["Known", "Rejection", "Routed", "first_step", "route_change"]


@dataclass(frozen=True)
class Rejection:
    """A change a map cannot take: it goes to the DLQ with these headers."""

    map: str
    stage: str
    error: str
    message: str

    @classmethod
    def of(cls, map_name: str, exc: Exception) -> Rejection:
        stage = "transform" if isinstance(exc, TransformError) else "plan"
        return cls(map_name, stage, type(exc).__name__, str(exc))


@dataclass
class Routed:
    messages: list[tuple[str, FactMsg | PendingMsg | ObservedMsg | TxMsg | MemberMsg]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (map, reason)
    rejected: list[Rejection] = field(default_factory=list)


Known = Callable[[str], dict[str, Any] | None]


def _nothing_known(key: str) -> None:
    return None


def first_step(item: Pending, maps: MapRegistry, known: Known = _nothing_known) -> tuple[Pending, str | Drop]:
    """The item with the facts ``known`` answers, and the gate key of its next step (raises
    `TransformError`).

    A change the map refuses once a locally known fact is added goes to the gate without that
    fact, keyed by it, as it would have without the view: the gate dead-letters it there, or
    parks it when its map is paused (``ingest`` has no gate state to park in).

    The lookup rows ``known`` holds are added before the first plan, which then needs none of
    them (one plan of a change, not one per fact found); when the map refuses the change with
    them, it is walked again from the item as it came, a fact at a time, to find the one to
    leave without.
    """
    found, wanted = _known_lookups(item, maps, known)
    if found:
        try:
            out = _walk(item.with_facts(found), maps, known, wanted)
        except Exception:
            pass  # refused with them: walked from the item as it came, to say which fact did it
        else:
            metrics.child(LOOKUPS, "local").inc(len(found))
            return out
        wanted = None  # the item's own lookups, without the facts found, are not those
    return _walk(item, maps, known, wanted)


class _Either(Mapping[str, Any]):
    """The item's facts, then what ``known`` answers (`lookup_facts` reads earlier facts here)."""

    def __init__(self, facts: Mapping[str, Any], known: Known) -> None:
        self.facts, self.known = facts, known

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.facts.get(key)
        if value is None:
            value = self.known(key)
        return default if value is None else value

    def __iter__(self) -> Iterator[str]:
        return iter(self.facts)

    def __len__(self) -> int:
        return len(self.facts)


def _known_lookups(item: Pending, maps: MapRegistry, known: Known
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, str] | None]:
    """The facts of the item's lookups that it lacks and ``known`` answers, and the item's
    `lookup_facts` once they are added (what its first plan would work out again: the facts it
    read are the item's or those found); none for a change whose first plan asks no lookup (a
    delete) or whose lookup columns the map refuses."""
    if known is _nothing_known or item.op != "upsert":
        return {}, None
    try:
        wanted = lookup_facts(maps[item.map], item.row, reverse=item.reverse, facts=_Either(item.facts, known))
    except Exception:
        return {}, None  # the walk finds and says it
    found = {}
    for key in wanted.values():
        if item.facts.get(key) is None:
            value = known(key)
            if value is not None:
                found[key] = value
    return found, wanted


def _walk(item: Pending, maps: MapRegistry, known: Known,
          wanted: dict[str, str] | None = None) -> tuple[Pending, str | Drop]:
    """`first_step` from ``item``: its plans, adding each fact ``known`` answers that a step needs
    (``wanted``: the item's `lookup_facts`, when known)."""
    before: tuple[Pending, str] | None = None
    while True:
        try:
            step, whole = _step(item, maps, wanted)
            wanted = None  # the next plan is of the item with more facts
        except Exception:
            if before is None:
                raise
            return before
        if isinstance(step, Drop):
            return item, step
        if isinstance(step, Need):
            value = known(step.key)
            if value is not None:
                found = {step.key: value}
                for key in step.more:  # the other lookups it lacks, at once where known
                    more = known(key)
                    if more is not None:
                        found[key] = more
                metrics.child(LOOKUPS, "local").inc(len(found))
                before = (item, step.key)
                item = item.with_facts(found)
                continue
            metrics.child(LOOKUPS, "gate").inc()
        if whole:
            plan_ahead(item, maps, step)  # the gate's own plan of this item, if it handles it in place
        return item, step.key


def _step(item: Pending, maps: MapRegistry, wanted: dict[str, str] | None) -> tuple[Step, bool]:
    """The item's next step as the gate plans it (and True), or, when a field of the row is
    what the map refuses, the step its key alone names (and False): a field the map cannot
    take is the gate's to dead-letter (with the change, for `dualwrite dlq retry`), a lookup
    or the key is ingest's."""
    try:
        return plan(item, maps, wanted=wanted), True
    except Exception:
        return plan(item, maps, route_only=True, wanted=wanted), False


def command_source(table: str, record_id: str, event: ChangeEvent, redriven: bool = False) -> CommandSource:
    """The source of ``event``'s commands: parts a decoded event and key hold valid."""
    src = event.source
    return CommandSource.trusted(src.system, table, record_id, src.version_int, src.ts_ms, src.txid, src.origin,
                                 redriven)


def route_change(maps: MapRegistry, system: str, table: str, record_id: str,
                 event: ChangeEvent, now_ms: int, known: Known = _nothing_known,
                 *, redriven: bool = False, prev_version: int | None = None) -> Routed:
    """``redriven``: the record carries ``dualwrite.retry``; its commands say so
    (`CommandSource.redriven`), so the sink writes them even at the version it applied.
    ``prev_version``: the version of this record seen before (`Pending.prev_version`)."""
    out = Routed()
    row = event.row
    indexed = maps.indexed(system, table)
    source = command_source(table, record_id, event, redriven)
    if indexed and not event.is_delete:
        key = row_fact(system, table, record_id)
        out.messages.append((key, FactMsg(key=key, value={c: row.get(c) for c in indexed},
                                          version=source.version)))
    tx = event.transaction
    grouped = tx is not None and (tx.event_count or 1) > 1 and bool(source.txid)
    members: list[Pending] = []
    for m in maps.sourced_from(system, table):
        item = Pending.trusted(
            id=f"{m.name}:{record_id}:{source.version}", map=m.name,
            op="delete" if event.is_delete else "upsert", row=row, source=source,
            tx_total=tx.event_count if tx else None, tx_order=tx.total_order if tx else None,
            born_ms=now_ms, prev_version=prev_version)
        if grouped:
            members.append(item)  # its first step is the transaction (see `plan`)
            continue
        try:
            item, routed = first_step(item, maps, known)
        except Exception as exc:  # one map's problem with this change, not the line's
            out.rejected.append(Rejection.of(m.name, exc))
            continue
        if isinstance(routed, Drop):
            out.dropped.append((m.name, routed.reason))
        else:
            out.messages.append((routed, PendingMsg(item=item)))
    if grouped and tx is not None:
        key = tx_key(source)
        out.messages.append((key, TxMsg(event=f"{system}:{table}:{record_id}:{source.version}",
                                        total=tx.event_count or 1, items=members)))
    for m in maps.fanned_over(system, table):
        assert m.fan_out is not None
        member = row.get(m.fan_out.column)
        if member is None or member == "" or isinstance(member, dict | list | bool):
            if not event.is_delete:  # a delete without its before image names no member
                out.dropped.append((m.name, "member row without its member column"))
            continue
        out.messages.append((fanout_key(m.name), MemberMsg(map=m.name, member=str(member),
                                                           version=source.version,
                                                           deleted=event.is_delete)))
    for fields in maps.presence_keys(system, table):
        values = {f: row.get(f) for f in fields}
        if any(v is None or v == "" or isinstance(v, dict | list) for v in values.values()):
            continue  # a delete without its image, or a row without its key: nothing to name
        key = present_fact(target_key(table, values))
        seen = None if event.is_delete else {"target_id": str(row.get("RecId") or record_id)}
        if seen is not None and known(key) == seen:
            continue  # an update of a row the gate already knows there: nothing new to learn
        out.messages.append((key, FactMsg(key=key, value=seen, version=source.version)))
    for m in maps.targeting(system, table):
        key_values = {f.target: row.get(f.read_name) for f in m.key}
        if any(v is None or v == "" for v in key_values.values()):
            out.dropped.append((m.name, "target row without its alternate key"))
            continue
        wrong = [k for k, v in key_values.items() if isinstance(v, dict | list)]
        if wrong:
            out.rejected.append(Rejection(m.name, "route", "TransformError",
                                          f"map {m.name!r}: target key field {wrong[0]!r} must "
                                          "be a scalar"))
            continue
        record_key = target_key(m.target.table, key_values)
        target_id = row.get(m.target_id_column) if m.target_id_column else None
        out.messages.append((f"present:{record_key}", ObservedMsg(
            map=m.name, record_key=record_key, op=event.op, row=row,
            target_id=None if target_id is None else str(target_id), source=source)))
    return out
