"""SQLite storage of the data entities, generated from their declarations.

One table ``fo_<Entity>`` per entity: ``RecId INTEGER PRIMARY KEY AUTOINCREMENT`` (seeded so the
first RecId is 5637144576, like a fresh FO table; AUTOINCREMENT so a deleted RecId is never
reused), the declared fields, ``RecVersion`` and ``ModifiedDateTime``, and a UNIQUE index on the
entity key. Reads here are plain functions over a connection; writes go through ``Writer``
(``writer.py``) so that every change is also appended to the change feed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from emulators.finance.entities import ENTITIES
from emulators.finance.schema import FIRST_RECID, Entity

__all__ = ["create_tables", "etag", "fetch", "is_empty", "json_row", "next_number", "select"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create_tables(conn: sqlite3.Connection, entities: Iterable[Entity] = ENTITIES) -> None:
    """Create missing tables, columns and indexes (idempotent: run on every start)."""
    for ent in entities:
        cols = ["RecId INTEGER PRIMARY KEY AUTOINCREMENT"]
        cols += [f"{_quote(f.name)} {f.sql_type}" for f in ent.fields]
        cols += ["RecVersion INTEGER NOT NULL", "ModifiedDateTime TEXT NOT NULL"]
        cols.append("UNIQUE (" + ", ".join(_quote(k) for k in ent.key) + ")")
        table = _quote(ent.sql_table)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(cols)})")
        # A database kept from an older emulator gains fields declared since (as NULLs).
        present = {r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}
        for f in ent.fields:
            if f.name not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(f.name)} {f.sql_type}")
        seeded = conn.execute("SELECT 1 FROM sqlite_sequence WHERE name = ?",
                              (ent.sql_table,)).fetchone()
        if seeded is None:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)",
                         (ent.sql_table, FIRST_RECID - 1))
        # Lookups are checked on delete from the referenced side and joined by the jobs;
        # index them so neither is a table scan once a demo has run for a while.
        for n, ref in enumerate(ent.refs):
            cols_idx = ([ent.company_field] if ent.company_field else []) + list(ref.fields)
            conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_{ent.sql_table}_ref{n}" ON {table} '
                         f'({", ".join(_quote(c) for c in cols_idx)})')
        if ent.get("ImportStatus") is not None:
            conn.execute(f'CREATE INDEX IF NOT EXISTS "ix_{ent.sql_table}_status" ON {table} '
                         '("ImportStatus")')
    # FO number sequences (category ids, journal ids, vouchers); persisted so restarts resume.
    conn.execute("CREATE TABLE IF NOT EXISTS fo_NumberSequences "
                 "(Code TEXT PRIMARY KEY, NextRec INTEGER NOT NULL)")


def next_number(conn: sqlite3.Connection, code: str, start: int = 1) -> int:
    """Take the next number of sequence ``code`` (inside the caller's transaction)."""
    row = conn.execute("SELECT NextRec FROM fo_NumberSequences WHERE Code = ?", (code,)).fetchone()
    value = start if row is None else int(row[0])
    conn.execute("INSERT INTO fo_NumberSequences (Code, NextRec) VALUES (?, ?) "
                 "ON CONFLICT (Code) DO UPDATE SET NextRec = excluded.NextRec", (code, value + 1))
    return value


def _as_dict(ent: Entity, cursor: sqlite3.Cursor, values: tuple[object, ...]) -> dict[str, object]:
    names = [d[0] for d in cursor.description]
    return dict(zip(names, values, strict=True))


def fetch(conn: sqlite3.Connection, ent: Entity, key: dict[str, object]) -> dict[str, object] | None:
    """The stored row with exactly this key, or None."""
    where = " AND ".join(f"{_quote(k)} = ?" for k in ent.key)
    cur = conn.execute(f"SELECT * FROM {_quote(ent.sql_table)} WHERE {where}",
                       [key[k] for k in ent.key])
    found = cur.fetchone()
    return None if found is None else _as_dict(ent, cur, found)


def select(conn: sqlite3.Connection, ent: Entity, where: str = "", params: Iterable[object] = (),
           order: str = "") -> list[dict[str, object]]:
    """Rows matching a trusted SQL ``where`` fragment (built by our own code, never by users)."""
    sql = f"SELECT * FROM {_quote(ent.sql_table)}"
    if where:
        sql += f" WHERE {where}"
    sql += f" ORDER BY {order or 'RecId'}"
    cur = conn.execute(sql, list(params))
    return [_as_dict(ent, cur, r) for r in cur.fetchall()]


def is_empty(conn: sqlite3.Connection) -> bool:
    return all(conn.execute(f"SELECT 1 FROM {_quote(e.sql_table)} LIMIT 1").fetchone() is None
               for e in ENTITIES)


def etag(row: dict[str, object]) -> str:
    """The ``@odata.etag`` of a row: ``W/"<RecVersion>"``."""
    return f'W/"{row["RecVersion"]}"'


def json_row(ent: Entity, row: dict[str, object], select_fields: Iterable[str] | None = None
             ) -> dict[str, object]:
    """A stored row as the OData JSON object (etag first, then the selected fields)."""
    out: dict[str, object] = {"@odata.etag": etag(row)}
    names = ent.all_names if select_fields is None else tuple(select_fields)
    for name in names:
        out[name] = row.get(name)
    return out
