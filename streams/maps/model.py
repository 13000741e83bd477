"""The table map as a declarative, frozen model.

A `TableMap` says how one source table becomes one target entity: which target key fields come
from which source columns, which fields flow in which direction, value maps, defaults, a row
filter, the lookups it references and the target rows that must exist before it is written.
Nothing here does I/O; `streams.transform` interprets a map against a row and the facts the
gate has learned.

Fact keys (what the gate waits for) are strings built here, once:

    row:<system>:<table>:<id>   indexed columns of a source row (from its CDC topic)
    key:<map>:<source id>       target key a map computed for one of its source rows (a delete
                                of that row deletes this key: it needs no before image)
    present:<record key>        the target row exists (from acks or the target's own feed)
    fanout:<map>                a fan-out map's members and source rows (`FanOut`)
    partner:<map>:<pair>:<side> one half of a pair the target merges is known (`Partner`)
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from functools import cache, cached_property
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from topics import System, present_fact, target_key

__all__ = [
    "KEY_FACT_PREFIX",
    "Bills",
    "Condition",
    "Dependency",
    "Direction",
    "Endpoint",
    "FanOut",
    "FieldMap",
    "Kind",
    "Lookup",
    "Partner",
    "TableMap",
    "fanout_key",
    "key_fact",
    "partner_fact",
    "present_fact",
    "row_fact",
]

Direction = Literal["to_finance", "to_dataverse", "both"]
Kind = Literal["text", "date", "int"]
Scalar = str | int | float | bool | None


def row_fact(system: str, table: str, record_id: str) -> str:
    return f"row:{system}:{table}:{record_id}"


KEY_FACT_PREFIX = "key:"


def key_fact(map_name: str, record_id: str) -> str:
    return f"{KEY_FACT_PREFIX}{map_name}:{record_id}"


def fanout_key(map_name: str) -> str:
    return f"fanout:{map_name}"


def partner_fact(map_name: str, pair: str, side: Any) -> str:
    return f"partner:{map_name}:{pair}:{side}"


class _Frozen(BaseModel):
    """Frozen, so what a map derives from its declaration is worked out once
    (``functools.cached_property``, kept in the instance's ``__dict__``); a copy with changed
    fields derives it again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        copied = super().model_copy(update=update, deep=deep)
        if update:  # pydantic copies the instance's __dict__, derived values with the fields
            for name in _derived(type(self)):
                copied.__dict__.pop(name, None)
        return copied


@cache
def _derived(cls: type) -> tuple[str, ...]:
    return tuple(name for klass in cls.__mro__ for name, value in vars(klass).items()
                 if isinstance(value, cached_property))


class Endpoint(_Frozen):
    """One side of a map: a system and its table (Dataverse entity set / Finance collection),
    with what a source needs to capture it, declared here so that no connector guesses it.

    ``primary_key`` is a Dataverse entity set's primary id column (its rows' record id on the
    CDC topic): Dataverse names it after the singular logical name, which a plural does not
    reliably give (``msdyn_projects`` -> ``msdyn_projectid`` but ``cdm_companies`` ->
    ``cdm_companyid``). A Finance row is keyed by its entity key from ``$metadata``, so it is
    not needed there. ``company`` names the column holding the row's legal entity code
    (``dataAreaId``, ``cdm_companycode``); ``company_lookup`` the Dataverse lookup column
    holding the row's ``cdm_company`` GUID, which the source resolves to the code. Either fills
    the change event's ``source.company``. The same table may be declared by several maps; the
    registry merges them and refuses two different values.
    """

    system: System
    table: str
    primary_key: str | None = None
    company: str | None = None
    company_lookup: str | None = None

    @model_validator(mode="after")
    def _one_company_source(self) -> Endpoint:
        if self.company and self.company_lookup:
            raise ValueError(f"{self.system} {self.table}: declare company or company_lookup, not both")
        return self


class Lookup(_Frozen):
    """A source column that references another row, and where the referenced row is learned.

    ``ref`` is ``row`` (a source table indexed from its CDC topic: ``fields`` are indexed),
    ``key`` (the target key another map computed for that row: ``table`` names the map) or
    ``present`` (a target row; the column's value fills target key field ``key_field`` of
    entity ``table``; the fact carries the target's primary id as ``target_id``).

    A reference two hops away reads ``column`` from an earlier lookup's fact (``via``) instead
    of the row: a Finance expense category names its shared category, whose transaction
    category id finds the Dataverse row. A ``present`` key of several fields takes the others
    from earlier lookups' facts (``also``: key field, lookup, fact field): a Dataverse project
    is keyed by its number and its company's GUID. Until the earlier fact is known the lookup
    is not asked; when that fact lacks the value, the lookup is unset (references nothing).

    An ``optional`` lookup is asked once and never waited for: when the gate does not know its
    fact when the change passes, the lookup is unset (the gate records the fact as absent), so a
    row whose reference may never exist (a project manager without a bookable resource) is
    written without the field instead of parked for ever; it fills on the row's next change.

    A reference named by several columns of the row fills ``compose`` from them (a format
    string, as `FieldMap.compose`; ``column`` then names the column that carries the
    reference): a Finance row of a company-specific entity has the record id
    ``{dataAreaId}|{CategoryId}`` on its CDC topic, a released product in Dataverse the key
    ``{dataAreaId}-{ItemId}``. Unset while any of those columns is empty.
    """

    name: str
    column: str
    ref: Literal["row", "key", "present"]
    system: System = "dataverse"
    table: str
    fields: tuple[str, ...] = ()
    key_field: str | None = None
    via: str | None = None
    also: tuple[tuple[str, str, str], ...] = ()
    optional: bool = False
    compose: str | None = None

    @model_validator(mode="after")
    def _also_only_present(self) -> Lookup:
        if self.also and self.ref != "present":
            raise ValueError(f"lookup {self.name!r}: 'also' key fields need ref 'present'")
        if self.compose and self.via:
            raise ValueError(f"lookup {self.name!r}: 'compose' reads the row, 'via' another fact: not both")
        return self

    @cached_property
    def after(self) -> tuple[str, ...]:
        """Names of the earlier lookups this one reads (``via``, ``also``), each once."""
        return tuple(dict.fromkeys([*([self.via] if self.via else []), *(n for _k, n, _f in self.also)]))

    @cached_property
    def present_fields(self) -> tuple[str, ...]:
        """The target key fields of a ``present`` lookup's fact, sorted."""
        return tuple(sorted([self.key_field or "id", *(k for k, _n, _f in self.also)]))

    def fact_for(self, value: Any, also: Mapping[str, Any] | None = None) -> str:
        if self.ref == "row":
            return row_fact(self.system, self.table, str(value))
        if self.ref == "key":
            return key_fact(self.table, str(value))
        return present_fact(target_key(self.table, {self.key_field or "id": value, **(also or {})}))


class FieldMap(_Frozen):
    """One target field: where its value comes from and in which direction it flows.

    Exactly one of ``source`` (a column of the source row), ``lookup`` + ``lookup_field`` (a
    field of a referenced row's fact), ``compose`` (source columns joined by a format string,
    ``{dataAreaId}-{ItemNumber}``: a key that Dataverse keeps as one column; null while any of
    them is empty) or ``const`` gives the value. ``template`` formats it
    (``/cdm_companies({})`` for an OData bind). ``read_as`` names the column under which the
    target's own feed shows the value (``_msdyn_company_value`` for the bind), so echoes compare
    like with like.

    ``bind_key`` (an entity set) binds a Dataverse lookup by the referenced row's alternate key,
    the whole fact of ``lookup`` (a ``key`` lookup: the key another map wrote):
    ``/msdyn_projectvendorinvoices(msdyn_externalinvoice='I-1',_msdyn_owningcompany_value=<guid>)``,
    as Dataverse documents for ``@odata.bind`` ("Use an alternate key to reference a record"). It
    needs no GUID, so a row can bind one written before it in the same change set. The target's
    feed shows the GUID instead, which the source cannot know: such a field is not in the
    readable view (not compared by echo checks or reconcile).
    """

    target: str
    source: str | None = None
    lookup: str | None = None
    lookup_field: str | None = None
    compose: str | None = None
    const: Scalar = None
    direction: Direction = "to_finance"
    kind: Kind = "text"
    value_map: tuple[tuple[Scalar, Scalar], ...] = ()
    default: Scalar = None
    template: str | None = None
    read_as: str | None = None
    in_fields: bool = True
    bind_key: str | None = None

    @cached_property
    def read_name(self) -> str:
        return self.read_as or self.target

    @cached_property
    def values_forward(self) -> dict[Scalar, Scalar]:
        """``value_map`` as a dict, source value -> target value."""
        return dict(self.value_map)

    @cached_property
    def values_backward(self) -> dict[Scalar, Scalar]:
        """``value_map`` as a dict, target value -> source value."""
        return {b: a for a, b in self.value_map}


class Condition(_Frozen):
    """One clause of a map filter (all clauses of a filter must hold for a row to sync), with
    the operators of a dual-write filter (domain.md 3: OData ``$filter`` on the Dataverse side,
    a query range on the Finance side): ``eq ne gt ge lt le`` against ``value``, ``in`` a tuple
    of values, ``present``/``absent`` (set and not empty), and the composites ``all`` (and),
    ``any`` (or) and ``not`` over ``clauses``.

    A comparison with a missing value, or of values that do not compare (a number with a
    text), does not hold: a row the filter cannot judge is not synced.
    """

    column: str | None = None
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "in", "present", "absent", "all", "any", "not"]
    value: Scalar | tuple[Scalar, ...] = None
    clauses: tuple[Condition, ...] = ()

    @model_validator(mode="after")
    def _well_formed(self) -> Condition:
        composite = self.op in ("all", "any", "not")
        if composite != (self.column is None) or composite != bool(self.clauses):
            raise ValueError(f"condition {self.op!r}: a composite takes clauses and no column, "
                             "any other operator a column and no clauses")
        if self.op == "not" and len(self.clauses) != 1:
            raise ValueError("condition 'not' takes exactly one clause")
        return self

    def holds(self, row: Mapping[str, Any]) -> bool:
        if self.op == "all":
            return all(c.holds(row) for c in self.clauses)
        if self.op == "any":
            return any(c.holds(row) for c in self.clauses)
        if self.op == "not":
            return not self.clauses[0].holds(row)
        got = row.get(self.column or "")
        present = got is not None and got != ""
        if self.op in ("present", "absent"):
            return present if self.op == "present" else not present
        if self.op == "eq":
            return bool(got == self.value)
        if self.op == "ne":
            return bool(got != self.value)
        if self.op == "in":
            values = self.value if isinstance(self.value, tuple) else (self.value,)
            return got in values
        if got is None or self.value is None:
            return False
        try:
            return bool(_COMPARE[self.op](got, self.value))
        except TypeError:  # 'a' > 1: not comparable, so not in the filter's range
            return False


