"""A change on its way to becoming a command, and the plan of its next step.

A `Pending` travels the gate topic, keyed by what its next step needs, and collects facts as it
goes. `plan` is pure: from the map and what the item has collected it names the one next step:

    Group(tx key)      wait for the other changes of the same source transaction
    Need(fact key)     wait for a lookup row or for a referenced target row (dependency)
    Pair(pair key)     decide two-way fields against the other side's recent changes
    Emit(record key)   the command is ready (pause check, no-op check, then produce)
    Spread(fanout key) a fan-out map's change: one copy per member (`streams.maps.model.FanOut`)
    Drop(reason)       the map's filter rejects the row, or conflicts removed every field

A delete does not go through the map: a source may send it without a before image (after a
restart its image cache is empty), and the row filter and lookups need one. Every forward emit
publishes the target key it wrote as the fact ``key:<map>:<source id>``; a delete waits for that
fact (`Need`) and deletes that key. Until the record is written the delete waits there (a delete
that overtook its parked create): the create's key fact releases it at once, so no orphan row is
left. A delete older than a write already sent for the row (the key re-created meanwhile) is
stale at its emit step (`streams.echo.is_stale`).

`TransformError` from the map means the row can never be written: the caller dead-letters it.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from streams.fingerprint import fingerprint
from streams.item import Pending, record_ref, split_record_ref
from streams.maps.model import (
    KEY_FACT_PREFIX,
    Bills,
    Partner,
    TableMap,
    fanout_key,
    key_fact,
    partner_fact,
    present_fact,
)
from streams.maps.registry import MapRegistry
from streams.transform import Filtered, Mapped, NeedFacts, TransformError, transform
from topics import Command, CommandSource, target_key

__all__ = ["Drop", "Emit", "Group", "Need", "Pair", "Pending", "Spread", "Step", "billed_by", "change_set_order",
           "change_set_peers", "in_change_set", "plan", "plan_ahead", "planned", "record_ref", "skip_command",
           "split_record_ref", "to_command"]


@dataclass(frozen=True)
class Group:
    key: str


@dataclass(frozen=True)
class Need:
    key: str
    # A fact to make known when the change parks for ``key`` (its half of a `Partner` pair:
    # the partner waits for it as it waits for the partner).
    announce: tuple[str, dict[str, Any]] | None = None
    # An optional lookup's fact (`Lookup.optional`): when the gate does not know it, the change
    # goes on with the lookup unset instead of parking.
    optional: bool = False
    # While the change waits for this fact, its change set is held at the sink (`hold`):
    # see `holds_change_set`.
    lookup: bool = field(default=False, compare=False)
    # The other lookup facts the change lacks besides ``key`` (its map's lookups, in order): one
    # who knows them all adds them at once (`streams.route.first_step`), not one plan each.
    more: tuple[str, ...] = field(default=(), compare=False)


def holds_change_set(fact_key: str) -> bool:
    """Whether a change waiting for the fact ``fact_key`` keeps its change set's other members
    unwritten at the sink (a vendor invoice header never lands without its line that waits for
    a unit). Only for a lookup of a reference row, which no write of the change set brings: a
    source row (``row:``, learned from its CDC topic) or a target row (``present:``: a unit, a
    product, a vendor, a project). Never for another map's key (``key:``): that is published
    when that map's change is emitted, which may itself wait for a write of this very change
    set, and a hold would then wait for ever: a confirmed invoice's connection waits for its
    billed actual's key, the billed actual for its invoice proposal in Finance, and the proposal
    is a held member (a CI run deadlocked so). Nor for a dependency's or a billed row's presence
    (those are not lookups)."""
    return not fact_key.startswith(KEY_FACT_PREFIX)


@dataclass(frozen=True)
class Pair:
    key: str
    side: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Emit:
    key: str
    mapped: Mapped
    publish: tuple[tuple[str, dict[str, Any]], ...]


@dataclass(frozen=True)
class Spread:
    key: str


@dataclass(frozen=True)
class Drop:
    reason: str


Step = Group | Need | Pair | Emit | Spread | Drop


def tx_key(source: CommandSource) -> str:
    return f"tx:{source.system}:{source.txid}"


def _dependencies(m: TableMap, item: Pending, wanted: Mapping[str, str]) -> str | None:
    """First dependency fact (a target row that must exist) the item has not collected;
    ``wanted``: the fact key each lookup read (`streams.transform.Mapped.lookups`).

    A dependency whose key lacks a value (an unset optional lookup: a task without a parent)
    references nothing and is skipped.
    """
    for dep in m.depends:
        if dep.same_tx_column and item.in_change_set(str(item.row.get(dep.same_tx_column))):
            continue  # written first in the same change set
        key = {target: (item.facts.get(wanted.get(lookup, "")) or {}).get(field)
               for target, lookup, field in dep.key}
        if any(value is None or value == "" for value in key.values()):
            continue
        present = present_fact(target_key(dep.entity, key))
        if present not in item.facts:
            return present
    return None


def _unbilled(bills: Bills, item: Pending, maps: MapRegistry) -> str | None:
    """The first fact still missing before the document is written: the key the billing map
    wrote for a billed row, then that row's presence in the target."""
    for record_id in item.after:
        written = key_fact(bills.map, record_id)
        if written not in item.facts:
            return written
        key = dict(item.facts[written] or {})
        present = present_fact(target_key(maps[bills.map].target.table, key))
        if present not in item.facts:
            return present
    return None


