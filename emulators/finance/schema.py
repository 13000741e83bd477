"""How an entity is declared: fields, types, keys, company striping and references.

The catalogue itself (which entities exist) is in ``entities.py``; this module only holds the
vocabulary, so storage, URL key parsing, validation and the change feed all read one
declaration instead of per-entity SQL.

Every entity also gets three system fields that are not declared: ``RecId`` (int64, unique per
table, allocated from 5637144576 like a fresh FO table), ``RecVersion`` (int, starts at 1 and
grows on every update; the ``@odata.etag`` is ``W/"<RecVersion>"``) and ``ModifiedDateTime``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

__all__ = [
    "SYSTEM_FIELDS",
    "Entity",
    "Field",
    "FieldType",
    "Ref",
    "coerce",
]

SYSTEM_FIELDS = ("RecId", "RecVersion", "ModifiedDateTime")

# FO hands out RecIds from SystemSequences; a fresh table starts near this value.
FIRST_RECID = 5637144576

FieldType = str  # one of: str, int, real, date, datetime, enum
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Field:
    """One column of a data entity.

    ``enum`` lists the symbols of an FO enum; FO OData serialises enums by symbol name (also
    NoYes, which is why booleans here are ``enum=("No", "Yes")`` and not JSON true/false).
    Date-only FO fields come back as ``Edm.DateTimeOffset`` at 12:00 UTC, e.g.
    ``2024-01-31T12:00:00Z``; we store and return them the same way.
    """

    name: str
    type: FieldType = "str"
    size: int | None = None
    enum: tuple[str, ...] = ()
    default: object = None
    required: bool = False

    @property
    def sql_type(self) -> str:
        # FO runs on SQL Server with a case-insensitive collation: keys, $filter and uniqueness
        # ignore case for strings ('us-001' is customer US-001).
        if self.type in ("str", "enum"):
            return "TEXT COLLATE NOCASE"
        return {"int": "INTEGER", "real": "REAL"}.get(self.type, "TEXT")


@dataclass(frozen=True)
class Ref:
    """A lookup: the values of ``fields`` on this row must name a row of ``target``.

    ``target_fields`` are the target's key fields in the same order (company excluded: a
    reference from a company-specific row always points into the same company, as FO does).
    The check is skipped while any of ``fields`` is empty, because FO lookups are optional
    unless the field is mandatory.
    """

    fields: tuple[str, ...]
    target: str
    target_fields: tuple[str, ...]


@dataclass(frozen=True)
class Entity:
    """A public data entity exposed at ``/data/<name>``.

    ``company_field`` is the dataAreaId-like field of company-specific entities (the first key
    field; ``ProjectDataAreaId`` for actuals staging), None for global ones. ``table`` is the AOT
    name used in FO error messages ("Write failed for table row of type '<table>'").
    ``read_only`` entities are written only by back-office jobs, never over OData.
    """

    name: str
    table: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    company_field: str | None = "dataAreaId"
    refs: tuple[Ref, ...] = ()
    read_only: bool = False
    _by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            self._by_name[f.name] = f
        missing = [k for k in self.key if k not in self._by_name]
        if missing:
            raise ValueError(f"{self.name}: key fields not declared: {missing}")
        if self.company_field and self.key[0] != self.company_field:
            raise ValueError(f"{self.name}: company field must lead the key")

    @property
    def company_fields(self) -> tuple[str, ...]:
        """Fields holding a dataAreaId; stored lower-case (FO compares them case-insensitively)."""
        names = {"dataAreaId", self.company_field} & set(self._by_name)
        return tuple(sorted(n for n in names if n))

    @property
    def sql_table(self) -> str:
        return f"fo_{self.name}"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def all_names(self) -> tuple[str, ...]:
        return (*self.field_names, *SYSTEM_FIELDS)

    def get(self, name: str) -> Field | None:
        return self._by_name.get(name)

    def key_of(self, row: dict[str, object]) -> dict[str, object]:
        return {k: row.get(k) for k in self.key}


class CoercionError(ValueError):
    """A JSON value cannot be stored in a field (becomes an OData 400)."""


def _date(value: object, name: str) -> str:
    text = str(value)
    if not _DATE_RE.match(text):
        raise CoercionError(f"Field '{name}': '{text}' is not a date.")
    try:
        date.fromisoformat(text[:10])
    except ValueError as exc:
        raise CoercionError(f"Field '{name}': '{text}' is not a date.") from exc
    return f"{text[:10]}T12:00:00Z"


def _datetime(value: object, name: str) -> str:
    text = str(value)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise CoercionError(f"Field '{name}': '{text}' is not a date and time.") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def coerce(f: Field, value: object) -> object:
    """Turn a JSON value into what we store for ``f``; raises CoercionError."""
    if value is None:
        return None
    if f.type == "str":
        if not isinstance(value, str):
            raise CoercionError(f"Field '{f.name}': expected a string, got {value!r}.")
        if f.size is not None and len(value) > f.size:
            raise CoercionError(
                f"Field '{f.name}': value is {len(value)} characters, the limit is {f.size}.")
        return value
    if f.type == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise CoercionError(f"Field '{f.name}': expected an integer, got {value!r}.")
        return value
    if f.type == "real":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise CoercionError(f"Field '{f.name}': expected a number, got {value!r}.")
        try:
            return float(value)
        except ValueError as exc:
            raise CoercionError(f"Field '{f.name}': expected a number, got {value!r}.") from exc
    if f.type == "date":
        return _date(value, f.name)
    if f.type == "datetime":
        return _datetime(value, f.name)
    if f.type == "enum":
        if value not in f.enum:
            raise CoercionError(
                f"Field '{f.name}': '{value}' is not a valid value; expected one of "
                f"{', '.join(f.enum)}.")
        return value
    raise CoercionError(f"Field '{f.name}': unknown type {f.type}.")  # pragma: no cover
