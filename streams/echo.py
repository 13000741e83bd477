"""Echo detection and target-side edits, over what we know of one target record.

State per target record (value of the ``targets`` table, keyed by its record key):

    {"sent": {...readable fields we wrote, merged}, "sent_fp": ..., "command_id": ...,
     "applied_fp": <fingerprint of the last acknowledged write>,
     "current": {...readable fields the target holds, as last known},
     "last": {"source": "<system>:<table>:<id>", "version": <source version of the last command>},
     "deleted": true once we sent a delete for the row, until we write it again,
     "acked": "<id of the last command whose ack came back>",
     "back": {...fields only the target fills, as its feed last showed them (write_back)},
     "earlier": [fingerprints of our earlier writes whose echoes the feed may still show]}

A change from the target's own feed whose fingerprint equals what we wrote is our echo and
stops. Otherwise the target was edited: two-way fields that differ from what the target held
flow back; edits of fields only the other side owns do not sync.

``last`` survives a delete: a change of the same source record older than the last command
sent for the row is stale (`is_stale`): an update parked behind its project that a delete
overtook, or a delete that waited for its record while the key was written again, never
undoes the newer write. A delete is also stale once another source record wrote the row last
(a key freed by one record and taken by a new one: the old record's delete no longer names it).

The feed shows a row's changes in order, but it reaches the gate by another path than our
acks: the echo of an earlier write of ours can arrive after the ack of a later one. It is an
echo too, and it is stale: taken as what the target holds, the row would look unchanged by the
later write, and a source change back to the earlier values would be dropped as a no-op (a
chaos run left a project's name two revisions behind this way). So ``earlier`` keeps the
fingerprints of the writes before the last one until the feed shows the last one's echo (after
which, the feed being ordered per row, none of the earlier can come). The price: a human edit
in the target back to exactly the values of one of those writes, made before our last write's
echo is seen, is taken for an echo.

What the target holds (``current``) is only ever a reason to *skip* a write (`is_noop`), so it
must never claim a row we deleted: the target's feed and our acks reach the gate by different
paths, so the feed's view of a row from before our delete can arrive after the delete's ack.
Once we sent a delete, the feed's rows of that key are not taken as what the target holds
until we write the row again, and a delete seen on the feed forgets what the row held. Without
this, a record that took a freed key with the very same values (a task ``2`` deleted and made
again) was dropped as a no-op and never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict, cast

from streams.fingerprint import fingerprint
from topics import CommandSource

__all__ = [
    "Echo",
    "Edit",
    "NoSync",
    "TargetState",
    "back_changed",
    "classify",
    "is_noop",
    "is_stale",
    "on_ack",
    "on_observed",
    "on_sent",
    "on_unchanged",
    "state_from",
]


class TargetState(TypedDict, total=False):
    sent: dict[str, Any]
    sent_fp: str
    command_id: str
    applied_fp: str
    current: dict[str, Any]
    last: dict[str, Any]
    deleted: bool
    acked: str  # id of the last command whose ack came back
    back: dict[str, Any]  # the write-back fields as the target's feed last showed them
    earlier: list[str]  # fingerprints of our writes before the last, their echoes not seen yet


EARLIER_KEPT = 16  # earlier writes whose echoes are recognised (a row rewritten faster than its feed)


@dataclass(frozen=True)
class Echo:
    stale: bool = False  # the echo of a write older than our last one


@dataclass(frozen=True)
class Edit:
    changed: tuple[str, ...]


@dataclass(frozen=True)
class NoSync:
    reason: str


def state_from(value: Any) -> TargetState:
    return cast(TargetState, dict(value)) if isinstance(value, dict) else TargetState()


def classify(state: TargetState, observed: dict[str, Any], two_way: tuple[str, ...]) -> Echo | Edit | NoSync:
    fp = fingerprint(observed)
    if fp in (state.get("sent_fp"), state.get("applied_fp")):
        return Echo()
    if fp in (state.get("earlier") or ()):
        return Echo(stale=True)
    baseline = state.get("current") or state.get("sent")
    if baseline is None:
        return NoSync("first sight of the target row")
    changed = tuple(f for f in two_way if f in observed and observed.get(f) != baseline.get(f))
    if changed:
        return Edit(changed)
    if all(baseline.get(k) == v for k, v in observed.items()):
        return NoSync("no mapped field changed")
    return NoSync("only fields mastered by the other side changed")


def _holds(row: dict[str, Any] | None, readable: dict[str, Any]) -> bool:
    return row is not None and all(k in row and row[k] == v for k, v in readable.items())


def in_flight(state: TargetState) -> bool:
    """A command was sent for the row and its ack has not come back yet."""
    return "command_id" in state and state.get("acked") != state["command_id"]


def is_noop(state: TargetState, readable: dict[str, Any], command_id: str) -> bool:
    """The target already holds every one of these values, or will once the command in flight
    lands: writing them changes nothing. (If that command is dead-lettered, it carries these
    very values: retrying it restores them.)

    Never when the command in flight is this very one (``command_id``): the change is being
    replayed after a crash, and the table's changelog may have recorded the send while the
    command itself never reached its topic. It is sent again; the sink applies a repeated
    command id once."""
    if state.get("deleted"):
        return False
    if in_flight(state) and state["command_id"] == command_id:
        return False
    if in_flight(state):
        return _holds(state.get("sent"), readable)
    return _holds(state.get("current"), readable)


def _source_ref(source: CommandSource) -> str:
    return f"{source.system}:{source.table}:{source.id}"  # system and table hold no ':'; the id may


def is_stale(state: TargetState, source: CommandSource, *, delete: bool = False) -> bool:
    """A command for this row was already sent from a newer version of the same source table,
    or (for a delete) from another source record, which owns the row now.

    Versions of one source table are comparable across its records: Dataverse's
    ``versionnumber`` is the database's rowversion and Finance's change-feed version a global
    sequence, both increasing with every change of any row. So when record A freed a key
    (``DW-1``/task ``2``) and record B took it, A's upsert arriving late (it waited on another
    partition) is older than B's and never overwrites B's row; and A's delete never removes it.
    """
    last = state.get("last")
    if not last:
        return False
    ref = _source_ref(source)
    if last.get("source") != ref and delete:
        return True
    same_table = str(last.get("source", "")).split(":", 2)[:2] == ref.split(":", 2)[:2]
    return same_table and source.version < int(last.get("version", 0))


def on_sent(state: TargetState, command_id: str, readable: dict[str, Any],
            source: CommandSource, *, delete: bool = False, readable_fp: str | None = None) -> TargetState:
    """``readable_fp``: ``fingerprint(readable)`` when the caller has it (the command's), not
    computed again when ``readable`` covers every field sent (its values are then all of them)."""
    last = {"source": _source_ref(source), "version": source.version}
    if delete:  # what the row held and what we wrote there no longer describe it
        return TargetState(command_id=command_id, last=last, deleted=True)
    sent = {**(state.get("sent") or {}), **readable}
    fp = readable_fp if readable_fp is not None and sent.keys() == readable.keys() else fingerprint(sent)
    earlier = [f for f in state.get("earlier") or () if f != fp]
    previous = state.get("sent_fp")
    if previous is not None and previous != fp and previous not in earlier:
        earlier.append(previous)
    written = TargetState(**{**state, "sent": sent, "sent_fp": fp, "command_id": command_id,
                             "last": last})
    written.pop("earlier", None)
    if earlier:
        written["earlier"] = earlier[-EARLIER_KEPT:]
    written.pop("deleted", None)  # ours again: what the feed shows of it counts once more
    return written


def on_unchanged(state: TargetState, source: CommandSource) -> TargetState:
    """The row already holds every value this change would write (a no-op), but it is this
    record's row from now on: another record that freed the same key (a WBS id deleted and
    created again with the same values) must not delete it with its late delete."""
    return TargetState(**{**state, "last": {"source": _source_ref(source), "version": source.version}})


def on_ack(state: TargetState, command_id: str, fp: str, delete: bool) -> TargetState:
    if delete:  # the row is gone; what was sent last still orders later changes
        gone = TargetState(deleted=True)
        if "last" in state:
            gone["last"] = state["last"]
        return gone
    new = TargetState(**{**state, "applied_fp": fp})
    if state.get("command_id") == command_id:
        new["acked"] = command_id
        if state.get("sent") is not None:
            new["current"] = {**(state.get("current") or {}), **(state.get("sent") or {})}
    return new


def back_changed(state: TargetState, back: dict[str, Any]) -> bool:
    """The fields only the target fills (``TableMap.write_back``) hold a value they did not
    hold when the feed last showed the row: they flow back to the source row."""
    before = state.get("back") or {}
    return any(v is not None and v != "" and v != before.get(k) for k, v in back.items())


def on_observed(state: TargetState, observed: dict[str, Any], *, deleted: bool = False,
                back: dict[str, Any] | None = None) -> TargetState:
    """The target's feed showed the row (``deleted``: showed it deleted). After a delete of ours,
    a row on the feed may be from before it: it is not taken as what the target holds.
    ``back``: its write-back fields, remembered so that only a change of them flows back."""
    if deleted:
        gone = TargetState(**state)
        gone.pop("current", None)
        return gone
    if state.get("deleted"):
        return state
    fp = fingerprint(observed)
    if fp in (state.get("earlier") or ()) and fp not in (state.get("sent_fp"), state.get("applied_fp")):
        return state  # the echo of an earlier write: the row holds a later one of ours since
    seen = TargetState(**{**state, "current": observed})
    if fp == state.get("sent_fp"):
        seen.pop("earlier", None)  # our last write's echo: the feed has passed every earlier one
    if back:
        seen["back"] = back
    return seen