_COMPARE = {"gt": operator.gt, "ge": operator.ge, "lt": operator.lt, "le": operator.le}


class Dependency(_Frozen):
    """A target row that must exist before this map writes (a task waits for its project and
    for its parent task).

    Its key is built from resolved lookups' facts, one ``(target key field, lookup, fact field)``
    per key field, so one key may combine lookups (a parent task's Finance key takes the
    company and project from the ``project`` lookup and the task id from the ``parent`` one).
    A dependency whose key lacks a value references nothing and does not hold the row back: an
    unset optional lookup (a task without a parent), as Finance skips a reference check while
    one of its fields is empty. When the referenced source row (``same_tx_column``) is in the
    same source transaction, the change set writes it first, so the dependency counts as met.
    """

    entity: str
    key: tuple[tuple[str, str, str], ...] = Field(min_length=1)
    same_tx_column: str | None = None

    @property
    def lookups(self) -> tuple[str, ...]:
        """Names of the lookups the key draws from, in key order, each once."""
        return tuple(dict.fromkeys(lookup for _target, lookup, _field in self.key))


class FanOut(_Frozen):
    """One source row written once per member of another table: a global Dataverse resource
    role becomes one Finance role per legal entity (map "Project resource roles for all
    companies").

    The members are the rows of ``table`` (in ``system``); a member is named by its ``column``
    (``cdm_companycode``) and fills the source row's ``fill`` column (``dataAreaId``) of the
    copy written for it, so the map's key and fields read it like any other column. A member
    that appears later gets every row already seen; a source delete deletes every copy.
    """

    system: System = "dataverse"
    table: str
    column: str
    fill: str


