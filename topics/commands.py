"""Commands to a sink and the acknowledgements the sink publishes once a write is applied.

A `Command` is what the processor decided to write to the target: the target entity, the
alternate-key values that address the row, the mapped fields, and the source version it carries.
An `Applied` ack is published to ``sync.applied.<target>`` only after the target acknowledged
the write; the processor's gate and echo filter learn from it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from topics.envelope import MAX_VERSION, System, trusted_model
from topics.partitioner import partition_of

__all__ = ["Applied", "Command", "CommandOp", "CommandSource", "WriteOp", "ack_partition", "present_fact",
           "target_key"]

WriteOp = Literal["upsert", "delete"]
CommandOp = Literal["upsert", "delete", "skip", "hold"]
"""A command's op: a write; ``skip``, the place of a source transaction's change that needs no
write (a no-op, stale, or dead-lettered), counted toward ``tx_size`` so the sink need not wait;
or ``hold``: a member of the transaction is parked in the processor (it waits for a missing
record), so the sink keeps the members it has, unwritten, until that one comes instead of
writing them after ``tx_wait_s``. A hold is not counted and writes nothing."""
Scalar = str | int | float | bool | None


def target_key(entity: str, key: dict[str, Scalar]) -> str:
    """Canonical record key of a target row: ``entity(k1='v1',k2=2)`` with keys sorted.

    Used as the Kafka key of commands and acks, so every write to one target row lands in one
    partition, in order.
    """
    parts = []
    for name in sorted(key):
        value = key[name]
        rendered = "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value)
        parts.append(f"{name}={rendered}")
    return f"{entity}({','.join(parts)})"


class CommandSource(BaseModel):
    """The source change a command comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: System
    table: str
    id: str = Field(description="Source primary key.")
    version: int = Field(ge=0, le=MAX_VERSION, description="Source row version carried by this command.")
    ts_ms: int = Field(ge=0)
    txid: str | None = None
    origin: str | None = None
    redriven: bool = Field(False, description=(
        "The change was re-driven (header dualwrite.retry: `dlq retry`, `replay --repair`): the "
        "sink writes it even at the version it last applied, since the target may have lost it."))

    @classmethod
    def trusted(cls, system: System, table: str, id: str, version: int, ts_ms: int,
                txid: str | None = None, origin: str | None = None, redriven: bool = False) -> CommandSource:
        """A `CommandSource` from a decoded change's parts (``version`` within 0..2^63-1,
        ``ts_ms`` not negative), not validated again: equal to the validated model
        (unit-tested). The worker builds one per change it routes."""
        return trusted_model(cls, {"system": system, "table": table, "id": id, "version": version,
                                   "ts_ms": ts_ms, "txid": txid, "origin": origin, "redriven": redriven}, None)

    @model_serializer(mode="wrap")
    def _redriven_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Written only when true, so a sink of the release before it (its models forbid unknown
        fields) still reads every live command while workers are upgraded first."""
        out: dict[str, Any] = handler(self)
        if not self.redriven:
            out.pop("redriven", None)
        return out


class Command(BaseModel):
    """One write the sink must apply to the target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str = Field(description="Deterministic id: <map>:<source id>:<version>.")
    map: str = Field(description="Table map that produced it.")
    target: System
    entity: str = Field(description="Target entity set (Dataverse) or public collection (Finance).")
    key: dict[str, Scalar] = Field(description="Alternate-key fields addressing the target row.")
    op: CommandOp = Field(description="upsert or delete; skip: a transaction member with nothing to "
                                      "write; hold: a member is parked, keep the others waiting.")
    fields: dict[str, Any] = Field(default_factory=dict, description="Mapped target fields (upsert).")
    fingerprint: str = Field(description="Hash of the mapped fields; equal fingerprint = no-op write.")
    source: CommandSource
    tx_size: int | None = Field(
        None, ge=1, description="Commands in the released source transaction (one $batch change set)."
    )
    tx_order: int | None = Field(
        None, ge=1, description="Position of its source change in the transaction: the change set's order."
    )
    update_only: bool = Field(
        False, description="The row must exist already: a two-way edit flowing back never creates one."
    )

    @classmethod
    def trusted(cls, command_id: str, map: str, target: System, entity: str, key: dict[str, Scalar],
                op: CommandOp, fields: dict[str, Any], fingerprint: str, source: CommandSource,
                tx_size: int | None, tx_order: int | None, update_only: bool) -> Command:
        """A write's `Command` from parts already valid (a mapped row's scalar key and fields,
        a change's `CommandSource` and change-set positions), not validated again: equal to the
        validated model (unit-tested). The worker builds one per command. A skip or a hold is
        validated (`skip_command`)."""
        return trusted_model(cls, {
            "command_id": command_id, "map": map, "target": target, "entity": entity, "key": key, "op": op,
            "fields": fields, "fingerprint": fingerprint, "source": source, "tx_size": tx_size,
            "tx_order": tx_order, "update_only": update_only}, None)

    @model_validator(mode="after")
    def _skip_is_a_member(self) -> Command:
        if self.op in ("skip", "hold") and (self.tx_size is None or self.fields or not self.source.txid):
            raise ValueError(f"a {self.op} command stands for a transaction's member: tx_size and "
                             "source.txid set, no fields")
        return self

    @property
    def record_key(self) -> str:
        return target_key(self.entity, self.key)


def present_fact(record_key: str) -> str:
    """The processor's gate key of a target row: its presence fact, and the key its acks, its
    feed observations and the changes waiting for it are handled under."""
    return f"present:{record_key}"


def ack_partition(record_key: str, partitions: int) -> int:
    """The partition an ack of ``record_key`` is published to: the one the processor's producer
    (Kafka's default partitioner, murmur2, as Java's) gives the row's gate key, in a topic of
    ``partitions`` partitions. The ack topic has the gate's partition count, so the worker that
    owns the row's gate state reads its acks and handles them in place, without sending each
    through its gate topic first (`streams.agents`)."""
    return partition_of(present_fact(record_key).encode(), partitions)


class Applied(BaseModel):
    """A write the target acknowledged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: str
    map: str
    target: System
    entity: str
    key: dict[str, Scalar]
    op: WriteOp
    source_version: int = Field(ge=0, le=MAX_VERSION)
    source_system: System
    source_table: str
    source_id: str
    fingerprint: str
    etag: str | None = None
    target_id: str | None = Field(None, description="Target primary id (Dataverse GUID, Finance RecId).")
    applied_ts_ms: int = Field(ge=0)

    @property
    def record_key(self) -> str:
        return target_key(self.entity, self.key)
