"""The worker's decisions alone: the ceiling of one worker process, whatever Kafka and Faust cost.

The P1 project workload goes through what the worker decides per change, in one process with no
broker, no Faust and no RocksDB: decode the key and the event, dedupe by source version, route
(`streams.route.route_change`, with the worker's `FactView`), encode and decode each gate record,
and the real `streams.gatekeeper.Gatekeeper` handling it (the pure handlers and the applier),
over tables that are dicts and a send that queues gate records for the same loop. What is left
out is exactly Kafka (consume, produce, commit) and Faust (events, changelogs, stores): P1 next
to this figure says how much of the worker's time is its own logic.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from bench.workload import project_events
from streams import dedupe
from streams.config import StreamsConfig
from streams.gatekeeper import GATE_TABLES, Gatekeeper, Position
from streams.maps import default_registry
from streams.route import route_change
from streams.wire import FactMsg, decode_gate, gate_records
from topics import cdc_topic, decode_event, decode_key, encode, encode_key

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
        self.gate: deque[tuple[bytes, bytes]] = deque()
        self.commands = 0

    @property
    def gate_topic_name(self) -> str:
        return "gate"

    def table(self, name: str) -> _Table:
        return self.tables[name]

    async def send(self, name: str, key: bytes | None, value: bytes | None, *,
                   partition: int | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        if name == "gate" and key is not None and value is not None:
            self.gate.append((key, value))
        elif name.startswith("commands."):
            self.commands += 1


async def _run(records: list[tuple[str, bytes, bytes]], rt: _Runtime) -> int:
    gatekeeper = Gatekeeper(rt)  # type: ignore[arg-type]
    view = gatekeeper.known
    by_topic = {cdc_topic(system, table): (system, table)  # type: ignore[arg-type]
                for system, table in rt.maps.cdc_tables()}
    versions: dict[str, Any] = {}
    offset = 0
    for position, (topic, key, value) in enumerate(records):
        record_id = decode_key(key).id
        change = decode_event(value)
        assert change is not None  # the workload has no tombstones
        system, table = by_topic[topic]
        seen_key = dedupe.seen_key(system, table, record_id)
        version = change.source.version_int
        seen = dedupe.seen_from(versions.get(seen_key))
        if dedupe.is_duplicate(seen, version, position, retried=False):
            continue
        versions[seen_key] = dedupe.Seen(version=version, offset=position)
        routed = route_change(rt.maps, system, table, record_id, change, 0, view.get,
                              prev_version=None if seen is None else seen["version"])
        for fact_key, msg in routed.messages:
            if isinstance(msg, FactMsg) and msg.value is not None:
                view.learn(fact_key, msg.value, msg.version)
        rt.gate.extend(gate_records(routed.messages, _GATE_MAX_BYTES))
        while rt.gate:
            gate_key, gate_value = rt.gate.popleft()
            offset += 1
            await gatekeeper.handle(decode_gate(gate_value), Position(gate_key.decode(), 0, offset, 0))
    return offset


def decisions_rate(records: int, updates: int) -> Decided:
    """The P1 workload of ``records`` projects of ``updates`` versions each (and their legal
    entity), decided in this process (see the module docstring)."""
    encoded = [(topic, encode_key(key), encode(event)) for topic, key, event in project_events(records, updates)]
    rt = _Runtime()
    started = time.perf_counter()
    handled = asyncio.run(_run(encoded, rt))
    return Decided(len(encoded), len(encoded) / (time.perf_counter() - started), handled, rt.commands)