class Partner(_Frozen):
    """Rows the target merges in pairs: Dataverse keeps a cost and a sales estimate line, Finance
    one forecast per pair. A row is written only once its partner is known; until then it waits,
    visible in `dualwrite status` with its age, never lost. The pair is named by the mapped
    target fields ``match`` (equal in both halves), the half by target field ``side``, one of
    the two values of ``sides``. Each half, once seen, is a fact the other waits for."""

    match: tuple[str, ...] = Field(min_length=1)
    side: str
    sides: tuple[Scalar, Scalar]


class Bills(_Frozen):
    """A document written only after every row it bills is in the target: a proforma invoice's
    header after the unbilled-sales actuals its confirmation billed (domain.md 1.3).

    Which rows: the changes of the document's own source transaction (Dataverse confirms an
    invoice in one transaction) from ``table`` that meet ``where`` each name one in ``column``
    (the original actual of each original -> billed connection); that row is written by the map
    ``map``, and the document waits until the target holds what that map wrote for it."""

    table: str
    column: str
    map: str
    where: tuple[Condition, ...] = ()


class Out(NamedTuple):
    """One column a direction of a map writes, worked out once (`TableMap.forward_flow`)."""

    field: FieldMap
    name: str  # the output column
    source: str | None  # the column read
    backwards: bool  # its value map read backwards
    readable: str | None  # its name in the readable view; None for a bind by key (shows a GUID)
    plain: bool  # the column read as it is: no lookup, composition, constant, value map or template


