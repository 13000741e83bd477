"""The gate's handlers: one per gate message kind, run inside the `gate` agent's iteration.

Each reads the tables for its key, calls the pure decisions (`plan`, `gate`, `echo`,
`conflict`), writes the tables back and sends what follows. All state a handler touches is keyed
by the message's gate key (or is partition-local, "<map>@<partition>"), so it lives in the
partition the message came from.

Every change is guarded where it is decided: an exception while planning it (stage ``transform``
for a `TransformError`, ``plan`` otherwise) or while building its command (``emit``) dead-letters
that change, with its stage, map, error class and message, and the gate goes on with the next.
Changes that end without a command are counted with their reason (``streams/README.md``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from streams import conflict, echo, gate, metrics
from streams.app import Runtime
from streams.factview import FactView
from streams.flood import FloodGuard
from streams.pending import Drop, Emit, Group, Need, Pair, Pending, plan, to_command
from streams.transform import TransformError, observed_fields
from streams.wire import (
    AppliedMsg,
    ControlMsg,
    FactMsg,
    GateMsg,
    ObservedMsg,
    PendingMsg,
    TickMsg,
    TxMsg,
    encode_gate,
)
from topics import MapState, dlq_headers, encode

__all__ = ["Gatekeeper", "Position"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """Where the gate record being handled sits, and the clock."""

    key: str
    partition: int
    offset: int
    now_ms: int


class Gatekeeper:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.maps = rt.maps
        self.facts = rt.table("facts")
        self.targets = rt.table("targets")
        self.parked = rt.table("parked")
        self.pairs = rt.table("pairs")
        self.states = rt.table("states")
        self.last_handled = time.monotonic()
        self.flood = FloodGuard(rt.config.pause_after_rejections)
        self.known = FactView()  # mirrors `facts` for `ingest`, which reads it before sending a change

    async def handle(self, msg: GateMsg, at: Position) -> None:
        self.last_handled = time.monotonic()
        if isinstance(msg, PendingMsg):
            await self.advance(msg.item, at)
        elif isinstance(msg, TxMsg):
            await self.group(at, msg.event, msg.total, msg.items)
        elif isinstance(msg, FactMsg):
            await self.learn(at, msg.value, msg.version)
        elif isinstance(msg, AppliedMsg):
            await self.on_applied(msg, at)
        elif isinstance(msg, ObservedMsg):
            await self.on_observed(msg, at)
        elif isinstance(msg, ControlMsg):
            await self.on_control(msg, at)
        elif isinstance(msg, TickMsg):
            await self.on_tick(msg, at)

    # -- sending -------------------------------------------------------------------------
    async def send(self, key: str, msg: Any, partition: int | None = None) -> None:
        await self.rt.topic("gate").send(key=key.encode(), value=encode_gate(msg),
                                         partition=partition)

    def paused(self, map_name: str, partition: int) -> bool:
        return bool(self.states.get(f"{map_name}@{partition}") == "paused")

    async def dead_letter(self, item: Pending, at: Position, stage: str, exc: Exception) -> None:
        """Dead-letter the change being walked (stage: one of `streams.wire.ITEM_STAGES`)."""
        if self.paused(item.map, at.partition):
            # A paused map's failures wait with its other changes: once the map is fixed and
            # resumed they are planned again, instead of piling up in the DLQ.
            await self.park(f"paused:{item.map}@{at.partition}", item, at, reason="paused")
            return
        await self.rejected(item.map, at.partition)
        error = type(exc).__name__
        metrics.DLQ.labels(stage, error).inc()
        await self.rt.topic("dlq").send(
            key=item.source.id.encode(), value=item.model_dump_json().encode(),
            headers=dlq_headers(stage=stage, error_class=error, message=str(exc),
                                map_name=item.map, topic=self.rt.gate_topic_name,
                                partition=at.partition, offset=at.offset, ts_ms=at.now_ms))

    async def rejected(self, map_name: str, partition: int | None) -> None:
        """Count a rejected change of ``map_name``; a run of them pauses the map everywhere."""
        if not self.flood.failed(map_name):
            return
        reason = (f"paused by the processor: {self.flood.limit} changes in a row failed to transform "
                  "(see `dualwrite dlq list`; fix the map, then `dualwrite maps resume`)")
        log.critical("map %s: %s", map_name, reason)
        metrics.MAPS_PAUSED.labels(map_name).inc()
        if partition is not None:
            self.states[f"{map_name}@{partition}"] = "paused"  # here at once; elsewhere via control
        await self.rt.topic("control").send(key=map_name.encode(), value=encode(MapState(
            map=map_name, state="paused", reason=reason, ts_ms=int(time.time() * 1000))))

    # -- facts and parking ---------------------------------------------------------------
    async def learn(self, at: Position, value: dict[str, Any] | None, version: int | None = None) -> None:
        if value is None:
            self.forget(at.key)
            return
        if self.facts.get(at.key) != value:  # republished unchanged (every emit): no changelog write
            self.facts[at.key] = value
        self.known.learn(at.key, value, version)
        await self.release(at.key, at, reason="fact")

    def forget(self, key: str) -> None:
        self.facts.pop(key, None)
        self.known.forget(key)

    async def release(self, slot_key: str, at: Position, reason: str) -> list[Pending]:
        before = gate.slot_from(self.parked.get(slot_key))
        slot, items = gate.release(before, at.offset)
        if slot != before:
            self.parked[slot_key] = slot
        released = [Pending.model_validate(i) for i in items]
        if released:
            metrics.RELEASED.labels(reason).inc(len(released))
        if reason in ("fact", "resume"):
            for item in released:  # back to the gate key they waited on / their emit key
                await self.forward(item, at)
        return released

    async def park(self, slot_key: str, item: Pending, at: Position, reason: str) -> None:
        parked = item.model_copy(update={"parked_ms": item.parked_ms or at.now_ms})
        slot, added = gate.park(gate.slot_from(self.parked.get(slot_key)), parked.model_dump(mode="json"))
        if added:
            self.parked[slot_key] = slot
            metrics.PARKED.labels(item.map, reason).inc()

    async def next_step(self, item: Pending, at: Position) -> Group | Need | Pair | Emit | None:
        """The item's next step; None when it ends here (dead-lettered or dropped)."""
        try:
            step = plan(item, self.maps)
        except TransformError as exc:
            await self.dead_letter(item, at, "transform", exc)
            return None
        except Exception as exc:  # a value no check foresaw: this change only, never the gate
            await self.dead_letter(item, at, "plan", exc)
            return None
        if isinstance(step, Drop):
            metrics.DROPPED.labels(item.map, step.reason).inc()
            return None
        return step

    async def forward(self, item: Pending, at: Position) -> None:
        step = await self.next_step(item, at)
        if step is not None:
            await self.send(step.key, PendingMsg(item=item))

    # -- the walk of one pending change --------------------------------------------------
    async def advance(self, item: Pending, at: Position) -> None:
        while True:
            step = await self.next_step(item, at)
            if step is None:
                return
            if step.key != at.key:
                await self.send(step.key, PendingMsg(item=item))
                return
            if isinstance(step, Need):
                fact = self.facts.get(step.key)
                if fact is None:
                    # A delete waits only for the key its record was written under.
                    await self.park(step.key, item, at, reason=metrics.DELETE_UNWRITTEN
                                    if item.op == "delete" else "waits")
                    return
                self.known.fill(step.key, fact)  # the next change needing it asks at ingest
                item = item.with_fact(step.key, fact)
            elif isinstance(step, Group):
                await self.group(at, item.id, item.tx_total or 1, [item])
                return
            elif isinstance(step, Pair):
                item = self.pair(item, step)
            elif isinstance(step, Emit):
                await self.emit(item, step, at)
                return

    async def group(self, at: Position, event: str, total: int, items: list[Pending]) -> None:
        """Hold a source transaction's changes until all ``total`` of its events were seen."""
        before = gate.slot_from(self.parked.get(at.key))
        slot = gate.count_event(before, event)
        for item in items:
            stamped = item.model_copy(update={"parked_ms": item.parked_ms or at.now_ms})
            slot, added = gate.park(slot, stamped.model_dump(mode="json"))
            if added:
                metrics.PARKED.labels(item.map, "transaction").inc()
        if slot != before:
            self.parked[at.key] = slot
        replayed = any(r["offset"] == at.offset for r in slot["released"])
        if replayed or len(slot["events"]) >= total:
            await self.release_transaction(at)
        elif slot["waiting"]:
            # Remember the open transaction for the partition's tick (tables are not scanned).
            index_key = f"open-tx@{at.partition}"
            opened = dict(self.states.get(index_key) or {})
            if at.key not in opened:
                opened[at.key] = at.now_ms
                self.states[index_key] = opened

    async def release_transaction(self, at: Position) -> None:
        members = await self.release(at.key, at, reason="transaction")
        index_key = f"open-tx@{at.partition}"
        opened = dict(self.states.get(index_key) or {})
        if opened.pop(at.key, None) is not None:
            self.states[index_key] = opened
        ids = tuple(m.source.id for m in members)
        for member in members:
            await self.forward(member.model_copy(update={"tx_members": ids}), at)

    def pair(self, item: Pending, step: Pair) -> Pending:
        m = self.maps[item.map]
        decision = conflict.resolve(self.pairs.get(step.key) or {}, step.side,  # type: ignore[arg-type]
                                    item.source.ts_ms, step.values, m.master,
                                    self.rt.config.conflict_window_ms, item.source.version)
        self.pairs[step.key] = decision.state
        for loss in decision.losses:
            metrics.CONFLICTS.labels(m.name, loss.side).inc()
            log.warning("two-way conflict on %s %s: %s value %r lost to %s value %r",
                        step.key, loss.field, loss.side, loss.value, loss.winner_side,
                        loss.winner_value)
        return item.model_copy(update={"paired": True, "dropped": decision.drop})

    async def emit(self, item: Pending, step: Emit, at: Position) -> None:
        for fact_key, value in step.publish:
            await self.send(fact_key, FactMsg(key=fact_key, value=value, version=item.source.version))
        if self.paused(item.map, at.partition):
            await self.park(f"paused:{item.map}@{at.partition}", item, at, reason="paused")
            return
        self.flood.succeeded(item.map)
        record_key = step.mapped.record_key
        state = echo.state_from(self.targets.get(record_key))
        if echo.is_stale(state, item.source, delete=item.op == "delete"):
            metrics.DROPPED.labels(item.map, metrics.STALE).inc()
            return
        if item.op == "upsert" and echo.is_noop(state, step.mapped.readable):
            metrics.NOOPS.labels(item.map).inc()
            owned = echo.on_unchanged(state, item.source)
            if owned != state:  # no changelog write when nothing changed
                self.targets[record_key] = owned
            return
        try:
            command = to_command(item, step.mapped, self.maps)
            payload = encode(command)
        except Exception as exc:  # a value the command model or the encoder refuses
            await self.dead_letter(item, at, "emit", exc)
            return
        await self.rt.topic(f"commands.{command.target}").send(
            key=command.record_key.encode(), value=payload)
        self.targets[record_key] = echo.on_sent(state, command.command_id, step.mapped.readable,
                                                item.source, delete=item.op == "delete")
        metrics.COMMANDS.labels(item.map, command.target).inc()

    # -- what the targets tell us --------------------------------------------------------
    async def on_applied(self, msg: AppliedMsg, at: Position) -> None:
        ack = msg.ack
        state = echo.state_from(self.targets.get(ack.record_key))
        self.targets[ack.record_key] = echo.on_ack(state, ack.command_id, ack.fingerprint,
                                                   delete=ack.op == "delete")
        if ack.op == "delete":
            self.forget(at.key)
            return
        known = self.facts.get(at.key) or {}
        await self.learn(at, {**known, "target_id": ack.target_id or known.get("target_id")})

    async def on_observed(self, msg: ObservedMsg, at: Position) -> None:
        state = echo.state_from(self.targets.get(msg.record_key))
        if msg.op == "d":
            self.forget(at.key)
            if "current" in state:  # the row no longer holds what we knew of it
                self.targets[msg.record_key] = echo.on_observed(state, {}, deleted=True)
            return
        if state.get("deleted"):
            # We deleted this row since: the feed shows it from before (its delete follows on
            # the feed). Neither its presence nor its values are taken until we write it again.
            metrics.DROPPED.labels(msg.map, metrics.BEFORE_OUR_DELETE).inc()
            return
        await self.learn(at, {"target_id": msg.target_id})
        m = self.maps[msg.map]
        observed = observed_fields(m, msg.row)
        verdict = echo.classify(state, observed, tuple(f.read_name for f in m.two_way))
        self.targets[msg.record_key] = echo.on_observed(state, observed)
        if isinstance(verdict, echo.Echo):
            metrics.ECHOES.labels(m.name).inc()
        elif isinstance(verdict, echo.Edit):
            item = Pending(id=f"{m.name}:{msg.source.id}:{msg.source.version}", map=m.name,
                           reverse=True, op="upsert", row=msg.row, source=msg.source,
                           born_ms=at.now_ms)
            await self.forward(item, at)
        else:
            metrics.DROPPED.labels(m.name, verdict.reason).inc()

    async def on_control(self, msg: ControlMsg, at: Position) -> None:
        self.states[f"{msg.map}@{at.partition}"] = msg.state
        if msg.state == "running":
            await self.release(f"paused:{msg.map}@{at.partition}", at, reason="resume")

    async def on_tick(self, msg: TickMsg, at: Position) -> None:
        """Release source transactions whose missing members never came (tables we do not read)."""
        limit = msg.ts_ms - self.rt.config.tx_timeout_ms
        opened = self.states.get(f"open-tx@{at.partition}") or {}
        for key, opened_ms in sorted(opened.items(), key=lambda kv: kv[1]):
            if int(opened_ms) <= limit:
                await self.release_transaction(Position(key, at.partition, at.offset, at.now_ms))
