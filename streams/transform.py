"""Transform: a source row + the facts its lookups name -> target key and fields, via a map.

Pure. The forward direction applies the map's fields whose direction leads to the map's target
(and two-way fields); the reverse direction writes only two-way fields back to the source
table, addressed by the map's ``reverse_key``. Every result carries a *readable* view of the
fields: the values as the target's own feed will show them (``_msdyn_company_value`` rather than
the ``@odata.bind`` path), which is what fingerprints and echo checks compare. A composed field
(``FieldMap.compose``) joins several source columns into one target column, e.g. a released
product's ``productnumber`` from its company and item number; a composed lookup
(``Lookup.compose``) names its reference the same way. A bind by alternate key
(``FieldMap.bind_key``) becomes the OData reference URL here (`key_reference`).

A change event's images are arbitrary JSON: every value a map reads (a field, a key field, a
value-mapped field, a lookup reference) must be a scalar, or the row is refused with a
`TransformError` naming the field, never passed on as a list or an object. A delete is not
transformed: its target key is the one the processor wrote (`streams.pending`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from string import Formatter
from typing import Any, NoReturn
from urllib.parse import quote

from streams.fingerprint import fingerprint
from streams.maps.model import FieldMap, Flow, Lookup, TableMap
from topics import target_key

__all__ = [
    "Filtered",
    "Mapped",
    "NeedFacts",
    "TransformError",
    "lookup_facts",
    "normalize",
    "observed_fields",
    "transform",
    "written_back",
    "written_back_onto_source",
]

Facts = Mapping[str, Mapping[str, Any] | None]


class TransformError(ValueError):
    """The row cannot be mapped (a key field has no value, a value of the wrong type): a
    permanent error, to the DLQ."""


_SCALARS = (str, int, float, bool)


def _scalar(m: TableMap, what: str, value: Any) -> Any:
    """``value`` when it is a JSON scalar (or null); a `TransformError` naming ``what`` otherwise."""
    if value is None or isinstance(value, _SCALARS):
        return value
    raise TransformError(f"map {m.name!r}: {what} must be a scalar, got {type(value).__name__}")


@dataclass(frozen=True)
class Mapped:
    entity: str
    key: dict[str, Any]
    fields: dict[str, Any]
    readable: dict[str, Any]
    lookups: Mapping[str, str] = field(default_factory=dict)  # lookup name -> the fact key it read

    @cached_property
    def record_key(self) -> str:
        return target_key(self.entity, self.key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.readable)


@dataclass(frozen=True)
class NeedFacts:
    """Lookups not resolved yet: the gate waits for these fact keys, except the ``optional``
    ones (of `Lookup.optional` lookups), which it records as absent when it does not know them."""

    keys: tuple[str, ...]
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class Filtered:
    reason: str


def normalize(kind: str, value: Any) -> Any:
    """One representation per kind, so both systems' renderings compare equal."""
    if value is None:
        return None
    if kind == "date":
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        text = str(value)[:10]
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise TransformError(f"not an ISO date: {str(value)[:40]!r}") from None
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise TransformError(f"not an integer: {value!r}") from None
    return value


def _lookups(m: TableMap, reverse: bool) -> tuple[Lookup, ...]:
    return m.reverse_lookups if reverse else m.lookups


def lookup_facts(m: TableMap, row: Mapping[str, Any], *, reverse: bool = False,
                 facts: Facts | None = None) -> dict[str, str]:
    """Lookup name -> fact key, for lookups whose column holds a value in this row (or, for a
    chained lookup (``via``, ``also``), in the earlier lookups' facts known in ``facts``)."""
    out: dict[str, str] = {}
    known: Facts = {} if facts is None else facts  # not `facts or {}`: a lazy Mapping may be empty so far

    def earlier(name: str) -> Mapping[str, Any] | None:
        return known.get(out[name]) if name in out else None

    for lk in _lookups(m, reverse):
        if lk.after and any(earlier(name) is None for name in lk.after):
            continue  # not asked until the facts it reads are known (or unset: never)
        if lk.via:
            value = (earlier(lk.via) or {}).get(lk.column)
        elif lk.compose:
            value = _composed(m, lk.compose, f"lookup {lk.name!r}", row)
        else:
            value = row.get(lk.column)
        if value is None or value == "":
            continue
        if not lk.also:
            if isinstance(value, bool) or not isinstance(value, str | int):
                _not_a_reference(m, lk.column, value)
            out[lk.name] = lk.fact_for(value)
            continue
        also = {key: (earlier(name) or {}).get(field) for key, name, field in lk.also}
        if any(v is None or v == "" for v in also.values()):
            continue
        for what, v in ((lk.column, value), *also.items()):
            if isinstance(v, bool) or not isinstance(v, str | int):
                _not_a_reference(m, what, v)
        out[lk.name] = lk.fact_for(value, also)
    return out


