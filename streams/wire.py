"""Messages of the internal gate topic (``<app id>-gate``), keyed by the gate key they concern.

    fact      a lookup row, a mapped key or a target row's presence was learned (or forgotten)
    pending   a change on its way to a command (`streams.pending.Pending`)
    tx        one event of a multi-event source transaction, with the changes it starts (maybe none)
    member    a member of a fan-out map's member table seen or deleted (`streams.maps.model.FanOut`)
    applied   a sink's ack, re-keyed from ``sync.applied.<target>``
    observed  a row from the target's own feed (presence, echo check, target edits)
    control   a map's run state, sent to every partition
    tick      a clock reading, sent to every partition (transaction time-outs)

Everything that reads or writes gate tables travels here first: our producer partitions by the
gate key, so each key's state is only ever touched from one partition, whatever partitioner the
connectors use on their own topics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from streams.pending import Pending
from topics import Applied, CommandSource, Op

__all__ = [
    "ITEM_STAGES",
    "AppliedMsg",
    "ControlMsg",
    "FactMsg",
    "GateMsg",
    "GateRecordTooLarge",
    "MemberMsg",
    "ObservedMsg",
    "PendingMsg",
    "TickMsg",
    "TxMsg",
    "decode_gate",
    "encode_gate",
    "gate_records",
]


class _Msg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FactMsg(_Msg):
    kind: Literal["fact"] = "fact"
    key: str
    value: dict[str, Any] | None
    version: int | None = None  # the source version of a row or written key (`streams.factview`)


class PendingMsg(_Msg):
    kind: Literal["pending"] = "pending"
    item: Pending


class TxMsg(_Msg):
    """One source event of a transaction: counted towards ``total`` even when no map reads it."""

    kind: Literal["tx"] = "tx"
    event: str  # "<system>:<table>:<id>:<version>"
    total: int
    items: list[Pending]


class MemberMsg(_Msg):
    """A member of a fan-out map's member table was seen (or deleted): keyed by the map's
    ``fanout:<map>`` key, where its rows are written for every member."""

    kind: Literal["member"] = "member"
    map: str
    member: str
    version: int
    deleted: bool = False


class AppliedMsg(_Msg):
    kind: Literal["applied"] = "applied"
    ack: Applied


class ObservedMsg(_Msg):
    kind: Literal["observed"] = "observed"
    map: str
    record_key: str
    op: Op
    row: dict[str, Any]
    target_id: str | None
    source: CommandSource


class ControlMsg(_Msg):
    kind: Literal["control"] = "control"
    map: str
    state: Literal["running", "paused"]


class TickMsg(_Msg):
    kind: Literal["tick"] = "tick"
    ts_ms: int


# A dead letter of the gate at one of these stages holds the `Pending` it was walking (so
# `dualwrite dlq retry` sends it back as a `PendingMsg`).
ITEM_STAGES = ("transform", "plan", "emit")

GateMsg = Annotated[FactMsg | PendingMsg | TxMsg | MemberMsg | AppliedMsg | ObservedMsg | ControlMsg
                    | TickMsg,
                    Field(discriminator="kind")]
_ADAPTER: TypeAdapter[GateMsg] = TypeAdapter(GateMsg)


def encode_gate(msg: BaseModel) -> bytes:
    return msg.__pydantic_serializer__.to_json(msg)


def decode_gate(data: bytes) -> GateMsg:
    return _ADAPTER.validate_json(data)


class GateRecordTooLarge(ValueError):
    """A change whose gate message would be refused by the producer (over its request size)."""


def gate_records(messages: Sequence[tuple[str, BaseModel]], max_bytes: int) -> list[tuple[bytes, bytes]]:
    """Every (key, message) of one source record encoded, or an error for the record as a whole.

    Encoding all of them before sending any keeps a record's effects whole: a message that cannot
    be serialised (nesting deeper than pydantic serialises) or that the producer would refuse
    (`GateRecordTooLarge`: a row holding a huge value, a 900 KB record id) makes the record a
    dead letter instead of escaping the agent, which would restart it on the same record for ever.
    """
    out = []
    for key, msg in messages:
        record = (key.encode(), encode_gate(msg))
        size = len(record[0]) + len(record[1])
        if size > max_bytes:
            raise GateRecordTooLarge(f"{type(msg).__name__} for {key[:80]!r} is {size} bytes, over the "
                                     f"producer's limit of {max_bytes}")
        out.append(record)
    return out
