"""The last image a source emitted for each record, kept durably so that every update and
delete carries its full ``before`` image, after a restart too and for rows not seen for ages.

Debezium consumers need it: Flink's ``debezium-json`` format fails a job on an update whose
``before`` is null, and a delete's ``before`` is what aggregates over non-key columns take back.

One SQLite file per source (``<state dir>/sources/<system>-images.sqlite``), one row per
(table, record key). A reader asks for the before image while it parses a page and `remember`s
the page's images; those are only *staged*: the engine `commit`s a table's staged images after
Kafka acknowledged the page's events and before it checkpoints the position, and `discard`s
them when the page failed. So a crash or a failed produce re-reads the page against the images
of the events that were really emitted, and the store is never behind the checkpoint (it may be
ahead of it by the page being checkpointed: that page comes again with the same versions, and
the processor drops it by version).

Lost state (a new machine, a deleted file) is not fatal: an update or delete of a row the store
does not know carries ``before: null`` (a delete its key) until the row is emitted again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import orjson

__all__ = ["BeforeImages", "ImageStore", "ImageStoreError", "TableImages"]

_NO_IMAGE = object()
_SCHEMA = ("CREATE TABLE IF NOT EXISTS images (tbl TEXT NOT NULL, rec TEXT NOT NULL, image BLOB NOT NULL, "
           "PRIMARY KEY (tbl, rec)) WITHOUT ROWID")


class ImageStoreError(RuntimeError):
    """The image file cannot be opened as a store (corrupt, not SQLite, unwritable)."""


class BeforeImages(Protocol):
    """Where a reader finds a record's before image (a `TableImages`, or a plain dict in tests)."""

    def get(self, key: str, /) -> dict[str, Any] | None: ...


class TableImages:
    """One table's view of the store: ``get(record key)`` as a reader asks it."""

    def __init__(self, store: ImageStore, table: str) -> None:
        self._store, self._table = store, table

    def get(self, key: str) -> dict[str, Any] | None:
        return self._store.get(self._table, key)


class ImageStore:
    """Last emitted image per (table, record key); ``path`` None keeps it in memory only."""

    def __init__(self, path: Path | None = None) -> None:
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            # Written from a worker thread (`commit`), read on the event loop: one lock serialises both.
            self._db = sqlite3.connect(str(path) if path is not None else ":memory:", isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoint, fast per page
            self._db.execute(_SCHEMA)
            self._db.execute("SELECT count(*) FROM images WHERE tbl = ''").fetchone()
        except (sqlite3.Error, OSError) as exc:
            raise ImageStoreError(f"{path}: not a usable store of before images ({exc}); move it away "
                                  "to start afresh (updates then carry no before image until their "
                                  "rows change again)") from None
        self._staged: dict[str, dict[str, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def table(self, table: str) -> TableImages:
        return TableImages(self, table)

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """The image of the record's last change: staged by this page, else emitted before."""
        staged = self._staged.get(table)
        if staged is not None and key in staged:
            return staged[key]
        with self._lock:
            row = self._db.execute("SELECT image FROM images WHERE tbl = ? AND rec = ?", (table, key)).fetchone()
        return orjson.loads(row[0]) if row else None

    def remember(self, table: str, items: Iterable[Any]) -> None:
        """Stage the images of a page's changes (a delete forgets its record)."""
        staged = self._staged.setdefault(table, {})
        for item in items:
            image: Any = getattr(item, "image", _NO_IMAGE)
            if image is not _NO_IMAGE:  # a Change (None: a delete); a BadRecord has no image
                staged[item.key] = image

    async def commit(self, table: str) -> None:
        """Make the table's staged images durable (its events are in Kafka). The staged images
        are taken on the caller's thread, so a page staged meanwhile waits for the next commit;
        they are written on a worker thread (SQLite lets go of the interpreter while it writes):
        a thousand rows a page cost the event loop as much as reading them. A `get` meanwhile
        waits for the write and then reads it."""
        staged = self._staged.pop(table, None)
        if staged:
            await asyncio.to_thread(self._write, table, staged)

    def _write(self, table: str, staged: dict[str, dict[str, Any] | None]) -> None:
        rows = [(table, k, orjson.dumps(v)) for k, v in staged.items() if v is not None]
        gone = [(table, k) for k, v in staged.items() if v is None]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO images (tbl, rec, image) VALUES (?, ?, ?)", rows)
                self._db.executemany("DELETE FROM images WHERE tbl = ? AND rec = ?", gone)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def discard(self, table: str) -> None:
        """Forget what a failed page staged: it is read again against the emitted images."""
        self._staged.pop(table, None)
