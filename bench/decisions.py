"""The worker's decisions alone: the ceiling of one worker process, whatever Kafka and Faust cost.

The P1 project workload goes through what the worker decides per change, in one process with no
broker, no Faust and no RocksDB: the worker's own `streams.ingest.Ingest` (decode the key and the
event, dedupe by source version, route with the worker's `FactView`, encode the gate records),
and the real `streams.gatekeeper.Gatekeeper` handling each gate message as it was made, as the
batch engine (`streams.engine`) handles those of the partitions it owns (the pure handlers and
the applier), over tables that are dicts and a send that queues gate messages for the same loop.
What is left out is exactly Kafka (consume, produce, commit) and Faust (events,
changelogs, stores): P1 next to this figure says how much of the worker's time is its own logic.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from bench.workload import project_events
from streams.config import StreamsConfig
from streams.gatekeeper import GATE_TABLES, Gatekeeper, Position
from streams.ingest import Ingest, Taken
from streams.maps import default_registry
from topics import cdc_topic, encode, encode_key

__all__ = ["Decided", "decisions_rate"]

_GATE_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class Decided:
    changes: int
    changes_per_s: float
    gate_records: int  # handled by the gatekeeper, the changes' own and those they sent
    commands: int


class _Table(dict[str, Any]):
    """A Faust table as the gatekeeper uses it: item access, and its store as ``data``."""

    @property
    def data(self) -> dict[str, Any]:
        return self


class _Runtime:
    """What `Gatekeeper` asks of `streams.app.Runtime`: the maps, the settings, the tables, and
    a send (gate records queue for the same loop; commands and the rest are counted)."""

    def __init__(self) -> None:
        self.config = StreamsConfig()
        self.maps = default_registry()
        self.tables = {name: _Table() for name in GATE_TABLES}
        self.gate: deque[tuple[bytes, Any]] = deque()  # (key, message)
        self.commands = 0

    @property
    def gate_topic_name(self) -> str:
        return "gate"

    def table(self, name: str) -> _Table:
        return self.tables[name]

    async def send(self, name: str, key: bytes | None, value: bytes | None, *,
                   partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        if name.startswith("commands."):
            self.commands += 1

    async def send_gate(self, key: str, msg: Any, partition: int | None = None) -> None:
        """A gate message the gatekeeper sends, queued as it is (as `streams.engine` keeps one
        of a partition it owns)."""
        self.gate.append((key.encode(), msg))


async def _run(records: list[tuple[str, bytes, bytes]], rt: _Runtime) -> int:
    gatekeeper = Gatekeeper(rt)  # type: ignore[arg-type]
    by_topic = {cdc_topic(system, table): (system, table)  # type: ignore[arg-type]
                for system, table in rt.maps.cdc_tables()}
    ingest = Ingest(rt.maps, by_topic, {}, gatekeeper.known, _GATE_MAX_BYTES)
    handled = 0
    for position, (topic, key, value) in enumerate(records):
        taken = ingest.take(topic, key, value, position, retried=False, now_ms=0)
        if not isinstance(taken, Taken):
            continue  # the workload has no tombstones nor bad records; a duplicate is skipped
        rt.gate.extend((key, msg) for (key, _value), msg in zip(taken.records, taken.messages, strict=True))
        while rt.gate:
            gate_key, msg = rt.gate.popleft()
            handled += 1
            await gatekeeper.handle(msg, Position(gate_key.decode(), 0, handled, 0))
    return handled


def decisions_rate(records: int, updates: int) -> Decided:
    """The P1 workload of ``records`` projects of ``updates`` versions each (and their legal
    entity), decided in this process (see the module docstring)."""
    encoded = [(topic, encode_key(key), encode(event)) for topic, key, event in project_events(records, updates)]
    rt = _Runtime()
    started = time.perf_counter()
    handled = asyncio.run(_run(encoded, rt))
    return Decided(len(encoded), len(encoded) / (time.perf_counter() - started), handled, rt.commands)
