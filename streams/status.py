"""What the gate holds back: parked changes with their age and the key they wait for.

`parked_entries` is pure (over the ``parked`` table's items, slots and their chunks:
`streams.gate.waiting_in`); `read_parked` rebuilds the table
from its changelog topic, so ``dualwrite status`` can show it while the worker runs elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.config import StreamsConfig
from streams.gate import waiting_in
from streams.maps.model import key_fact
from streams.pending import record_ref

__all__ = ["ParkedEntry", "parked_entries", "read_parked"]


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


def parked_entries(items: Iterable[tuple[str, Any]], now_ms: int) -> list[ParkedEntry]:
    """Every waiting change, oldest first."""
    out = []
    for key, item in waiting_in(dict(items)):  # the slot layout is `streams.gate`'s
        parked = int(item.get("parked_ms") or item.get("born_ms") or now_ms)
        out.append(ParkedEntry(map=str(item.get("map")), change_id=str(item.get("id")),
                               waits_for=key, parked_ms=parked,
                               age_s=max(0.0, (now_ms - parked) / 1000),
                               unwritten_delete=_unwritten_delete(key, item)))
    return sorted(out, key=lambda e: e.parked_ms)


async def _behind(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                  end: dict[TopicPartition, int]) -> bool:
    for tp in tps:
        if await consumer.position(tp) < end[tp]:
            return True
    return False


async def read_parked(config: StreamsConfig, timeout_s: float = 10.0) -> list[ParkedEntry]:
    """Replay ``<app id>-parked-changelog`` to its end and list what waits."""
    topic = f"{config.app_id}-parked-changelog"
    consumer = AIOKafkaConsumer(bootstrap_servers=config.bootstrap_servers,
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