Flow = tuple[tuple[FieldMap, ...], tuple[Out, ...]]


def _out(f: FieldMap, name: str, source: str | None, backwards: bool, readable: str) -> Out:
    plain = (source is not None and f.lookup is None and f.compose is None and f.bind_key is None
             and not f.value_map and not f.template)
    return Out(f, name, source, backwards, None if f.bind_key is not None else readable, plain)


class TableMap(_Frozen):
    """A table map: one source table to one target entity, declared once."""

    name: str
    source: Endpoint
    target: Endpoint
    key: tuple[FieldMap, ...] = Field(description="Target alternate key fields (from the source row).")
    fields: tuple[FieldMap, ...]
    lookups: tuple[Lookup, ...] = ()
    filter: tuple[Condition, ...] = ()
    depends: tuple[Dependency, ...] = ()
    # Two-way fields write back target -> source; these build the source row's key from a
    # target row, with their own lookups (a GUID in Dataverse is a code in Finance).
    reverse_key: tuple[FieldMap, ...] = ()
    reverse_lookups: tuple[Lookup, ...] = ()
    write_back: tuple[FieldMap, ...] = Field(
        (), description="Fields only the target fills, written back onto the source row the "
        "`reverse_key` names, update-only, whenever the target's feed shows them changed: "
        "Finance's voucher and accounting amounts onto the Dataverse actual it posted. ``target`` "
        "is the target's column, ``source`` the source's; never written forward.")
    master: System | None = Field(None, description="Wins a same-window conflict on two-way fields.")
    target_id_column: str | None = Field(None, description="Primary id column in the target row.")
    target_scope: tuple[Condition, ...] = Field(
        (), description="Conditions on a target row (its own columns) that make it this map's: "
        "`dualwrite reconcile` reports only such rows as extra, since a target may hold rows no "
        "map writes (Finance's own shared categories, Dataverse accounts that are vendors).")
    fan_out: FanOut | None = Field(None, description="Write each source row once per member of "
                                   "another table (`FanOut`).")
    partner: Partner | None = Field(None, description="Write a row only with its partner (`Partner`).")
    bills: Bills | None = Field(None, description="Write a document only after the rows it bills (`Bills`).")
    reads: tuple[Endpoint, ...] = Field(
        (), description="Declarations of other tables this map's lookups read that no map has as "
        "its source or target (their primary key and company column), so a source can capture them.")

    @model_validator(mode="after")
    def _dependencies_use_known_lookups(self) -> TableMap:
        # An unknown lookup would leave the key empty, and an empty key waits for nothing.
        known = {lk.name for lk in self.lookups}
        for dep in self.depends:
            unknown = [name for name in dep.lookups if name not in known]
            if unknown:
                raise ValueError(f"map {self.name!r}: dependency on {dep.entity} uses unknown "
                                 f"lookups {unknown}")
        return self

    @model_validator(mode="after")
    def _chained_lookups_come_after(self) -> TableMap:
        # A lookup reads only facts of lookups before it: `lookup_facts` resolves in order.
        for lookups in (self.lookups, self.reverse_lookups):
            seen: set[str] = set()
            for lk in lookups:
                unknown = [name for name in lk.after if name not in seen]
                if unknown:
                    raise ValueError(f"map {self.name!r}: lookup {lk.name!r} reads {unknown}, "
                                     "which are not earlier lookups of the map")
                seen.add(lk.name)
        return self

    @model_validator(mode="after")
    def _partner_names_mapped_fields(self) -> TableMap:
        if self.partner is not None:
            mapped = {f.target for f in (*self.key, *self.fields)}
            unknown = [f for f in (*self.partner.match, self.partner.side) if f not in mapped]
            if unknown:
                raise ValueError(f"map {self.name!r}: partner fields {unknown} are not target fields of the map")
        return self

    @model_validator(mode="after")
    def _write_back_has_an_address(self) -> TableMap:
        if self.write_back and not self.reverse_key:
            raise ValueError(f"map {self.name!r}: write_back fields need a reverse_key naming "
                             "the source row they are written onto")
        derived = [f.target for f in self.write_back if f.source is None or f.lookup or f.compose]
        if derived:
            raise ValueError(f"map {self.name!r}: write_back fields {derived} must each name "
                             "the source column they fill (no lookup, compose or constant)")
        return self

    @property
    def direction(self) -> Direction:
        return "to_finance" if self.target.system == "finance" else "to_dataverse"

    @cached_property
    def two_way(self) -> tuple[FieldMap, ...]:
        return tuple(f for f in self.fields if f.direction == "both")

    @cached_property
    def forward_flow(self) -> Flow:
        """What `streams.transform` writes to the target: the key fields, and an `Out` for every
        field, key fields kept in fields first."""
        out = [_out(f, f.target, f.source, False, f.read_name) for f in self.key if f.in_fields]
        out += [_out(f, f.target, f.source, False, f.read_name) for f in self.fields]
        return self.key, tuple(out)

    @cached_property
    def reverse_flow(self) -> Flow:
        """The same backwards, onto the source row ``reverse_key`` names: the two-way fields and
        the fields only the target fills (``write_back``), their value maps read backwards."""
        out = [_out(f, f.target, f.source, f.direction == "both" or f in self.write_back, f.target)
               for f in self.reverse_key if f.in_fields]
        out += [_out(f, f.source or f.target, f.target, True, f.source or f.target)
                for f in (*self.two_way, *self.write_back)]
        return self.reverse_key, tuple(out)

    def lookup(self, name: str, *, reverse: bool = False) -> Lookup:
        for item in self.reverse_lookups if reverse else self.lookups:
            if item.name == name:
                return item
        raise KeyError(f"map {self.name!r} has no lookup {name!r}")

    def passes(self, row: Mapping[str, Any]) -> bool:
        for c in self.filter:  # noqa: SIM110 (a loop, not all() and its generator: judged per change)
            if not c.holds(row):
                return False
        return True
