"""What the gate holds back: parked changes with their age and the key they wait for.

`parked_entries` is pure (over the ``parked`` table's items, slots and their chunks:
`streams.gate.waiting_in`); `read_parked` rebuilds the table
from its changelog topic, so ``dualwrite status`` can show it while the worker runs elsewhere.

`awaited` names, from the map registry alone, the map that would bring what a change waits for
(issue 12: the reason names the missing record and the map that brings it): a ``key:<map>:``
fact is that map's write; a ``present:<entity>(...)`` fact or a ``row:<system>:<table>:`` row
comes from the maps whose target is that table; nothing brings a row of a table no map writes
(a Dataverse-born project task), so the operator creates it. `oldest_by_map` is the worker's
`streams.metrics.PARKED_OLDEST_AGE` gauge over its own partitions.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.config import StreamsConfig
from streams.gate import waiting_in
from streams.maps.model import key_fact
from streams.maps.registry import MapRegistry
from streams.pending import record_ref

__all__ = ["Awaited", "ParkedEntry", "awaited", "oldest_by_map", "parked_entries", "read_parked"]


@dataclass(frozen=True)
class ParkedEntry:
    map: str
    change_id: str
    waits_for: str
    parked_ms: int
    age_s: float
    # A delete waiting for the key its record was never written under (yet): not stuck, only
    # held in case the record's create, parked elsewhere, is written after all.
    unwritten_delete: bool = False


def _unwritten_delete(key: str, item: dict[str, Any]) -> bool:
    source = item.get("source") or {}
    return item.get("op") == "delete" and isinstance(source, dict) and \
        key == key_fact(str(item.get("map")), record_ref(str(source.get("id")), item.get("member")))


def parked_entries(table: Mapping[str, Any] | Iterable[tuple[str, Any]], now_ms: int) -> list[ParkedEntry]:
    """Every waiting change, oldest first. Given the table itself (a worker's live ``parked``
    table), only slots and their waiting chunks are read: the released chunks kept for replay
    (most of what the table holds) are never decoded."""
    out = []
    source = table if isinstance(table, Mapping) else dict(table)
    for key, item in waiting_in(source):  # the slot layout is `streams.gate`'s
        parked = int(item.get("parked_ms") or item.get("born_ms") or now_ms)
        out.append(ParkedEntry(map=str(item.get("map")), change_id=str(item.get("id")),
                               waits_for=key, parked_ms=parked,
                               age_s=max(0.0, (now_ms - parked) / 1000),
                               unwritten_delete=_unwritten_delete(key, item)))
    return sorted(out, key=lambda e: e.parked_ms)


def oldest_by_map(entries: Iterable[ParkedEntry], maps: Iterable[str]) -> dict[str, float]:
    """Age in seconds of the oldest waiting change per map, 0 for a map with none waiting (so a
    gauge falls back when its changes are released). Deletes of records never written are held
    by design, not stuck, and never make the age (as in `dualwrite status`)."""
    out = dict.fromkeys(maps, 0.0)
    for entry in entries:
        if not entry.unwritten_delete:
            out[entry.map] = max(out.get(entry.map, 0.0), entry.age_s)
    return out


@dataclass(frozen=True)
class Awaited:
    """What a parked change waits for, in an operator's words.

    ``brought_by`` are the maps whose writes would bring the missing record (empty: none does);
    ``hint`` is the sentence `dualwrite status` prints after "waiting for <record>;"."""

    record: str
    brought_by: tuple[str, ...]
    hint: str


def _bringers(maps: MapRegistry, table: str, system: str | None = None) -> tuple[str, ...]:
    return tuple(sorted(m.name for m in maps.maps if m.target.table == table
                        and (system is None or m.target.system == system)))


def awaited(maps: MapRegistry, waits_for: str) -> Awaited:
    """The map that would bring the record behind the gate key ``waits_for`` (fact keys as
    `streams.maps.model` builds them; ``tx:`` and ``paused:`` slots of `streams.gate`)."""
    kind, _, rest = waits_for.partition(":")
    brought: tuple[str, ...] = ()
    table: str | None = None
    if kind in ("key", "partner", "fanout"):
        # key:<map>:<id> is what that map wrote; a partner is the other half of the same map.
        name = rest.split(":", 1)[0]
        brought = (name,) if name in maps else ()
    elif kind == "present":
        table = rest.split("(", 1)[0]
        brought = _bringers(maps, table)
    elif kind == "row":
        system, _, table_id = rest.partition(":")
        table = table_id.split(":", 1)[0]
        brought = _bringers(maps, table, system)
    elif kind == "paused":
        name = rest.rsplit("@", 1)[0]
        return Awaited(waits_for, (), f"map {name} is paused: `dualwrite maps resume {name}`")
    elif kind == "tx":
        return Awaited(waits_for, (), "the rest of its source transaction (released after "
                                      "DUALWRITE_PROCESSOR__TX_TIMEOUT_MS)")
    if not brought:
        where = [s for s, t in maps.cdc_tables() if t == table]
        place = f" in {where[0]} ({table})" if where else ""
        return Awaited(waits_for, (), f"no map brings it: create the row{place}")
    names = " or ".join(brought)
    return Awaited(waits_for, brought, f"the {names} map brings it: run its initial sync or "
                                       "create the row")


async def _behind(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                  end: dict[TopicPartition, int]) -> bool:
    for tp in tps:
        if await consumer.position(tp) < end[tp]:
            return True
    return False


async def read_parked(config: StreamsConfig, timeout_s: float = 10.0) -> list[ParkedEntry]:
    """Replay ``<app id>-parked-changelog`` to its end and list what waits."""
    topic = f"{config.app_id}-parked-changelog"
    # Committed records only: the batch engine's changelog holds the writes of batches it aborted.
    consumer = AIOKafkaConsumer(bootstrap_servers=config.bootstrap_servers, isolation_level="read_committed",
                                enable_auto_commit=False, group_id=None, **config.aiokafka_auth())
    await consumer.start()
    table: dict[str, Any] = {}
    try:
        # Faust creates changelogs with the app's partition count.
        tps = [TopicPartition(topic, p) for p in range(config.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and await _behind(consumer, tps, end):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for r in records:
                    key = orjson.loads(r.key) if r.key else None
                    if r.value is None:
                        table.pop(str(key), None)
                    else:
                        table[str(key)] = orjson.loads(r.value)
    finally:
        await consumer.stop()
    return parked_entries(table.items(), int(time.time() * 1000))
