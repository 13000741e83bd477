"""The dependency gate's parking slots: pure functions over the ``parked`` table's values.

A slot is what waits under one key of the ``parked`` table: a fact key, a transaction
(``tx:...``), or a paused map (``paused:<map>@<partition>``). Its items (JSON objects with an
``id`` and ``parked_ms``: `streams.pending.Pending` dumps) wait until the slot is released.

Layout. Every value is bounded and a park writes a bounded number of bytes, whatever waits: one
JSON value holding everything passed Kafka's 1 MB message limit with a few thousand changes
waiting (the worker crash-looped on ``MessageSizeTooLargeError``), and rewriting it on every park
wrote O(n^2) bytes. The slot's own key holds only bookkeeping; items live under derived keys of
the same table (``<slot key>\\x00<kind><name>``):

    <slot>              {"v": 2, "head": h, "tail": t, "events": n,
                         "released": [{"offset": 17, "from": a, "to": b}, ...]}
    <slot>\\x00c<n>      chunk n: {"items": [item, ...], "bytes": <their encoded size>}
    <slot>\\x00i<id>     the chunk the item ``id`` was last parked in
    <slot>\\x00e<event>  a transaction's source event seen: its ordinal (1, 2, ...)
    <slot>\\x00o<n>      the event of ordinal n (what `forget` deletes the markers by)

Chunks ``head..tail`` hold the waiting items in park order; a chunk is closed at `CHUNK_ITEMS`
items or `CHUNK_BYTES` bytes (a single larger item gets a chunk of its own), so a park rewrites
one chunk, one index entry and, when a chunk is opened, the slot. A release moves ``head`` past
``tail`` and records ``{"offset", "from", "to"}``: the chunks it released stay for the last
`KEEP_RELEASES` releases (what a replay needs) and are deleted, with their index entries, when
their release is forgotten.

Forgetting. A released slot is still bookkeeping, kept chunks, index entries and event markers:
for a transaction (``tx:...``, one slot per source transaction) that is a few keys per event,
for ever. `forget` deletes all of it once the processor says the release is old enough (past
any replay: `streams.handlers` keeps the released transactions in time buckets and forgets a
bucket at the tick after ``tx_forget_ms``), and only if nothing waits in the slot and no record
released it since. Markers written before the ordinal entries existed are left behind.

Replay. Faust restores the table from its changelog, which may be ahead of the committed offset
after a crash, so any prefix of a record's writes may survive and the record is handled again:

- a release is recorded with the gate offset that released it: when that record is delivered
  again the same items are read from the kept chunks and sent again instead of being lost;
- a replayed park of an item already waiting (its index names a chunk at or after ``head``, or
  it is in the open chunk already) is not parked again, nor is one that a later record released
  (its index names a chunk of a release recorded after the park's offset). A change released and
  parked again by the releasing record itself or a later one (a resumed map whose change fails and
  pauses the map again, a fact forgotten meanwhile) is a new wait, and is kept;
- a transaction's events are counted once: the event's marker carries its ordinal and is written
  before the count, so a count lost in a crash is taken back from the marker (never counted twice);
- writes are ordered so that every prefix is repaired by the replay: a new chunk is named in the
  slot before it is written, a chunk before the index entries that point into it, index entries
  are deleted before their chunk, and a forgotten release's chunks before the slot that drops it.

Partition. Faust writes a key's changelog record to the partition of the record being handled.
Derived keys are read and written only together with their slot, while a record of the slot's
partition is handled: a fact or transaction slot by records of its own gate key (and the tick of
its partition, for transactions listed in ``open-tx@<partition>``), a paused map's slot
(partition-local by name) by records of that partition. So each lives in its slot's partition.

Old layout. A slot written before this layout (``{"waiting": [...], "released": [{"offset",
"items"}], "events": [...]}``) is read as released chunks ``0..m-1``, its waiting items as chunk
``m``, and rewritten in the new layout by the first operation that touches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypedDict

import orjson

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_ITEMS",
    "KEEP_RELEASES",
    "Read",
    "Release",
    "Slot",
    "Write",
    "count_event",
    "empty_slot",
    "forget",
    "is_derived",
    "is_waiting",
    "park",
    "release",
    "released_at",
    "waiting_in",
]

KEEP_RELEASES = 8
CHUNK_ITEMS = 100
CHUNK_BYTES = 48_000  # a chunk's items, encoded: well under Kafka's 1 MB message limit

SEP = "\x00"

Read = Callable[[str], Any]  # the parked table's value at a key (None when missing)
Write = tuple[str, Any]  # (key, value) to put; value None: delete the key


class Release(TypedDict):
    offset: int
    # chunks [from, to) it released
    start: int
    stop: int


class Slot(TypedDict):
    head: int
    tail: int
    events: int
    released: list[Release]


def empty_slot() -> Slot:
    return Slot(head=0, tail=0, events=0, released=[])


def chunk_key(key: str, n: int) -> str:
    return f"{key}{SEP}c{n}"


def index_key(key: str, item_id: str) -> str:
    return f"{key}{SEP}i{item_id}"


def event_key(key: str, event: str) -> str:
    return f"{key}{SEP}e{event}"


def ordinal_key(key: str, n: int) -> str:
    return f"{key}{SEP}o{n}"


def is_derived(key: str) -> bool:
    """A chunk, index entry or event marker of a slot, not a slot."""
    return SEP in key


def _encode(slot: Slot) -> dict[str, Any]:
    return {"v": 2, "head": slot["head"], "tail": slot["tail"], "events": slot["events"],
            "released": [{"offset": r["offset"], "from": r["start"], "to": r["stop"]} for r in slot["released"]]}


def _decode(value: dict[str, Any]) -> Slot:
    return Slot(head=int(value["head"]), tail=int(value["tail"]), events=int(value.get("events") or 0),
                released=[Release(offset=int(r["offset"]), start=int(r["from"]), stop=int(r["to"]))
                          for r in value.get("released") or []])


def _size(item: dict[str, Any]) -> int:
    return len(orjson.dumps(item))


def _chunk(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "bytes": sum(_size(i) for i in items)}


class _Store:
    """One slot read through ``read``, with the writes decided so far laid over it (in order)."""

    def __init__(self, key: str, read: Read) -> None:
        self.key = key
        self._read = read
        self._written: dict[str, Any] = {}
        self.writes: list[Write] = []
        self.slot = self._load()

    def get(self, key: str) -> Any:
        return self._written[key] if key in self._written else self._read(key)

    def put(self, key: str, value: Any) -> None:
        self._written[key] = value
        self.writes.append((key, value))

    def delete(self, key: str) -> None:
        self.put(key, None)

    def save(self, slot: Slot) -> None:
        self.slot = slot
        self.put(self.key, _encode(slot))

    def items(self, n: int) -> list[dict[str, Any]]:
        value = self.get(chunk_key(self.key, n))
        return list(value["items"]) if isinstance(value, dict) else []

    def chunk_bytes(self, n: int) -> int:
        value = self.get(chunk_key(self.key, n))
        return int(value.get("bytes") or 0) if isinstance(value, dict) else 0

    def between(self, start: int, stop: int) -> list[dict[str, Any]]:
        return [item for n in range(start, stop) for item in self.items(n)]

    def _load(self) -> Slot:
        value = self._read(self.key)
        if not isinstance(value, dict):
            return empty_slot()
        if value.get("v") == 2:
            return _decode(value)
        return self._migrate(value)

    def _migrate(self, value: dict[str, Any]) -> Slot:
        """An old-layout slot, rewritten: its releases as chunks 0..m-1, its waiting as chunk m."""
        released = list(value.get("released") or [])
        groups = [list(r.get("items") or []) for r in released] + [list(value.get("waiting") or [])]
        events = [str(e) for e in value.get("events") or []]
        if not any(groups) and not events:
            return empty_slot()
        for n, items in enumerate(groups):
            if items:
                self.put(chunk_key(self.key, n), _chunk(items))
                for item in items:
                    self.put(index_key(self.key, str(item["id"])), n)
        for ordinal, event in enumerate(events, start=1):
            self.put(event_key(self.key, event), ordinal)
        m = len(released)
        self.save(Slot(head=m, tail=m, events=len(events),
                       released=[Release(offset=int(r["offset"]), start=n, stop=n + 1)
                                 for n, r in enumerate(released)]))
        return self.slot


def _held(store: _Store, item_id: str, offset: int) -> bool:
    """Whether ``item_id`` waits already, or a record after ``offset`` released it (the park
    being handled is a replay), as its index entry tells."""
    n = store.get(index_key(store.key, item_id))
    if n is None:
        return False
    slot = store.slot
    if int(n) >= slot["head"]:
        return True
    return any(r["start"] <= int(n) < r["stop"] and r["offset"] > offset for r in slot["released"])


def park(key: str, items: list[dict[str, Any]], offset: int, read: Read) -> tuple[list[Write], list[dict[str, Any]]]:
    """Park ``items`` (by the gate record at ``offset``) in the slot at ``key``: (writes, the
    items added). An item already waiting, or released by a later record, is not added."""
    store = _Store(key, read)
    added: list[dict[str, Any]] = []
    tail = store.slot["tail"]
    chunk, size = store.items(tail), store.chunk_bytes(tail)
    unsaved: list[str] = []  # index entries of the open chunk, written after it

    def flush() -> None:
        if unsaved:
            store.put(chunk_key(key, tail), {"items": chunk, "bytes": size})
            for item_id in unsaved:
                store.put(index_key(key, item_id), tail)
            unsaved.clear()

    for item in items:
        item_id = str(item["id"])
        if _held(store, item_id, offset):
            continue
        if any(str(i["id"]) == item_id for i in chunk):
            # In the open chunk without its index entry: a park cut short by a crash.
            if item_id not in unsaved:
                store.put(index_key(key, item_id), tail)
            continue
        item_size = _size(item)
        if chunk and (len(chunk) >= CHUNK_ITEMS or size + item_size > CHUNK_BYTES):
            flush()
            tail += 1
            chunk, size = [], 0
            store.save(Slot(head=store.slot["head"], tail=tail, events=store.slot["events"],
                            released=store.slot["released"]))
        elif store.get(key) is None:  # a new slot: named before its first chunk
            store.save(store.slot)
        chunk = [*chunk, item]
        size += item_size
        unsaved.append(item_id)
        added.append(item)
    flush()
    return store.writes, added


def release(key: str, offset: int, read: Read) -> tuple[list[Write], list[dict[str, Any]]]:
    """Release every waiting item of the slot at ``key`` on behalf of the gate record at
    ``offset``: (writes, the items in park order). A replay of the same record returns the
    items it released before."""
    store = _Store(key, read)
    slot = store.slot
    for r in slot["released"]:
        if r["offset"] == offset:
            return store.writes, store.between(r["start"], r["stop"])
    items = store.between(slot["head"], slot["tail"] + 1)
    if not items:
        return store.writes, []
    released = [*slot["released"], Release(offset=offset, start=slot["head"], stop=slot["tail"] + 1)]
    for gone in released[:-KEEP_RELEASES]:
        for n in range(gone["start"], gone["stop"]):
            for item in store.items(n):
                entry = index_key(key, str(item["id"]))
                if store.get(entry) == n:  # not parked again since
                    store.delete(entry)
            store.delete(chunk_key(key, n))
    store.save(Slot(head=slot["tail"] + 1, tail=slot["tail"] + 1, events=slot["events"],
                    released=released[-KEEP_RELEASES:]))
    return store.writes, items


def count_event(key: str, event: str, read: Read) -> tuple[list[Write], int]:
    """Count a transaction's source event once, however often it is delivered: (writes, the
    number of distinct events seen)."""
    store = _Store(key, read)
    slot = store.slot
    marker = store.get(event_key(key, event))
    if marker is None:
        marker = slot["events"] + 1
        store.put(ordinal_key(key, marker), event)  # before the marker: a marker always has one
        store.put(event_key(key, event), marker)
    if int(marker) > slot["events"]:
        store.save(Slot(head=slot["head"], tail=slot["tail"], events=int(marker), released=slot["released"]))
    return store.writes, store.slot["events"]


def forget(key: str, offset: int, read: Read) -> list[Write]:
    """The writes that delete the slot at ``key`` whole, once the gate record at ``offset``
    released it (a transaction whose events left nothing to wait may have no release), unless
    something waits in it or a later record released it (none then). A kept chunk goes after
    its items' index entries, an ordinal entry after its event's marker, the slot last: doing
    it again finishes any prefix of it."""
    store = _Store(key, read)
    slot = store.slot
    if read(key) is None or any(r["offset"] > offset for r in slot["released"]) \
            or any(store.items(n) for n in range(slot["head"], slot["tail"] + 1)):
        return []
    for r in slot["released"]:
        for n in range(r["start"], r["stop"]):
            for item in store.items(n):
                entry = index_key(key, str(item["id"]))
                if store.get(entry) is not None:
                    store.delete(entry)
            if store.get(chunk_key(key, n)) is not None:
                store.delete(chunk_key(key, n))
    for n in range(1, slot["events"] + 1):
        event = store.get(ordinal_key(key, n))
        if event is not None:
            if store.get(event_key(key, str(event))) is not None:
                store.delete(event_key(key, str(event)))
            store.delete(ordinal_key(key, n))
    store.delete(key)
    return store.writes


def released_at(key: str, offset: int, read: Read) -> bool:
    """Whether the gate record at ``offset`` released the slot (it is being handled again)."""
    return any(r["offset"] == offset for r in _Store(key, read).slot["released"])


def is_waiting(key: str, read: Read) -> bool:
    store = _Store(key, read)
    return any(store.items(n) for n in range(store.slot["head"], store.slot["tail"] + 1))


def waiting_in(table: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(slot key, item) for every waiting item of a whole ``parked`` table, in park order per
    slot (`streams.status` reads the table rebuilt from its changelog)."""
    for key in table:
        if is_derived(key):
            continue
        store = _Store(key, table.get)
        for n in range(store.slot["head"], store.slot["tail"] + 1):
            for item in store.items(n):
                yield key, item
