"""The gate agent's state holder and the applier of its effects.

`Gatekeeper.handle` asks the pure handler of the message (`streams.handlers`) for its effects
(`streams.effects`), reading the Faust tables, and `apply` performs them. A handler that raises
has performed nothing (the agent dead-letters the gate message at stage ``gate``).

Effects are applied one by one, in the order the handler produced them, which is the order the
gate always wrote and sent in. Offsets are committed only after the producer is flushed, but
Faust restores tables from their changelogs, which may be ahead of the committed offset after a
crash: any prefix of a record's effects may survive, and the record is then handled again. The
order makes every such prefix safe to replay:

- a release is recorded in its parked slot (with the releasing offset) before the released
  changes are forwarded: a replay of that record finds the release and forwards the same
  changes again (`streams.gate.release`), instead of finding the slot empty and losing them;
- a park is written before anything is sent for it, and a replayed park of a change already
  waiting or released is a no-op (`streams.gate.park`);
- an emit sends the facts it publishes (the key a delete of the record will wait for) before the
  command: the target never holds a row whose key fact the gate may never hear of;
- the ``targets`` state of a row is written after its command is sent: it never claims a write
  that was not produced (a replay re-sends the command; the sink is idempotent by record key);
- a map paused by a run of rejections is marked paused in ``states`` before the pause is
  published, and a fact is stored before what waited for it is released.

Sends are awaited one at a time, as before: the producer keeps them in order per partition.
Two agents hand the gatekeeper messages (the gate agent, and the acks agent for an ack it
handles in place), and ingest counts rejections: each message is read and applied under one
lock, so no handler reads the tables while another's effects are half applied across a send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from streams import metrics
from streams.app import Runtime
from streams.effects import (
    FLOOD,
    CommandSend,
    ControlSend,
    Count,
    DeadLetter,
    Delete,
    Effect,
    Fill,
    Forget,
    GateSend,
    Learn,
    Log,
    Put,
)
from streams.factview import KNOWN, KNOWN_VERSIONED, FactView
from streams.flood import FloodGuard
from streams.handlers import Context, Position, handle, reject
from streams.published import PUBLISHED, Published
from streams.wire import GateMsg
from topics import encode

__all__ = ["Gatekeeper", "Position"]

log = logging.getLogger(__name__)

GATE_TABLES = ("facts", "targets", "parked", "pairs", "states")


class StoreReads(Mapping[str, Any]):
    """A Faust table read straight from its store (``table.data``): one store lookup a read,
    where the table's own ``get`` asks the store twice (``key in`` it, then its value).
    Writes still go through the table, which keeps its changelog."""

    def __init__(self, table: Any) -> None:
        self._table = table  # its store is asked for at each read: Faust makes it when it starts

    def __getitem__(self, key: str) -> Any:
        return self._table.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._table.data[key]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


def store_reads(table: Any) -> Mapping[str, Any]:
    """How to read ``table`` with one lookup a read: a Faust table through `StoreReads`; a table
    that already reads so (`streams.store.Table`, ``ONE_LOOKUP``) as it is."""
    return table if getattr(table, "ONE_LOOKUP", False) else StoreReads(table)


class Gatekeeper:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.ctx = Context(maps=rt.maps, config=rt.config, gate_topic=rt.gate_topic_name)
        self.last_handled = time.monotonic()
        self.flood = FloodGuard(rt.config.pause_after_rejections)
        self.known = FactView()  # mirrors `facts` for `ingest`, which reads it before sending a change
        self.tables: dict[str, Any] = {name: rt.table(name) for name in GATE_TABLES}
        self.tables[FLOOD] = self.flood.runs
        self.tables[KNOWN] = self.known  # read-only for handlers; changed through Learn/Forget/Fill
        self.tables[KNOWN_VERSIONED] = self.known.versioned
        self.published = Published()  # key facts sent in this run (`streams.published`)
        self.tables[PUBLISHED] = self.published
        # What the handlers read: the same tables, each read with one store lookup.
        self.reads: dict[str, Any] = {**self.tables, **{name: store_reads(rt.table(name)) for name in GATE_TABLES}}
        self._turn = asyncio.Lock()

    async def handle(self, msg: GateMsg, at: Position) -> None:
        async with self._turn:
            self.last_handled = time.monotonic()
            await self.apply(handle(msg, at, self.reads, self.ctx))

    async def rejected(self, map_name: str, partition: int | None) -> None:
        """Count a rejected change of ``map_name``; a run of them pauses the map everywhere."""
        async with self._turn:
            await self.apply(reject(map_name, partition, int(time.time() * 1000), self.reads, self.ctx))

    async def apply(self, effects: Iterable[Effect]) -> None:
        """Perform ``effects`` in order (see the module docstring for why the order matters)."""
        for e in effects:
            if isinstance(e, Put):
                self.tables[e.table][e.key] = e.value
            elif isinstance(e, Delete):
                self.tables[e.table].pop(e.key, None)
            elif isinstance(e, GateSend):
                await self.rt.send_gate(e.key, e.msg, e.partition)
            elif isinstance(e, CommandSend):
                await self.rt.send(f"commands.{e.target}", e.key.encode(), e.payload)
            elif isinstance(e, DeadLetter):
                await self.rt.send("dlq", e.key, e.value, headers=list(e.headers))
            elif isinstance(e, ControlSend):
                await self.rt.send("control", e.state.map.encode(), encode(e.state))
            elif isinstance(e, Count):
                metrics.child(e.metric, *e.labels).inc(e.amount)
            elif isinstance(e, Log):
                log.log(e.level, e.message, *e.args)
            elif isinstance(e, Learn):
                self.known.learn(e.key, e.value, e.version)
            elif isinstance(e, Forget):
                self.known.forget(e.key)
            elif isinstance(e, Fill):
                self.known.fill(e.key, e.value)
