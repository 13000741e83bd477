"""Every write to a data entity: validation, storage and the change feed entry, together.

``Writer`` must be used inside ``Store.transaction(...)``; each insert, update or delete
appends exactly one entry to the common change log (whose global version becomes the row's
``RecVersion``) and one row image to ``fo_ChangeImages`` in the same SQLite transaction, so a
rolled-back change set leaves neither rows nor feed entries behind.

Validation mirrors FO's validateWrite/validateDelete as far as the emulator knows the data:
required fields, lookups (``Ref``) into the same company, duplicate keys on create, key fields
immutable on update, and restricted deletes (a row still named by another row's lookup).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from emulators.common.store import Store
from emulators.finance import tables
from emulators.finance.entities import ENTITIES, entity
from emulators.finance.errors import not_found, write_failed
from emulators.finance.schema import Entity

__all__ = ["IMAGES_DDL", "Writer", "key_json"]

IMAGES_DDL = """
CREATE TABLE IF NOT EXISTS fo_ChangeImages (
    version  INTEGER PRIMARY KEY,
    entity   TEXT NOT NULL,
    key_json TEXT NOT NULL,
    row_json TEXT,
    ts_ms    INTEGER NOT NULL
);
"""

Row = dict[str, object]


def key_json(ent: Entity, row: Row) -> str:
    """Canonical JSON of a row's key (key field order), the change log's ``row_id``."""
    return json.dumps({k: row[k] for k in ent.key}, separators=(",", ":"))


def _empty(value: object) -> bool:
    return value is None or value == ""


class Writer:
    """Validated writes with change capture, on the store's current transaction."""

    def __init__(self, store: Store, clock_ms: Callable[[], int] | None = None) -> None:
        self.store = store
        self.conn = store.conn
        self._clock_ms = clock_ms or (lambda: int(time.time() * 1000))

    # -- reads used by validation and jobs ------------------------------------------------
    def get(self, ent: Entity, key: dict[str, object]) -> Row | None:
        return tables.fetch(self.conn, ent, key)

    def require(self, ent: Entity, key: dict[str, object]) -> Row:
        row = self.get(ent, key)
        if row is None:
            shown = ",".join(f"{k}='{v}'" for k, v in key.items())
            raise not_found(f"No {ent.name} record found with key ({shown}).")
        return row

    # -- writes ---------------------------------------------------------------------------
    def insert(self, ent: Entity, values: Row) -> Row:
        row: Row = {f.name: values.get(f.name, f.default) for f in ent.fields}
        for f in ent.fields:
            if (f.required or f.name in ent.key) and _empty(row[f.name]):
                raise write_failed(ent.table, f"Field '{f.name}' must be filled in.")
        if self.get(ent, ent.key_of(row)) is not None:
            shown = ", ".join(f"{row[k]}" for k in ent.key)
            raise write_failed(ent.table, f"Cannot create a record in {ent.name} ({shown}). "
                                          "The record already exists.")
        self._check_refs(ent, row)
        version = self._log(ent, row, "c")
        row.update(RecVersion=version, ModifiedDateTime=self._now())
        names = [*ent.field_names, "RecVersion", "ModifiedDateTime"]
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        self.conn.execute(f'INSERT INTO "{ent.sql_table}" ({cols}) VALUES ({marks})',
                          [row[n] for n in names])
        stored = self.require(ent, ent.key_of(row))
        self._image(version, ent, stored, stored)
        return stored

    def update(self, ent: Entity, key: dict[str, object], changes: Row) -> Row:
        current = self.require(ent, key)
        for k in ent.key:
            if k in changes and changes[k] != current[k]:
                raise write_failed(ent.table, f"Field '{k}' is part of the key and cannot be "
                                              "changed.")
        row = {**current, **{k: v for k, v in changes.items() if ent.get(k) is not None}}
        for f in ent.fields:
            if f.required and _empty(row[f.name]):
                raise write_failed(ent.table, f"Field '{f.name}' must be filled in.")
        self._check_refs(ent, row)
        version = self._log(ent, row, "u")
        row.update(RecVersion=version, ModifiedDateTime=self._now())
        names = [*ent.field_names, "RecVersion", "ModifiedDateTime"]
        sets = ", ".join(f'"{n}" = ?' for n in names)
        self.conn.execute(f'UPDATE "{ent.sql_table}" SET {sets} WHERE RecId = ?',
                          [row[n] for n in names] + [current["RecId"]])
        stored = self.require(ent, key)
        self._image(version, ent, stored, stored)
        return stored

    def delete(self, ent: Entity, key: dict[str, object]) -> Row:
        current = self.require(ent, key)
        self._check_not_referenced(ent, current)
        version = self._log(ent, current, "d")
        self.conn.execute(f'DELETE FROM "{ent.sql_table}" WHERE RecId = ?', (current["RecId"],))
        self._image(version, ent, current, None)
        return current

    # -- internals ------------------------------------------------------------------------
    def _now(self) -> str:
        return datetime.fromtimestamp(self._clock_ms() / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _log(self, ent: Entity, row: Row, op: str) -> int:
        return self.store.record_change(ent.name, key_json(ent, row), op)

    def _image(self, version: int, ent: Entity, key_row: Row, image: Row | None) -> None:
        self.conn.execute(
            "INSERT INTO fo_ChangeImages (version, entity, key_json, row_json, ts_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (version, ent.name, key_json(ent, key_row),
             None if image is None else json.dumps(image, separators=(",", ":")),
             self._clock_ms()))

    def _target_key(self, ent: Entity, row: Row, target: Entity,
                    fields: tuple[str, ...], target_fields: tuple[str, ...]) -> dict[str, object]:
        key = dict(zip(target_fields, (row[f] for f in fields), strict=True))
        if target.company_field:
            key[target.company_field] = row[ent.company_field] if ent.company_field else None
        return key

    def _check_refs(self, ent: Entity, row: Row) -> None:
        if ent.company_field:
            company = row[ent.company_field]
            legal_entities = entity("LegalEntities")
            assert legal_entities is not None
            if self.get(legal_entities, {"dataAreaId": company}) is None:
                raise write_failed(ent.table, f"Company '{company}' does not exist.")
        for ref in ent.refs:
            if any(_empty(row.get(f)) for f in ref.fields):
                continue
            target = entity(ref.target)
            assert target is not None, ref.target
            if self.get(target, self._target_key(ent, row, target, ref.fields,
                                                 ref.target_fields)) is None:
                shown = ", ".join(str(row[f]) for f in ref.fields)
                names = ", ".join(ref.fields)
                raise write_failed(ent.table, f"The value '{shown}' in field '{names}' is not "
                                              f"found in the relating table '{target.name}'.")

    def _check_not_referenced(self, ent: Entity, row: Row) -> None:
        for other in ENTITIES:
            for ref in other.refs:
                if ref.target != ent.name:
                    continue
                where = [f'"{f}" = ?' for f in ref.fields]
                params = [row[t] for t in ref.target_fields]
                if ent.company_field and other.company_field:
                    where.append(f'"{other.company_field}" = ?')
                    params.append(row[ent.company_field])
                hit = self.conn.execute(
                    f'SELECT 1 FROM "{other.sql_table}" WHERE {" AND ".join(where)} LIMIT 1',
                    params).fetchone()
                if hit is not None:
                    raise write_failed(ent.table, f"Cannot delete a record in {ent.name}. The "
                                                  f"record is referenced by {other.name}.")
