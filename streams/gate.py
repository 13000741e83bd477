"""The dependency gate's parking slots: pure functions over plain JSON values.

A slot is the value of the ``parked`` table under the key a command waits for (a fact key, a
transaction, or a paused map):

    {"waiting": [item, ...], "released": [{"offset": 17, "items": [item, ...]}, ...],
     "events": ["<system>:<table>:<id>:<version>", ...]}

``events`` is kept by transaction slots only: the distinct source events of the transaction seen
so far, counted against its size (an event no map reads still counts).

Items are JSON objects with an ``id`` and ``parked_ms``. Releasing remembers which record
(offset of the gate topic) released which items: Faust restores the table from its changelog,
which may be ahead of the committed offset after a crash, so when the releasing record is
delivered again the same items are sent again instead of being lost. Items already released are
not parked again by a replayed park record.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["Release", "Slot", "count_event", "empty_slot", "park", "release", "slot_from", "waiting_ids"]

KEEP_RELEASES = 8


class Release(TypedDict):
    offset: int
    items: list[dict[str, Any]]


class Slot(TypedDict):
    waiting: list[dict[str, Any]]
    released: list[Release]
    events: list[str]


def empty_slot() -> Slot:
    return Slot(waiting=[], released=[], events=[])


def slot_from(value: Any) -> Slot:
    if isinstance(value, dict):
        return Slot(waiting=list(value.get("waiting") or []),
                    released=list(value.get("released") or []),
                    events=[str(e) for e in value.get("events") or []])
    return empty_slot()


def count_event(slot: Slot, event: str) -> Slot:
    """Count a transaction's source event once, however often it is delivered."""
    if event in slot["events"]:
        return slot
    return Slot(waiting=slot["waiting"], released=slot["released"], events=[*slot["events"], event])


def waiting_ids(slot: Slot) -> set[str]:
    return {str(item["id"]) for item in slot["waiting"]}


def _released_after(slot: Slot, offset: int) -> set[str]:
    return {str(item["id"]) for r in slot["released"] if r["offset"] > offset for item in r["items"]}


def park(slot: Slot, item: dict[str, Any], offset: int) -> tuple[Slot, bool]:
    """Add ``item`` (parked by the gate record at ``offset``) unless it is already waiting, or a
    later record released it already; (slot, added).

    A park replayed after a crash comes from a record before the release that let the item go:
    parking it again would send it twice. A change released and parked again by the releasing
    record itself or a later one (a resumed map whose change fails and pauses the map again, a
    fact forgotten meanwhile) is a new wait, and must be kept.
    """
    item_id = str(item["id"])
    if item_id in waiting_ids(slot) or item_id in _released_after(slot, offset):
        return slot, False
    return Slot(waiting=[*slot["waiting"], item], released=slot["released"], events=slot["events"]), True


def release(slot: Slot, offset: int) -> tuple[Slot, list[dict[str, Any]]]:
    """Release every waiting item on behalf of the gate record at ``offset``.

    A replay of the same record returns the items it released before.
    """
    for r in slot["released"]:
        if r["offset"] == offset:
            return slot, list(r["items"])
    if not slot["waiting"]:
        return slot, []
    items = list(slot["waiting"])
    released = [*slot["released"], Release(offset=offset, items=items)][-KEEP_RELEASES:]
    return Slot(waiting=[], released=released, events=slot["events"]), items