def _not_a_reference(m: TableMap, what: str, value: Any) -> NoReturn:
    # A list would name a fact that never comes: the row would wait for ever.
    raise TransformError(f"map {m.name!r}: lookup column {what!r} must be a "
                         f"string or an integer, got {type(value).__name__}")


def _value(m: TableMap, f: FieldMap, row: Mapping[str, Any], resolved: Mapping[str, Mapping[str, Any]],
           source_name: str | None, reverse: bool) -> Any:
    if f.bind_key is not None:
        fact = resolved.get(f.lookup or "")
        return key_reference(m, f.bind_key, fact) if fact else None
    if f.lookup is not None:
        fact = resolved.get(f.lookup)
        value = fact.get(f.lookup_field or "") if fact is not None else None
    elif f.compose is not None:
        value = _composed(m, f.compose, f"field {f.target!r}", row)
    elif source_name is not None:
        value = row.get(source_name)
    else:
        value = f.const
    if value is not None and not isinstance(value, _SCALARS):
        _scalar(m, f"field {f.target!r}", value)  # raises
    if value is not None and f.value_map:
        mapped = f.values_backward if reverse else f.values_forward
        if value not in mapped:
            raise TransformError(f"{f.target}: no value map entry for {value!r}")
        value = mapped[value]
    if value is None or value == "":
        value = f.default
    return value if f.kind == "text" else normalize(f.kind, value)


def _composed(m: TableMap, compose: str, what: str, row: Mapping[str, Any]) -> str | None:
    """``compose`` filled from the row's columns; None while any of them is empty."""
    names = [name for _text, name, _spec, _conv in Formatter().parse(compose) if name]
    parts = {name: _scalar(m, f"{what} part {name!r}", row.get(name)) for name in names}
    if any(v is None or v == "" for v in parts.values()):
        return None
    return compose.format_map(parts)


# Dataverse documents these as unusable in alternate key values in a URL ("Define alternate
# keys using Power Apps"); the same list as the sink's `connectors.common.odata`.
_UNADDRESSABLE = frozenset("/#<>*%&:\\?+")


def key_reference(m: TableMap, entity_set: str, key: Mapping[str, Any]) -> str:
    """``/<entity_set>(<alternate key>)`` for an ``@odata.bind``: strings as OData literals
    (``'`` doubled) percent-encoded as UTF-8, as the sinks encode key segments, a lookup part
    (``_x_value``) as its bare GUID. A value Dataverse cannot take in a key URL, or a lookup
    part that is no GUID, is a `TransformError`: the reference could name no row, or another."""
    parts = []
    for name, value in sorted(key.items()):
        value = _scalar(m, f"key reference part {name!r}", value)
        if name.startswith("_") and name.endswith("_value"):
            try:
                text = str(uuid.UUID(str(value)))
            except ValueError:
                raise TransformError(f"map {m.name!r}: key reference part {name!r} is not a GUID: "
                                     f"{str(value)[:40]!r}") from None
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int | float):
            text = repr(value)
        elif isinstance(value, str) and value and not _UNADDRESSABLE.intersection(value):
            text = quote("'" + value.replace("'", "''") + "'", safe="'")
        else:
            raise TransformError(f"map {m.name!r}: {entity_set} cannot be referenced by key part "
                                 f"{name}={str(value)[:40]!r} (empty, or holds one of / # < > * % "
                                 "& : \\ ? +, which Dataverse does not take in a key URL)")
        parts.append(f"{name}={text}")
    return f"/{entity_set}({','.join(parts)})"


