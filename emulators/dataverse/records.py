"""Rows of Dataverse tables: validation of written values, lookups, reads and writes.

Every write goes through :class:`Records` so it lands in the change log with the current
transaction's id and principal, and takes the change's version as its ``versionnumber``.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

from emulators.common.errors import ODataError
from emulators.common.query import normalise_datetime
from emulators.common.store import Store, utc_now
from emulators.dataverse.keys import (
    KeyValue,
    key_columns,
    parse_guid,
    parse_reference,
)
from emulators.dataverse.schema import (
    BY_SET,
    REFERENCES,
    SYSTEM_COLUMNS,
    Column,
    Table,
    choice_values,
)

Row = dict[str, Any]
EDM_TYPES = {"guid": "Edm.Guid", "str": "Edm.String", "int": "Edm.Int32", "choice": "Edm.Int32",
        "dec": "Edm.Decimal", "money": "Edm.Decimal", "bool": "Edm.Boolean", "date": "Edm.Date",
        "datetime": "Edm.DateTimeOffset", "lookup": "Edm.Guid"}


def etag(row: Mapping[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def to_json(table: Table, row: Mapping[str, Any], select: list[str] | None = None) -> Row:
    """A stored row as the Web API shows it (``@odata.etag``, ``_x_value`` lookups)."""
    out: Row = {"@odata.etag": etag(row)}
    wanted = set(select) if select else None
    for column in table.columns:
        if wanted is not None and column.prop not in wanted and column.name != table.primary_key:
            continue
        value = row[column.name]
        if column.kind == "bool" and value is not None:
            value = bool(value)
        out[column.prop] = value
    return out


def _bad_value(column: Column, value: object) -> ODataError:
    return ODataError(400, "0x80048d19",
                      f"Cannot convert the literal '{value}' to the expected type "
                      f"'{EDM_TYPES[column.kind]}' for the property '{column.name}'.")


def convert(table: Table, column: Column, value: object) -> object:
    """A JSON value checked and converted to its stored form."""
    if value is None:
        return None
    kind = column.kind
    if kind in ("int", "choice"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_value(column, value)
        allowed = choice_values(table, column) if kind == "choice" else None
        if allowed is not None and value not in allowed:
            raise ODataError(400, "0x80044331",
                             f"A validation error occurred. The value {value} of '{column.name}' "
                             f"on record of type '{table.logical_name}' is outside the valid range. "
                             f"Accepted Values: {','.join(map(str, allowed))}")
        return value
    if kind in ("dec", "money"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_value(column, value)
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _bad_value(column, value)
        return int(value)
    if not isinstance(value, str):
        raise _bad_value(column, value)
    if kind == "str":
        if column.max_length is not None and len(value) > column.max_length:
            raise ODataError(400, "0x80044331",
                             f"A validation error occurred. The length of the '{column.name}' "
                             f"attribute of the '{table.logical_name}' entity exceeded the maximum "
                             f"allowed length of '{column.max_length}'.")
        return value
    if kind == "guid":
        guid = parse_guid(value)
        if guid is None:
            raise _bad_value(column, value)
        return guid
    if kind == "date":
        try:
            return date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            raise _bad_value(column, value) from None
    if kind == "datetime":
        try:
            return normalise_datetime(value)
        except ODataError:
            raise _bad_value(column, value) from None
    raise _bad_value(column, value)


def unable_to_lookup(target: Table, values: list[KeyValue]) -> ODataError:
    shown = ",".join("" if v is None else str(v) for v in values)
    return ODataError(400, "0x80040265",
                      f"Unable to lookup {target.entity_set} with values {{{shown}}}.")


class Records:
    """Reads and writes rows of every table of one :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def conn(self) -> sqlite3.Connection:
        return self.store.conn

    def get(self, table: Table, row_id: str) -> Row | None:
        found = self.conn.execute(f'SELECT * FROM "{table.entity_set}" WHERE "{table.primary_key}" = ?',
                                  (row_id,)).fetchone()
        return dict(found) if found is not None else None

    def find(self, table: Table, columns: Mapping[str, KeyValue]) -> Row | None:
        """The row matching all ``columns`` exactly (a primary or alternate key)."""
        where = " AND ".join(f'"{name}" IS ?' for name in columns)
        found = self.conn.execute(f'SELECT * FROM "{table.entity_set}" WHERE {where}',
                                  tuple(columns.values())).fetchone()
        return dict(found) if found is not None else None

    def select(self, table: Table, where: str = "", params: list[object] | None = None) -> list[Row]:
        sql = f'SELECT * FROM "{table.entity_set}"' + (f" WHERE {where}" if where else "")
        return [dict(r) for r in self.conn.execute(sql, params or []).fetchall()]

    def resolve_bind(self, column: Column, ref: object, content_ids: Mapping[str, str]) -> str | None:
        """The guid a ``x@odata.bind`` value points at; a missing target is a 400."""
        if ref is None:
            return None
        if not isinstance(ref, str):
            raise ODataError(400, "0x80048d19", f"The value of '{column.name}@odata.bind' must be "
                             "a string URI such as '/accounts(<guid>)'.")
        resource = parse_reference(ref, content_ids)
        assert column.target is not None
        if resource.table.entity_set != column.target or resource.key is None:
            raise ODataError(400, "0x80048d19", f"The '{column.name}' lookup must reference a "
                             f"row of {column.target}, not '{ref}'.")
        target = resource.table
        columns = key_columns(target, resource.key)
        row = self.find(target, columns)
        if row is None:
            raise unable_to_lookup(target, list(columns.values()))
        return str(row[target.primary_key])

    def values_from_body(self, table: Table, body: Mapping[str, object],
                         content_ids: Mapping[str, str]) -> Row:
        """Validate a create/update body; returns {SQL column: stored value}."""
        values: Row = {}
        for name, value in body.items():
            if name.startswith("@") or name in SYSTEM_COLUMNS:
                continue  # annotations and read-only system columns are ignored, as in Dataverse
            if name.endswith("@odata.bind"):
                nav = self._lookup_column(table, name[: -len("@odata.bind")])
                values[nav.name] = self.resolve_bind(nav, value, content_ids)
                continue
            if "@" in name:
                continue  # instance annotations on a property
            column = table.column(name)
            if column is None or column.kind == "lookup":
                raise ODataError(400, "0x80060888",
                                 f"The property '{name}' does not exist on type '{table.type_name}'. "
                                 "Make sure to only use property names that are defined by the type.")
            values[column.name] = convert(table, column, value)
        return values

    def _lookup_column(self, table: Table, nav: str) -> Column:
        column: Column | None = table.column(nav)
        if column is None:
            # Real Dataverse names polymorphic navigations <column>_<target logical name>.
            base = re.sub(r"_[a-z]+$", "", nav)
            candidate = table.column(base)
            if candidate is not None and candidate.target is not None and \
                    nav == f"{base}_{BY_SET[candidate.target].logical_name}":
                column = candidate
        if column is None or column.kind != "lookup":
            raise ODataError(400, "0x80060888", f"An undeclared property '{nav}' which only has "
                             "property annotations in the payload but no property value was found "
                             "in the payload.")
        return column

    def insert(self, table: Table, values: Row) -> Row:
        row: Row = {c.name: None for c in table.columns}
        row.update(values)
        row_id = row.get(table.primary_key) or str(uuid.uuid4())
        row[table.primary_key] = row_id
        missing = [c.name for c in table.columns if c.required and row.get(c.name) is None]
        if missing:
            raise ODataError(400, "0x80040200", f"Attribute '{missing[0]}' of entity "
                             f"'{table.logical_name}' is required and cannot be empty.")
        if self.get(table, row_id) is not None:
            raise ODataError(412, "0x80040237", "Cannot insert duplicate key.")
        now = utc_now()
        row.update(createdon=now, modifiedon=now,
                   versionnumber=self.store.record_change(table.entity_set, row_id, "c"))
        names = ", ".join(f'"{n}"' for n in row)
        try:
            self.conn.execute(f'INSERT INTO "{table.entity_set}" ({names}) VALUES '
                              f'({", ".join("?" * len(row))})', tuple(row.values()))
        except sqlite3.IntegrityError as exc:
            raise self._duplicate(table) from exc
        return row

    def update(self, table: Table, existing: Row, values: Row) -> Row:
        changes = {k: v for k, v in values.items() if k != table.primary_key}
        row = {**existing, **changes}
        missing = [c.name for c in table.columns if c.required and row.get(c.name) is None]
        if missing:
            raise ODataError(400, "0x80040200", f"Attribute '{missing[0]}' of entity "
                             f"'{table.logical_name}' is required and cannot be empty.")
        row_id = existing[table.primary_key]
        row.update(modifiedon=utc_now(),
                   versionnumber=self.store.record_change(table.entity_set, row_id, "u"))
        sets = ", ".join(f'"{n}" = ?' for n in row if n != table.primary_key)
        params = [v for n, v in row.items() if n != table.primary_key]
        try:
            self.conn.execute(f'UPDATE "{table.entity_set}" SET {sets} WHERE '
                              f'"{table.primary_key}" = ?', (*params, row_id))
        except sqlite3.IntegrityError as exc:
            raise self._duplicate(table) from exc
        return row

    def delete(self, table: Table, existing: Row) -> None:
        """Delete a row: parental children go with it, other references lose their link."""
        row_id = existing[table.primary_key]
        for child_table, column in REFERENCES.get(table.entity_set, []):
            for child in self.select(child_table, f'"{column.name}" = ?', [row_id]):
                if child_table is table and child[table.primary_key] == row_id:
                    continue
                current = self.get(child_table, child[child_table.primary_key])
                if current is None:
                    continue  # already removed by an earlier cascade step
                if column.parental:
                    self.delete(child_table, current)
                else:
                    self.update(child_table, current, {column.name: None})
        self.store.record_change(table.entity_set, row_id, "d")
        self.conn.execute(f'DELETE FROM "{table.entity_set}" WHERE "{table.primary_key}" = ?',
                          (row_id,))

    def _duplicate(self, table: Table) -> ODataError:
        keys = "; ".join(",".join(k) for k in table.alternate_keys)
        return ODataError(412, "0x80060892",
                          f"A record that has the attribute values {keys} already exists. The "
                          f"entity key for {table.logical_name} requires that this set of "
                          "attributes contains unique values. Select unique values and try again.")
