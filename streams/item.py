"""`Pending`: one source change for one map direction on its way to becoming a command, with
the facts it has collected (`streams.pending` plans its next step).

Its own module so that `streams.pending` is compiled with the rest of the hot path
(`streams.native`): methods mypyc compiles on a pydantic model are objects pydantic refuses as
fields, so the model stays interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.maps.model import TableMap
from topics import CommandSource, WriteOp
from topics.envelope import trusted_model

__all__ = ["Pending", "record_ref", "split_record_ref"]


class Pending(BaseModel):
    """One source change for one map direction, with the facts it has collected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    map: str
    reverse: bool = False
    op: WriteOp
    row: dict[str, Any]
    source: CommandSource
    tx_total: int | None = None
    tx_order: int | None = None
    # A released transaction's change set, told to each member in bounded size: how many
    # changes it counts (`tx_size`), whether this one is among them, and which rows it references
    # through a `same_tx_column` are in it (`tx_peers`). ``tx_members`` (every member's id) is
    # what earlier versions carried; it is still read from state they left.
    tx_size: int | None = None
    tx_counted: bool = False
    tx_peers: tuple[str, ...] = ()
    tx_members: tuple[str, ...] | None = None
    facts: dict[str, dict[str, Any] | None] = {}
    # The version of the same source record `ingest` saw before this one (None: none, or a
    # record from before this field): a key fact is skipped only when that version sent it
    # (`streams.published`).
    prev_version: int | None = None
    paired: bool = False
    dropped: tuple[str, ...] = ()
    born_ms: int
    parked_ms: int | None = None
    member: str | None = None  # the fan-out member this copy is written for (`FanOut`)
    # Source ids of the rows a document bills (`Bills`), found among its transaction's changes.
    after: tuple[str, ...] = ()

    @classmethod
    def trusted(cls, id: str, map: str, op: WriteOp, row: dict[str, Any], source: CommandSource,
                born_ms: int, tx_total: int | None, tx_order: int | None, prev_version: int | None) -> Pending:
        """A routed change's `Pending` from values already valid (a decoded event's row and
        parts, a trusted `CommandSource`), not validated again; the other fields at their
        defaults. Equal to the validated model (unit-tested). Validation copied the row and
        cost as much as the rest of routing a change."""
        return trusted_model(cls, {
            "id": id, "map": map, "reverse": False, "op": op, "row": row, "source": source,
            "tx_total": tx_total, "tx_order": tx_order, "tx_size": None, "tx_counted": False, "tx_peers": (),
            "tx_members": None, "facts": {}, "prev_version": prev_version, "paired": False, "dropped": (),
            "born_ms": born_ms, "parked_ms": None, "member": None, "after": ()}, None)

    @property
    def released(self) -> bool:
        """A member of a released transaction (not to be grouped again)."""
        return self.tx_size is not None or self.tx_members is not None

    @property
    def change_set_size(self) -> int:
        """Changes counted in this member's change set (0: not a released member)."""
        return self.tx_size if self.tx_size is not None else len(self.tx_members or ())

    @property
    def counted(self) -> bool:
        """Whether the sink counts this change toward its change set's size."""
        return self.tx_counted or (self.tx_members is not None and self.source.id in self.tx_members)

    def in_change_set(self, record_id: str) -> bool:
        """Whether the source row ``record_id`` is written in this member's change set."""
        return record_id in self.tx_peers or (self.tx_members is not None and record_id in self.tx_members)

    def with_fact(self, key: str, value: dict[str, Any] | None) -> Pending:
        return self.with_facts({key: value or {}})

    def with_facts(self, found: Mapping[str, dict[str, Any] | None]) -> Pending:
        """A copy holding ``found`` besides its facts: built from this model's own valid values
        (`trusted_model`, a third of ``model_copy``'s cost, once or twice per change)."""
        return trusted_model(Pending, {**self.__dict__, "facts": {**self.facts, **found}}, None)

    @property
    def record_ref(self) -> str:
        """The source record this change writes, as its key fact names it (`record_ref`)."""
        return record_ref(self.source.id, self.member)

    def for_member(self, m: TableMap, member: str) -> Pending:
        """The copy of a fan-out map's change written for one member: the member fills the
        row's ``fill`` column, and the copy is a change (and a command) of its own."""
        assert m.fan_out is not None
        return self.model_copy(update={
            "id": f"{m.name}:{record_ref(self.source.id, member)}:{self.source.version}",
            "member": member, "row": {**self.row, m.fan_out.fill: member}})


def record_ref(source_id: str, member: str | None) -> str:
    """A source record id, or for a fan-out copy the id with its member (``<id>@<member>``):
    each copy is written under its own key, so a delete of the record deletes each copy's."""
    return source_id if member is None else f"{source_id}@{member}"


def split_record_ref(ref: str, fanned: bool) -> tuple[str, str | None]:
    """The source record id and member of a `record_ref`; only a fan-out map's refs carry a
    member (a plain source id may hold an ``@`` of its own)."""
    if not fanned or "@" not in ref:
        return ref, None
    source_id, member = ref.rsplit("@", 1)
    return source_id, member