def _pair_key(m: TableMap, item: Pending, mapped: Mapped) -> str:
    if not item.reverse:
        return f"pair:{m.name}:{mapped.record_key}"
    forward_key = {f.target: item.row.get(f.read_name) for f in m.key}
    return f"pair:{m.name}:{target_key(m.target.table, forward_key)}"


def _two_way_values(m: TableMap, item: Pending, mapped: Mapped) -> dict[str, Any]:
    """Two-way field values by the forward target name (the name the pair state uses)."""
    if item.reverse:
        return {f.target: mapped.readable.get(f.source or f.target) for f in m.two_way}
    return {f.target: mapped.readable.get(f.read_name) for f in m.two_way}


def _without(m: TableMap, item: Pending, mapped: Mapped) -> Mapped:
    names = set(item.dropped)
    gone = {(f.source or f.target) if item.reverse else f.target for f in m.two_way if f.target in names}
    return Mapped(entity=mapped.entity, key=mapped.key,
                  fields={k: v for k, v in mapped.fields.items() if k not in gone},
                  readable={k: v for k, v in mapped.readable.items() if k not in gone})


def _delete(m: TableMap, item: Pending) -> Need | Emit:
    """A delete addresses the target key the processor wrote for the record, nothing else."""
    fact = key_fact(m.name, item.record_ref)
    if fact not in item.facts:
        return Need(fact)
    key = dict(item.facts[fact] or {})
    if not key or any(v is None or v == "" or isinstance(v, dict | list) for v in key.values()):
        raise TransformError(f"map {m.name!r}: fact {fact} holds no target key: {key!r}")
    mapped = Mapped(entity=m.target.table, key=key, fields={}, readable={})
    return Emit(present_fact(mapped.record_key), mapped, ())


def billed_by(item: Pending, members: Sequence[Pending], maps: MapRegistry) -> tuple[str, ...]:
    """The rows a document change bills (`Bills`): named by its transaction's other changes."""
    bills = maps[item.map].bills
    if bills is None or item.op != "upsert" or item.reverse:
        return ()
    named = (x.row.get(bills.column) for x in members
             if x.source.table == bills.table and x.op == "upsert" and all(c.holds(x.row) for c in bills.where))
    return tuple(dict.fromkeys(str(v) for v in named if isinstance(v, str | int) and v != ""))


