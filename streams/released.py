"""Released source transactions, by time, until their parking slots are forgotten.

Every source transaction gets a slot of its own in the ``parked`` table (``tx:<system>:<txid>``),
and a released slot stays: its bookkeeping, its kept chunks and a marker per event, which a
record handled again after a crash needs (`streams.gate`). Without this module those keys would
stay for ever, a few per transaction event. So each release is noted in a time bucket of its gate
partition, and the partition's tick forgets the slots of buckets older than ``tx_forget_ms``
(`StreamsConfig`; an hour by default, far past any commit interval or uncommitted window):
`streams.gate.forget` deletes a slot only if that release was its last and nothing waits in it.

In the ``states`` table, small values only (every value is a changelog record):

    released-tx@<partition>                  {"<bucket>": [first part left, parts], ...}
    released-tx@<partition>@<bucket>.<n>     [[slot key, releasing gate offset], ...] (at most
                                             `PART_ENTRIES`)

A bucket is `BUCKET_MS` of release time (the record's ``now_ms``). A tick forgets at most
`PARTS_PER_TICK` parts, oldest first, so one tick's writes stay bounded after a long stop. Order
keeps every prefix safe to do again: a new part is named in the index before it is written, a
part's slots are forgotten before the part is deleted, the index is moved on last. A release
noted twice (its record handled again) is forgotten twice: the second finds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from streams import gate

__all__ = ["BUCKET_MS", "PARTS_PER_TICK", "PART_ENTRIES", "forget_due", "note_release"]

BUCKET_MS = 60_000
PART_ENTRIES = 100
PARTS_PER_TICK = 20
TABLE = "states"


class _Tables(Protocol):
    def get(self, table: str, key: str) -> Any: ...

    def put(self, table: str, key: str, value: Any) -> None: ...

    def delete(self, table: str, key: str) -> None: ...


def _index_key(partition: int) -> str:
    return f"released-tx@{partition}"


def _part_key(partition: int, bucket: str, n: int) -> str:
    return f"{_index_key(partition)}@{bucket}.{n}"


def note_release(fx: _Tables, partition: int, slot_key: str, offset: int, now_ms: int) -> None:
    """Note that the gate record at ``offset`` (partition ``partition``) released ``slot_key``."""
    index = dict(fx.get(TABLE, _index_key(partition)) or {})
    bucket = str(now_ms // BUCKET_MS)
    first, parts = index.get(bucket, (0, 0))
    entries = list(fx.get(TABLE, _part_key(partition, bucket, parts - 1)) or []) if parts else []
    if not parts or len(entries) >= PART_ENTRIES:
        parts, entries = parts + 1, []
        index[bucket] = [first, parts]
        fx.put(TABLE, _index_key(partition), index)  # the part is named before it is written
    fx.put(TABLE, _part_key(partition, bucket, parts - 1), [*entries, [slot_key, offset]])


def forget_due(fx: _Tables, partition: int, now_ms: int, keep_ms: int,
               forget: Callable[[str, int], list[gate.Write]], write: Callable[[list[gate.Write]], None]) -> int:
    """Forget the slots noted in buckets that ended more than ``keep_ms`` before ``now_ms``, at
    most `PARTS_PER_TICK` parts of them: ``forget(slot key, offset)`` decides a slot's writes,
    ``write`` records them. Returns the slots looked at."""
    index = dict(fx.get(TABLE, _index_key(partition)) or {})
    budget, looked = PARTS_PER_TICK, 0
    moved = False
    for bucket in sorted(index, key=int):
        if budget == 0 or (int(bucket) + 1) * BUCKET_MS > now_ms - keep_ms:
            break
        first, parts = index[bucket]
        while first < parts and budget:
            part = _part_key(partition, bucket, first)
            for slot_key, offset in fx.get(TABLE, part) or []:
                write(forget(str(slot_key), int(offset)))
                looked += 1
            fx.delete(TABLE, part)  # after its slots
            first, budget = first + 1, budget - 1
        moved = True
        if first < parts:
            index[bucket] = [first, parts]
        else:
            del index[bucket]
    if moved:
        fx.put(TABLE, _index_key(partition), index)
    return looked
