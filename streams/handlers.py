"""The gate's handlers: one pure function per gate message kind, from (message, position, state)
to the effects that handling it has (`streams.effects`).

    on_pending   a change's walk: plan, collect facts, group, pair, emit (or park / dead-letter)
    on_tx        one event of a source transaction: hold its changes until all events were seen
    on_member    a member of a fan-out map seen or deleted: the map's rows written for it
    on_fact      a fact learned or forgotten: store it, release what waited for it
    on_applied   a sink's ack: what the target holds now, presence of the row
    on_observed  a row on the target's own feed: presence, echo, or a target edit flowing back
    on_control   a map paused or resumed (resume releases the changes its pause parked)
    on_tick      release transactions whose missing events never came
    reject       count a rejected change of a map; a run of them pauses the map

``state`` maps a table name to a read-only mapping (Faust tables in the worker, plain dicts in
tests); none of them is written. A handler reads through a `streams.effects.Recorder`, which
lays the effects it has produced so far over ``state``: a walk of several steps on one key sees
its own writes. Each reads the tables for its key, calls the pure decisions (`plan`, `gate`,
`echo`, `conflict`) and records what follows. All state a handler touches is keyed by the
message's gate key (or is partition-local, "<map>@<partition>"), so it lives in the partition
the message came from.

Every change is guarded where it is decided: an exception while planning it (stage ``transform``
for a `TransformError`, ``plan`` otherwise) or while building its command (``emit``) dead-letters
that change, with its stage, map, error class and message, and the gate goes on with the next.
Changes that end without a command are counted with their reason (``streams/README.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from streams import conflict, echo, gate, metrics
from streams.config import StreamsConfig
from streams.effects import (
    FLOOD,
    CommandSend,
    ControlSend,
    Count,
    DeadLetter,
    Effect,
    Fill,
    Forget,
    GateSend,
    Learn,
    Log,
    Recorder,
    Tables,
)
from streams.factview import KNOWN, KNOWN_VERSIONED, LOOKUPS, deleted_key
from streams.flood import FloodGuard
from streams.maps.registry import MapRegistry
from streams.pending import (
    Drop,
    Emit,
    Group,
    Need,
    Pair,
    Pending,
    Spread,
    billed_by,
    change_set_order,
    change_set_peers,
    in_change_set,
    planned,
    skip_command,
    to_command,
)
from streams.published import PUBLISHED, published, skips, unchanged
from streams.released import forget_due, note_release
from streams.transform import TransformError, observed_fields, written_back
from streams.wire import (
    AppliedMsg,
    ControlMsg,
    FactMsg,
    GateMsg,
    MemberMsg,
    ObservedMsg,
    PendingMsg,
    TickMsg,
    TxMsg,
)
from topics import MapState, dlq_headers, encode

__all__ = [
    "Context",
    "Position",
    "handle",
    "on_applied",
    "on_control",
    "on_fact",
    "on_member",
    "on_observed",
    "on_pending",
    "on_tick",
    "on_tx",
    "reject",
]


@dataclass(frozen=True)
class Position:
    """Where the gate record being handled sits, and the clock.

    ``topic`` names the topic of a record handled in place without a hop through the gate topic
    (an ack, `streams.agents`), None for a gate record. Its ``mark`` is what a parked slot
    remembers a release or a park by, to know a replay of the same record (`streams.gate`):
    the offset of a gate record, ``-1 - offset`` of a record of another topic, so an ack never
    passes for the gate record at its offset."""

    key: str
    partition: int
    offset: int
    now_ms: int
    topic: str | None = None
    clock: int | None = None  # the batch engine's mark (`streams.engine`): its order of handling

    @property
    def mark(self) -> int:
        if self.clock is not None:
            return self.clock
        return self.offset if self.topic is None else -1 - self.offset


@dataclass(frozen=True)
class Context:
    """What handlers read besides the tables: the maps and the settings that shape decisions."""

    maps: MapRegistry
    config: StreamsConfig
    gate_topic: str  # named in dead letters' headers


# -- the pure entry points -----------------------------------------------------------------
def on_pending(msg: PendingMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.advance(msg.item, at))


def on_tx(msg: TxMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.group(at, msg.event, msg.total, msg.items))


def on_member(msg: MemberMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.on_member(msg, at))


def on_fact(msg: FactMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.learn(at, msg.value, msg.version))


def on_applied(msg: AppliedMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.on_applied(msg, at))


def on_observed(msg: ObservedMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.on_observed(msg, at))


def on_control(msg: ControlMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.on_control(msg, at))


def on_tick(msg: TickMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    return _run(state, ctx, lambda g: g.on_tick(msg, at))


def reject(map_name: str, partition: int | None, now_ms: int, state: Tables, ctx: Context) -> list[Effect]:
    """A change of ``map_name`` was rejected (``partition``: None when not at the gate)."""
    return _run(state, ctx, lambda g: g.rejected(map_name, partition, now_ms))


def handle(msg: GateMsg, at: Position, state: Tables, ctx: Context) -> list[Effect]:
    """The effects of any gate message."""
    if isinstance(msg, PendingMsg):
        return on_pending(msg, at, state, ctx)
    if isinstance(msg, TxMsg):
        return on_tx(msg, at, state, ctx)
    if isinstance(msg, FactMsg):
        return on_fact(msg, at, state, ctx)
    if isinstance(msg, MemberMsg):
        return on_member(msg, at, state, ctx)
    if isinstance(msg, AppliedMsg):
        return on_applied(msg, at, state, ctx)
    if isinstance(msg, ObservedMsg):
        return on_observed(msg, at, state, ctx)
    if isinstance(msg, ControlMsg):
        return on_control(msg, at, state, ctx)
    return on_tick(msg, at, state, ctx)


def _stamped(item: Pending, at: Position) -> dict[str, Any]:
    """``item`` as a slot keeps it: its dump, stamped with when it was first parked."""
    return item.model_copy(update={"parked_ms": item.parked_ms or at.now_ms}).model_dump(mode="json")


def _run(state: Tables, ctx: Context, body: Callable[[_Gate], Any]) -> list[Effect]:
    g = _Gate(ctx, Recorder(state))
    body(g)
    return g.fx.effects


# -- the decisions, recorded ---------------------------------------------------------------
class _Gate:
    """One handler run: reads and records through ``fx``; nothing outside it is touched."""

    def __init__(self, ctx: Context, fx: Recorder) -> None:
        self.ctx = ctx
        self.maps = ctx.maps
        self.fx = fx

    def paused(self, map_name: str, partition: int) -> bool:
        return bool(self.fx.get("states", f"{map_name}@{partition}") == "paused")

    def dead_letter(self, item: Pending, at: Position, stage: str, exc: Exception) -> None:
        """Dead-letter the change being walked (stage: one of `streams.wire.ITEM_STAGES`)."""
        if self.paused(item.map, at.partition):
            # A paused map's failures wait with its other changes: once the map is fixed and
            # resumed they are planned again, instead of piling up in the DLQ.
            self.park(f"paused:{item.map}@{at.partition}", item, at, reason="paused")
            return
        self.rejected(item.map, at.partition, at.now_ms)
        self.unwritten(item)
        error = type(exc).__name__
        headers = dlq_headers(stage=stage, error_class=error, message=str(exc), map_name=item.map,
                              topic=at.topic or self.ctx.gate_topic, partition=at.partition, offset=at.offset,
                              ts_ms=at.now_ms)
        self.fx.add(Count(metrics.DLQ, (stage, error)),
                    DeadLetter(item.source.id.encode(), item.model_dump_json().encode(), tuple(headers)))

    def rejected(self, map_name: str, partition: int | None, now_ms: int) -> None:
        """Count a rejected change of ``map_name``; a run of them pauses the map everywhere."""
        guard = self.flood(map_name)
        tripped = guard.failed(map_name)
        self.fx.put(FLOOD, map_name, guard.runs[map_name])
        if not tripped:
            return
        reason = (f"paused by the processor: {guard.limit} changes in a row failed to transform "
                  "(see `dualwrite dlq list`; fix the map, then `dualwrite maps resume`)")
        self.fx.add(Log(logging.CRITICAL, "map %s: %s", (map_name, reason)),
                    Count(metrics.MAPS_PAUSED, (map_name,)))
        if partition is not None:
            self.fx.put("states", f"{map_name}@{partition}", "paused")  # here at once; elsewhere via control
        self.fx.add(ControlSend(MapState(map=map_name, state="paused", reason=reason, ts_ms=now_ms)))

    def succeeded(self, map_name: str) -> None:
        guard = self.flood(map_name)
        run = guard.runs[map_name]
        guard.succeeded(map_name)
        if guard.runs[map_name] != run:
            self.fx.put(FLOOD, map_name, guard.runs[map_name])

    def flood(self, map_name: str) -> FloodGuard:
        """A `FloodGuard` holding this map's run as recorded: its rules, applied to a copy."""
        return FloodGuard(self.ctx.config.pause_after_rejections,
                          {map_name: int(self.fx.get(FLOOD, map_name) or 0)})

    # -- facts and parking ---------------------------------------------------------------
    def learn(self, at: Position, value: dict[str, Any] | None, version: int | None = None) -> None:
        if value is None:
            self.forget(at.key)
            return
        if self.fx.get("facts", at.key) != value:  # republished unchanged (every emit): no changelog write
            self.fx.put("facts", at.key, value)
        self.fx.add(Learn(at.key, value, version))
        self.release(at.key, at, reason="fact")

    def forget(self, key: str) -> None:
        self.fx.delete("facts", key)
        self.fx.add(Forget(key))

    def parked(self, key: str) -> Any:
        return self.fx.get("parked", key)

    def write_parked(self, writes: list[gate.Write]) -> None:
        """Record a slot's writes (`streams.gate`), in the order they were decided."""
        for key, value in writes:
            if value is None:
                self.fx.delete("parked", key)
            else:
                self.fx.put("parked", key, value)

    def release(self, slot_key: str, at: Position, reason: str) -> list[Pending]:
        writes, items = gate.release(slot_key, at.mark, self.parked)
        self.write_parked(writes)
        released = [Pending.model_validate(i) for i in items]
        if released:
            self.fx.add(Count(metrics.RELEASED, (reason,), len(released)))
        if reason in ("fact", "resume"):
            for item in released:  # back to the gate key they waited on / their emit key
                self.forward(item, at)
        return released

    def park(self, slot_key: str, item: Pending, at: Position, reason: str, hold: bool = False) -> None:
        writes, added = gate.park(slot_key, [_stamped(item, at)], at.mark, self.parked)
        self.write_parked(writes)
        if added:
            self.fx.add(Count(metrics.PARKED, (item.map, reason)))
        if hold and item.change_set_size > 1 and item.counted:
            # Waiting for a reference row (`Need.lookup`: `streams.pending.holds_change_set`),
            # while its change set's other members may be at the sink already: a ``hold`` keeps
            # them unwritten until this one comes, so a vendor invoice's header never lands
            # without a line that waits for its unit. Sent again on a replay of this park: harmless.
            command = skip_command(item, self.maps, op="hold")
            self.fx.add(CommandSend(command.target, command.record_key, encode(command)))

    def next_step(self, item: Pending, at: Position) -> Group | Need | Pair | Emit | Spread | None:
        """The item's next step; None when it ends here (dead-lettered or dropped)."""
        try:
            step = planned(item, self.maps)
        except TransformError as exc:
            self.dead_letter(item, at, "transform", exc)
            return None
        except Exception as failure:  # a value no check foresaw: this change only, never the gate
            self.dead_letter(item, at, "plan", failure)
            return None
        if isinstance(step, Drop):
            self.fx.add(Count(metrics.DROPPED, (item.map, step.reason)))
            self.unwritten(item)
            return None
        return step

    def unwritten(self, item: Pending) -> None:
        """A counted member of a released transaction that will not be written (dropped as a
        no-op, stale or overtaken, or dead-lettered) still reaches the sink, as a ``skip``: the
        sink counts the change set's members, and would otherwise hold the rest ``tx_wait_s``."""
        if item.change_set_size > 1 and item.counted:
            command = skip_command(item, self.maps)
            self.fx.add(CommandSend(command.target, command.record_key, encode(command)))

    def forward(self, item: Pending, at: Position) -> None:
        item, step = self.known_facts(item, at, self.next_step(item, at))
        if step is not None:
            self.fx.add(GateSend(step.key, PendingMsg(item=item)))

    def known_facts(self, item: Pending, at: Position, step: Group | Need | Pair | Emit | Spread | None
                    ) -> tuple[Pending, Group | Need | Pair | Emit | Spread | None]:
        """The item with every fact it needs next that this worker already knows
        (`streams.factview`, as ``ingest`` answers them), and its first step that still needs a
        hop: a released invoice walked its 1,500 billed actuals two gate hops each (a key and a
        presence), about 70 s, where the view knew them all."""
        while isinstance(step, Need) and step.key != at.key:
            value = self.fx.get(KNOWN, step.key)
            if value is None:
                break
            found = {step.key: value}
            # The other lookups it lacks, at once where known; this record's own key is its
            # table's to answer (the walk below), not the view's.
            for key in step.more:
                more = None if key == at.key else self.fx.get(KNOWN, key)
                if more is not None:
                    found[key] = more
            self.fx.add(Count(LOOKUPS, ("local",), len(found)))
            item = item.with_facts(found)
            step = self.next_step(item, at)
        return item, step

    # -- the walk of one pending change --------------------------------------------------
    def advance(self, item: Pending, at: Position) -> None:
        while True:
            item, step = self.known_facts(item, at, self.next_step(item, at))
            if step is None:
                return
            if step.key != at.key:
                self.fx.add(GateSend(step.key, PendingMsg(item=item)))
                return
            if isinstance(step, Need):
                fact = self.fx.get("facts", step.key)
                if fact is None and step.optional:  # not known here now: unset, not awaited
                    item = item.with_fact(step.key, None)
                    continue
                if fact is None:
                    if step.announce is not None:  # its own half: what the partner waits for
                        half, value = step.announce
                        self.fx.add(GateSend(half, FactMsg(key=half, value=value,
                                                           version=item.source.version)))
                    # A delete waits only for the key its record was written under.
                    self.park(step.key, item, at, reason=metrics.DELETE_UNWRITTEN
                              if item.op == "delete" else "waits", hold=step.lookup)
                    return
                self.fx.add(Fill(step.key, fact))  # the next change needing it asks at ingest
                item = item.with_fact(step.key, fact)
            elif isinstance(step, Group):
                self.group(at, item.id, item.tx_total or 1, [item])
                return
            elif isinstance(step, Pair):
                item = self.pair(item, step)
            elif isinstance(step, Emit):
                self.emit(item, step, at)
                return
            elif isinstance(step, Spread):
                self.spread(item, at)
                return

    def group(self, at: Position, event: str, total: int, items: list[Pending]) -> None:
        """Hold a source transaction's changes until all ``total`` of its events were seen."""
        writes, seen = gate.count_event(at.key, event, self.parked)
        self.write_parked(writes)
        writes, added = gate.park(at.key, [_stamped(item, at) for item in items], at.mark, self.parked)
        self.write_parked(writes)
        for parked in added:
            self.fx.add(Count(metrics.PARKED, (str(parked["map"]), "transaction")))
        if gate.released_at(at.key, at.mark, self.parked) or seen >= total:
            self.release_transaction(at)
        elif gate.is_waiting(at.key, self.parked):
            # Remember the open transaction for the partition's tick (tables are not scanned).
            index_key = f"open-tx@{at.partition}"
            opened = dict(self.fx.get("states", index_key) or {})
            if at.key not in opened:
                opened[at.key] = at.now_ms
                self.fx.put("states", index_key, opened)

    def release_transaction(self, at: Position) -> None:
        members = self.release(at.key, at, reason="transaction")
        note_release(self.fx, at.partition, at.key, at.mark, at.now_ms)  # forgotten later
        index_key = f"open-tx@{at.partition}"
        opened = dict(self.fx.get("states", index_key) or {})
        if opened.pop(at.key, None) is not None:
            self.fx.put("states", index_key, opened)
        in_set = [m for m in members if in_change_set(m, self.maps)]
        counted = {m.source.id for m in in_set}
        # The change set's order keeps the source's positions, handed out again in write order.
        positions = sorted(m.tx_order for m in members if m.tx_order is not None)
        for member in change_set_order(members, self.maps):
            position = positions.pop(0) if member.tx_order is not None else None
            # Each member carries its change set's size and its own references into it, never
            # the whole membership: that would make every hop of a large transaction O(size).
            self.forward(member.model_copy(update={
                "tx_size": len(in_set), "tx_counted": member.source.id in counted,
                "tx_peers": change_set_peers(member, counted, self.maps), "tx_order": position,
                "after": billed_by(member, members, self.maps)}), at)

    # -- fan-out: one source row, a copy per member ----------------------------------------
    def fanout(self, key: str) -> dict[str, Any]:
        """A fan-out map's hub state: ``members`` (member -> the source version and gate offset
        that added it) and ``rows`` (source id -> its last change, a `Pending` dump); deleted rows are kept
        as ``{"deleted": version}`` so that an older change arriving late stays stale."""
        value = self.fx.get("states", key) or {}
        return {"members": dict(value.get("members") or {}), "rows": dict(value.get("rows") or {})}

    def spread(self, item: Pending, at: Position) -> None:
        """A fan-out map's change: remember it, and write (or delete) it for every member."""
        hub = self.fanout(at.key)
        last = hub["rows"].get(item.source.id) or {}
        seen = int(last.get("deleted") or (last.get("source") or {}).get("version") or 0)
        if item.source.version < seen:  # a newer change of the record is spread already
            self.fx.add(Count(metrics.DROPPED, (item.map, metrics.STALE)))
            return
        hub["rows"][item.source.id] = ({"deleted": item.source.version} if item.op == "delete"
                                       else item.model_dump(mode="json"))
        self.fx.put("states", at.key, hub)
        m = self.maps[item.map]
        for member in sorted(hub["members"]):
            self.forward(item.for_member(m, member), at)

    def on_member(self, msg: MemberMsg, at: Position) -> None:
        """A member appeared: every row seen so far is written for it. A member deleted gets
        no more copies (what was written for it stays: Finance keeps a legal entity's roles)."""
        hub = self.fanout(at.key)
        before = hub["members"].get(msg.member)
        if msg.deleted:
            if before is not None:
                del hub["members"][msg.member]
                self.fx.put("states", at.key, hub)
            return
        # The gate offset that added the member is kept: handling that record again is a replay
        # after a crash (the changelog may hold the member while the copies were never sent).
        replay = before is not None and before.get("offset") == at.mark
        if before is not None and not replay:
            return  # an update of a member already written for
        hub["members"][msg.member] = {"version": msg.version, "offset": at.mark}
        self.fx.put("states", at.key, hub)
        m = self.maps[msg.map]
        for row in hub["rows"].values():
            if "deleted" not in row:
                self.forward(Pending.model_validate(row).for_member(m, msg.member), at)

    def pair(self, item: Pending, step: Pair) -> Pending:
        m = self.maps[item.map]
        decision = conflict.resolve(self.fx.get("pairs", step.key) or {}, step.side,  # type: ignore[arg-type]
                                    item.source.ts_ms, step.values, m.master,
                                    self.ctx.config.conflict_window_ms, item.source.version)
        self.fx.put("pairs", step.key, decision.state)
        for loss in decision.losses:
            self.fx.add(Count(metrics.CONFLICTS, (m.name, loss.side)),
                        Log(logging.WARNING, "two-way conflict on %s %s: %s value %r lost to %s value %r",
                            (step.key, loss.field, loss.side, loss.value, loss.winner_side,
                             loss.winner_value)))
        return item.model_copy(update={"paired": True, "dropped": decision.drop})

    def emit(self, item: Pending, step: Emit, at: Position) -> None:
        if item.op == "upsert" and not item.reverse:
            src = item.source
            deleted = self.fx.get(KNOWN, deleted_key(src.system, src.table, src.id))
            if deleted and int(deleted.get("version", 0)) > src.version:
                # Its record was deleted after this change was made (it waited here meanwhile):
                # writing it now would make a row the delete has already passed, or one whose
                # parent is gone. Its key is not published either: its delete finds nothing to do.
                self.fx.add(Count(metrics.DROPPED, (item.map, metrics.OVERTAKEN)))
                self.unwritten(item)
                return
            if self.renumbered_since(item, step):
                self.fx.add(Count(metrics.DROPPED, (item.map, metrics.RENUMBERED)))
                self.unwritten(item)
                return
        for fact_key, value in step.publish:
            if skips(fact_key):
                sent = self.fx.get(PUBLISHED, fact_key)
                self.fx.put(PUBLISHED, fact_key, published(value, item))
                if unchanged(sent, value, item):
                    continue  # the record's previous version sent it here (`streams.published`)
            self.fx.add(GateSend(fact_key, FactMsg(key=fact_key, value=value, version=item.source.version)))
        if self.paused(item.map, at.partition):
            self.park(f"paused:{item.map}@{at.partition}", item, at, reason="paused")
            return
        self.succeeded(item.map)
        record_key = step.mapped.record_key
        state = echo.state_from(self.fx.get("targets", record_key))
        if echo.is_stale(state, item.source, delete=item.op == "delete"):
            self.fx.add(Count(metrics.DROPPED, (item.map, metrics.STALE)))
            self.unwritten(item)
            return
        if item.op == "upsert" and echo.is_noop(state, step.mapped.readable, item.id):
            self.fx.add(Count(metrics.NOOPS, (item.map,)))
            self.unwritten(item)
            owned = echo.on_unchanged(state, item.source)
            if owned != state:  # no changelog write when nothing changed
                self.fx.put("targets", record_key, owned)
            return
        try:
            command = to_command(item, step.mapped, self.maps)
            payload = encode(command)
        except Exception as exc:  # a value the command model or the encoder refuses
            self.dead_letter(item, at, "emit", exc)
            return
        self.fx.add(CommandSend(command.target, record_key, payload))  # the command's own record key
        self.fx.put("targets", record_key, echo.on_sent(state, command.command_id, step.mapped.readable,
                                                        item.source, delete=item.op == "delete",
                                                        readable_fp=command.fingerprint))
        self.fx.add(Count(metrics.COMMANDS, (item.map, command.target)))

    def renumbered_since(self, item: Pending, step: Emit) -> bool:
        """Whether a newer version of ``item``'s record was written under another target key
        while ``item`` waited (for a fact, or for the rest of its transaction): written now, it
        would make a row at the key the record has left, which nothing deletes. The stale check
        (`streams.echo.is_stale`) is per target key and cannot see it. Known when this worker
        sent the newer key fact (`streams.published`) or learned it (`streams.factview`); a
        version of the same key is left to the stale check."""
        for fact_key, value in step.publish:
            if not skips(fact_key):
                continue
            for newer in (self.fx.get(PUBLISHED, fact_key), self.fx.get(KNOWN_VERSIONED, fact_key)):
                if newer is not None and newer[1] > item.source.version and newer[0] != value:
                    return True
        return False

    # -- what the targets tell us --------------------------------------------------------
    def on_applied(self, msg: AppliedMsg, at: Position) -> None:
        ack = msg.ack
        state = echo.state_from(self.fx.get("targets", ack.record_key))
        self.fx.put("targets", ack.record_key, echo.on_ack(state, ack.command_id, ack.fingerprint,
                                                           delete=ack.op == "delete"))
        if ack.op == "delete":
            self.forget(at.key)
            return
        known = self.fx.get("facts", at.key) or {}
        self.learn(at, {**known, "target_id": ack.target_id or known.get("target_id")})

    def on_observed(self, msg: ObservedMsg, at: Position) -> None:
        state = echo.state_from(self.fx.get("targets", msg.record_key))
        if msg.op == "d":
            self.forget(at.key)
            if "current" in state:  # the row no longer holds what we knew of it
                self.fx.put("targets", msg.record_key, echo.on_observed(state, {}, deleted=True))
            return
        if state.get("deleted"):
            # We deleted this row since: the feed shows it from before (its delete follows on
            # the feed). Neither its presence nor its values are taken until we write it again.
            self.fx.add(Count(metrics.DROPPED, (msg.map, metrics.BEFORE_OUR_DELETE)))
            return
        self.learn(at, {"target_id": msg.target_id})
        m = self.maps[msg.map]
        observed = observed_fields(m, msg.row)
        verdict = echo.classify(state, observed, tuple(f.read_name for f in m.two_way))
        back = written_back(m, msg.row)
        self.fx.put("targets", msg.record_key, echo.on_observed(state, observed, back=back))
        # Fields only the target fills (a posted actual's voucher) flow back whenever they
        # change, whatever became of the fields we wrote (often just our echo).
        back_changed = echo.back_changed(state, back)
        if isinstance(verdict, echo.Echo):
            self.fx.add(Count(metrics.ECHOES, (m.name,)))
        elif not isinstance(verdict, echo.Edit) and not back_changed:
            self.fx.add(Count(metrics.DROPPED, (m.name, verdict.reason)))
        if isinstance(verdict, echo.Edit) or back_changed:
            item = Pending(id=f"{m.name}:{msg.source.id}:{msg.source.version}", map=m.name,
                           reverse=True, op="upsert", row=msg.row, source=msg.source,
                           born_ms=at.now_ms)
            self.forward(item, at)

    def on_control(self, msg: ControlMsg, at: Position) -> None:
        self.fx.put("states", f"{msg.map}@{at.partition}", msg.state)
        if msg.state == "running":
            self.release(f"paused:{msg.map}@{at.partition}", at, reason="resume")

    def on_tick(self, msg: TickMsg, at: Position) -> None:
        """Release source transactions whose missing members never came (tables we do not read)."""
        limit = msg.ts_ms - self.ctx.config.tx_timeout_ms
        opened = self.fx.get("states", f"open-tx@{at.partition}") or {}
        for key, opened_ms in sorted(opened.items(), key=lambda kv: kv[1]):
            if int(opened_ms) <= limit:
                self.release_transaction(replace(at, key=key))
        # Then the slots of transactions released long enough ago (`streams.released`).
        forget_due(self.fx, at.partition, msg.ts_ms, self.ctx.config.tx_forget_ms,
                            lambda key, offset: gate.forget(key, offset, self.parked), self.write_parked)