def change_set_order(members: Sequence[Pending], maps: MapRegistry) -> list[Pending]:
    """A released transaction's changes in the order its change set writes them: a row another
    upsert references through a `Dependency.same_tx_column` first (the dependency counts as met
    because it is), else the source's order. Dataverse's order is not always parents first: a
    proforma confirmation updates the invoice after creating the actuals that wait for it."""
    written = {x.source.id for x in members if x.op == "upsert"}

    def parents(x: Pending) -> set[str]:
        """Rows of the change set this upsert references (a delete's image names its parent
        too, but deletes go children first: the source's order)."""
        if x.op != "upsert":
            return set()
        refs = {str(x.row.get(d.same_tx_column)) for d in maps[x.map].depends if d.same_tx_column}
        return (refs & written) - {x.source.id}

    # Kahn's algorithm, the earliest source position first among the ready: linear in the
    # changes, as a confirmation of a large invoice holds thousands.
    ranked = sorted(members, key=lambda x: (x.tx_order is None, x.tx_order or 0))
    missing = [parents(x) for x in ranked]
    children: dict[str, list[int]] = {}
    for i, ids in enumerate(missing):
        for parent in ids:
            children.setdefault(parent, []).append(i)
    ready = [i for i, ids in enumerate(missing) if not ids]
    heapq.heapify(ready)
    done = [False] * len(ranked)
    placed: set[str] = set()
    out: list[Pending] = []
    while len(out) < len(ranked):
        # A cycle leaves nothing ready: the earliest change left goes next (the source's order).
        i = heapq.heappop(ready) if ready else done.index(False)
        if done[i]:
            continue
        done[i] = True
        out.append(ranked[i])
        if ranked[i].source.id not in placed:
            placed.add(ranked[i].source.id)
            for child in children.pop(ranked[i].source.id, ()):
                missing[child].discard(ranked[i].source.id)
                if not missing[child] and not done[child]:
                    heapq.heappush(ready, child)
    return out


def change_set_peers(item: Pending, ids: set[str], maps: MapRegistry) -> tuple[str, ...]:
    """The rows of the change set ``ids`` that ``item`` references through a ``same_tx_column``
    (written before it in the same change set, so it need not wait for them)."""
    refs = (str(item.row.get(d.same_tx_column)) for d in maps[item.map].depends if d.same_tx_column)
    return tuple(dict.fromkeys(r for r in refs if r in ids))


def in_change_set(item: Pending, maps: MapRegistry) -> bool:
    """Whether a released transaction's change can become one of its change set's commands. An
    upsert its map's filter refuses never does (a proforma confirmation's Skip Sync reversal and
    its connection): counted in ``tx_size``, it would hold the rest at the sink for the whole
    ``tx_wait_s``, and as a ``same_tx_column`` parent it would excuse a wait for a row never written."""
    return item.op == "delete" or item.reverse or maps[item.map].passes(item.row)


def plan(item: Pending, maps: MapRegistry, *, route_only: bool = False,
         wanted: Mapping[str, str] | None = None) -> Step:
    """The item's next step. ``route_only``: only the step's key is asked (`streams.route`
    at ingest): a map whose steps read no field (no two-way fields, no partner) maps only the
    target key, and the step's `Mapped` then holds no fields; the gate maps them when it emits.
    ``wanted``: the item's `streams.transform.lookup_facts`, when the caller worked it out."""
    m = maps[item.map]
    if item.tx_total is not None and item.tx_total > 1 and not item.released and item.source.txid:
        return Group(tx_key(item.source))
    if m.fan_out is not None and item.member is None and not item.reverse:
        return Spread(fanout_key(m.name))
    if item.op == "delete":
        return _delete(m, item)
    keys_only = route_only and not item.reverse and not m.two_way and m.partner is None
    result = transform(m, item.row, item.facts, reverse=item.reverse, keys_only=keys_only, wanted=wanted)
    if isinstance(result, Filtered):
        return Drop(result.reason)
    if isinstance(result, NeedFacts):
        key = result.keys[0]
        return Need(key, optional=key in result.optional, lookup=holds_change_set(key), more=result.keys[1:])
    if item.op == "upsert" and not item.reverse:
        missing = _dependencies(m, item, result.lookups)
        if missing is not None:
            return Need(missing)
    if item.op == "upsert" and not item.reverse and m.bills is not None:
        missing = _unbilled(m.bills, item, maps)
        if missing is not None:
            return Need(missing)
    if item.op == "upsert" and m.two_way and not item.paired:
        side = m.target.system if item.reverse else m.source.system
        return Pair(_pair_key(m, item, result), side, _two_way_values(m, item, result))
    mapped = _without(m, item, result) if item.dropped else result
    if item.reverse and not any(k not in mapped.key for k in mapped.fields):
        return Drop("every two-way field lost or was unchanged")
    publish: tuple[tuple[str, dict[str, Any]], ...] = ()
    if not item.reverse:
        publish = ((key_fact(m.name, item.record_ref), dict(mapped.key)),)
    if m.partner is not None and item.op == "upsert" and not item.reverse:
        own, partner = _halves(m, m.partner, mapped)
        half = (own, {"id": item.source.id})
        if partner not in item.facts:
            return Need(partner, announce=half)
        publish += (half,)
    return Emit(present_fact(mapped.record_key), mapped, publish)


