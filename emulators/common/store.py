"""SQLite plumbing shared by the emulators: connection, transactions and the change log.

One connection per emulator, used from the event loop thread only: requests are short and
local, and a single writer makes every transaction serial, like one database server would.
The change log is the source of truth for row versions: every write appends one entry whose
``version`` (a global, strictly increasing integer) becomes the row's version number.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

CHANGE_LOG_DDL = """
CREATE TABLE IF NOT EXISTS _changes (
    version   INTEGER PRIMARY KEY AUTOINCREMENT,
    tbl       TEXT NOT NULL,
    row_id    TEXT NOT NULL,
    op        TEXT NOT NULL CHECK (op IN ('c', 'u', 'd')),
    txid      TEXT NOT NULL,
    principal TEXT NOT NULL,
    ts        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS _changes_tbl ON _changes (tbl, version);
CREATE INDEX IF NOT EXISTS _changes_tx ON _changes (txid, version);
"""


def utc_now() -> str:
    """Timestamps as the services print them: ISO 8601, whole seconds, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_db(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Autocommit mode: transactions are opened explicitly by Store.transaction().
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(CHANGE_LOG_DDL)
    return conn


@dataclass(frozen=True)
class Change:
    version: int
    table: str
    row_id: str
    op: str
    txid: str
    principal: str
    ts: str


@dataclass
class Transaction:
    """Who is writing and under which transaction id; one per request or change set."""

    txid: str
    principal: str


class Store:
    """An open SQLite database with nested transactions and a change log."""

    def __init__(self, path: Path) -> None:
        self.conn = open_db(path)
        self._depth = 0
        self.current: Transaction | None = None

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self, principal: str = "system") -> Iterator[Transaction]:
        """Atomic unit of work; nested calls join the outer one as a savepoint.

        The outermost call fixes the transaction id and principal recorded on every change.
        """
        if self._depth == 0:
            self.conn.execute("BEGIN IMMEDIATE")
            self.current = Transaction(uuid.uuid4().hex, principal)
        else:
            self.conn.execute(f"SAVEPOINT sp{self._depth}")
        self._depth += 1
        tx = self.current
        assert tx is not None
        try:
            yield tx
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("ROLLBACK")
                self.current = None
            else:
                self.conn.execute(f"ROLLBACK TO sp{self._depth}")
                self.conn.execute(f"RELEASE sp{self._depth}")
            raise
        self._depth -= 1
        if self._depth == 0:
            self.conn.execute("COMMIT")
            self.current = None
        else:
            self.conn.execute(f"RELEASE sp{self._depth}")

    def record_change(self, table: str, row_id: str, op: str) -> int:
        """Append to the change log inside the current transaction; returns the new version."""
        tx = self.current
        if tx is None:
            raise RuntimeError("record_change outside a transaction")
        cur = self.conn.execute(
            "INSERT INTO _changes (tbl, row_id, op, txid, principal, ts) VALUES (?, ?, ?, ?, ?, ?)",
            (table, row_id, op, tx.txid, tx.principal, utc_now()))
        return int(cur.lastrowid or 0)

    def last_version(self) -> int:
        row = self.conn.execute("SELECT COALESCE(MAX(version), 0) FROM _changes").fetchone()
        return int(row[0])

    def changes_since(self, table: str, after: int, upto: int) -> list[Change]:
        """Change log entries of ``table`` with ``after < version <= upto``, oldest first."""
        rows = self.conn.execute(
            "SELECT version, tbl, row_id, op, txid, principal, ts FROM _changes "
            "WHERE tbl = ? AND version > ? AND version <= ? ORDER BY version",
            (table, after, upto)).fetchall()
        return [Change(*row) for row in rows]

    def transaction_rows(self, txid: str) -> list[tuple[str, str]]:
        """The distinct (table, row id) a transaction touched, in the order it first touched them."""
        rows = self.conn.execute(
            "SELECT tbl, row_id FROM _changes WHERE txid = ? GROUP BY tbl, row_id "
            "ORDER BY MIN(version)", (txid,)).fetchall()
        return [(str(t), str(r)) for t, r in rows]