def _field_plan(m: TableMap, reverse: bool) -> Flow:
    """(key fields, the `Out` columns) for one direction (`TableMap.forward_flow`,
    `TableMap.reverse_flow`: worked out once per map)."""
    return m.reverse_flow if reverse else m.forward_flow


def transform(m: TableMap, row: Mapping[str, Any], facts: Facts, *,
              reverse: bool = False, settled: bool = False, keys_only: bool = False,
              wanted: Mapping[str, str] | None = None) -> Mapped | NeedFacts | Filtered:
    """Map ``row`` (source row; the target row when ``reverse``) through ``m``.

    ``facts`` holds the facts learned so far by fact key; ``settled``: every fact there is
    (`dualwrite.reconcile`), so an optional lookup's missing fact is absent, not awaited.
    ``keys_only``: the target key (and the lookups) is all that is asked, the fields are not
    mapped (``fields`` and ``readable`` empty), nor checked. ``wanted``: what
    ``lookup_facts(m, row, reverse=reverse, facts=facts)`` returns, when the caller has it.
    """
    if not reverse and m.filter and not m.passes(row):
        return Filtered(f"filter of map {m.name!r}")
    if wanted is None:
        wanted = lookup_facts(m, row, reverse=reverse, facts=facts)
    missing = tuple(k for k in wanted.values() if facts.get(k) is None)
    if missing:
        optional = {wanted[lk.name] for lk in _lookups(m, reverse) if lk.optional and lk.name in wanted}
        if settled:
            missing = tuple(k for k in missing if k not in optional)
        if missing:
            return NeedFacts(missing, tuple(k for k in missing if k in optional))
    resolved = {name: facts.get(k) or {} for name, k in wanted.items()}
    entity = m.source.table if reverse else m.target.table
    keys, plan = _field_plan(m, reverse)
    key: dict[str, Any] = {}
    for f in keys:
        value = _value(m, f, row, resolved, f.source, reverse=False)
        if value is None or value == "":
            raise TransformError(f"map {m.name!r}: key field {f.target!r} has no value")
        if f.kind == "text" and not isinstance(value, str):
            # 12345 and '12345' are different keys to the target and to the gate's facts: a
            # number where the column is text is the upstream's mistake, not ours to guess.
            raise TransformError(f"map {m.name!r}: key field {f.target!r} must be text, got "
                                 f"{type(value).__name__} {value!r}")
        key[f.target] = value
    fields: dict[str, Any] = {}
    readable: dict[str, Any] = {}
    for f, name, source, backwards, read, plain in () if keys_only else plan:
        if plain:  # `_value` of a column read as it is, inline: most fields of most maps
            value = row.get(source)  # type: ignore[arg-type]
            if value is None or value == "":
                value = f.default
            elif not isinstance(value, _SCALARS):
                _scalar(m, f"field {f.target!r}", value)  # raises
            if f.kind != "text":
                value = normalize(f.kind, value)
            fields[name] = value
        else:
            value = _value(m, f, row, resolved, source, reverse=backwards)
            fields[name] = f.template.format(value) if f.template and value is not None else value
        if read is not None:  # None: the target shows a GUID for it, nothing to compare
            readable[read] = value
    return Mapped(entity=entity, key=key, fields=fields, readable=readable, lookups=wanted)


def written_back(m: TableMap, row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``write_back`` fields of a target row, by the target's column names, normalized."""
    return {f.target: normalize(f.kind, row.get(f.target)) for f in m.write_back}


def written_back_onto_source(m: TableMap, row: Mapping[str, Any]) -> dict[str, Any]:
    """What the ``write_back`` fields of a target row make the source row hold, by source column."""
    return {f.source or f.target: _value(m, f, row, {}, f.target, reverse=True) for f in m.write_back}


def observed_fields(m: TableMap, row: Mapping[str, Any], *, reverse: bool = False) -> dict[str, Any]:
    """The mapped fields of a target row, in the readable view ``transform`` produces."""
    _, plan = _field_plan(m, reverse)
    out: dict[str, Any] = {}
    for f, _name, _source, _backwards, column, _plain in plan:
        if column is not None:  # None: a bind by key, shown as a GUID
            out[column] = normalize(f.kind, row.get(column))
    return out