# Steps `streams.route` planned for the changes it sent, for the gate that handles the same
# objects in place (`streams.engine`): `plan` is pure in (item, maps), so a step planned for an
# object holds for that object. Keyed by identity and holding both objects, so an id is never
# mistaken for another's; bounded, for changes that leave through the gate topic (another
# worker decodes its own copies) and are never asked for here.
# An OrderedDict: a full one drops its oldest in O(1), where a dict's first key is found past
# every slot deleted before it (1.2 us against 0.2 a change once full).
_PLANNED: OrderedDict[tuple[int, int], tuple[Pending, MapRegistry, Step]] = OrderedDict()
_PLANNED_MAX = 4096


def plan_ahead(item: Pending, maps: MapRegistry, step: Step) -> None:
    """Keep ``step``, the `plan` of ``item``, for `planned` to return."""
    if len(_PLANNED) >= _PLANNED_MAX:
        _PLANNED.popitem(last=False)
    _PLANNED[(id(item), id(maps))] = (item, maps, step)


def planned(item: Pending, maps: MapRegistry) -> Step:
    """``plan(item, maps)``: the step `plan_ahead` kept for this very object, once, or a new plan."""
    kept = _PLANNED.pop((id(item), id(maps)), None)
    if kept is not None and kept[0] is item and kept[1] is maps:
        return kept[2]
    return plan(item, maps)


def _halves(m: TableMap, partner: Partner, mapped: Mapped) -> tuple[str, str]:
    """The facts of this row's half and of its partner's half of the pair."""
    values = {**mapped.key, **mapped.fields}
    side = values.get(partner.side)
    if side not in partner.sides:
        raise TransformError(f"map {m.name!r}: {partner.side} {side!r} is neither half of a pair "
                             f"({partner.sides[0]!r} or {partner.sides[1]!r})")
    pair = target_key(m.target.table, {f: values.get(f) for f in partner.match})
    other = partner.sides[1] if side == partner.sides[0] else partner.sides[0]
    return partner_fact(m.name, pair, side), partner_fact(m.name, pair, other)


def to_command(item: Pending, mapped: Mapped, maps: MapRegistry) -> Command:
    m = maps[item.map]
    target = m.source.system if item.reverse else m.target.system
    size = item.change_set_size
    return Command.trusted(item.id, m.name, target, mapped.entity, mapped.key, item.op, mapped.fields,
                           fingerprint(mapped.readable), item.source, size or None,
                           item.tx_order if size else None, item.reverse)


def skip_command(item: Pending, maps: MapRegistry, op: Literal["skip", "hold"] = "skip") -> Command:
    """The place of a released transaction's member that will not be written (``skip``: the
    sink counts it toward ``tx_size`` and writes nothing for it), or that waits parked
    (``hold``: the sink keeps the other members until it comes). Keyed by the source row (its
    target key may be what failed), so it never coalesces with a write."""
    m = maps[item.map]
    return Command(
        command_id=f"{item.id}:hold" if op == "hold" else item.id, map=m.name,
        target=m.source.system if item.reverse else m.target.system,
        entity=m.target.table, key={op: item.source.id}, op=op, fingerprint="",
        source=item.source, tx_size=item.change_set_size or None, tx_order=item.tx_order)
