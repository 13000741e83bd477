"""The last image a source emitted for each record, kept durably so that every update and
delete carries its full ``before`` image, after a restart too and for rows not seen for ages.

Debezium consumers need it: Flink's ``debezium-json`` format fails a job on an update whose
``before`` is null, and a delete's ``before`` is what aggregates over non-key columns take back.

One LMDB file per source (``<state dir>/sources/<system>-images.lmdb``, a ``-lock`` file beside
it), one entry per (table, record key). A reader asks for the before image while it parses a
page and `remember`s the page's images; those are only *staged*: the engine `commit`s a table's
staged images after Kafka acknowledged the page's events and before it checkpoints the position,
and `discard`s them when the page failed. So a crash or a failed produce re-reads the page
against the images of the events that were really emitted, and the store is never behind the
checkpoint (it may be ahead of it by the page being checkpointed: that page comes again with the
same versions, and the processor drops it by version).

Why LMDB: the source and `dualwrite initial-sync` write the same store from two processes (one
writer at a time, readers never blocked), and an initial sync writes a row per row it reads.
SQLite gives the first; it cost 0.13 CPU-seconds per 50,000 images of 263 bytes, LMDB 0.02
(with an fsync per page; SQLite's WAL did not sync each commit), and on 2 cores the images were
a quarter of the sync's own CPU. A commit is one write transaction, synced to disk before the
engine checkpoints (the meta page is not synced separately: a power loss may undo the last
commit, never corrupt the file). The store from before (``<system>-images.sqlite`` beside the
new path) is imported once when the new one is created, then renamed ``.sqlite.imported``.

Lost state (a new machine, a deleted file) is not fatal: an update or delete of a row the store
does not know carries ``before: null`` (a delete its key) until the row is emitted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import lmdb
import orjson

__all__ = ["BeforeImages", "ImageStore", "ImageStoreError", "TableImages"]

_NO_IMAGE = object()
_MAP_SIZE = 1 << 30  # the first size of the mapping; doubled each time the store fills it
_KEY_ROOM = 480  # LMDB keys hold at most 511 bytes: a longer record key is stored by its digest
LEGACY_SUFFIX = ".sqlite"  # the SQLite store of earlier versions, imported once
_T = TypeVar("_T")


class ImageStoreError(RuntimeError):
    """The image file cannot be opened as a store (corrupt, not LMDB, unwritable)."""


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
        # Written from a worker thread (`commit`), read on the event loop: one lock serialises
        # both, so a `get` during a commit waits for it (the commit took the images it writes
        # out of the staged ones before it started).
        self._lock = threading.Lock()
        self._staged: dict[str, dict[str, dict[str, Any] | None]] = {}
        self._memory: dict[bytes, bytes] = {}
        self._env: lmdb.Environment | None = None
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._env = lmdb.open(str(path), subdir=False, map_size=_MAP_SIZE, metasync=False,
                                  readahead=False, max_dbs=0)
            self._env.reader_check()  # reader slots of processes killed meanwhile
        except (lmdb.Error, OSError) as exc:
            raise ImageStoreError(f"{path}: not a usable store of before images ({exc}); move it away "
                                  "to start afresh (updates then carry no before image until their "
                                  "rows change again)") from None
        legacy = path.with_suffix(LEGACY_SUFFIX)
        if legacy != path and legacy.is_file():
            self._import(legacy)

    def close(self) -> None:
        with self._lock:
            if self._env is not None:
                self._env.close()

    def table(self, table: str) -> TableImages:
        return TableImages(self, table)

    def get(self, table: str, key: str) -> dict[str, Any] | None:
        """The image of the record's last change: staged by this page, else emitted before."""
        staged = self._staged.get(table)
        if staged is not None and key in staged:
            return staged[key]
        with self._lock:
            raw = self._read(_key(table, key))
        return orjson.loads(raw) if raw is not None else None

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
        they are written on a worker thread (the sync to disk lets go of the interpreter). A
        `get` meanwhile waits for the write and then reads it."""
        staged = self._staged.pop(table, None)
        if staged:
            await asyncio.to_thread(self._write, table, staged)

    def discard(self, table: str) -> None:
        """Forget what a failed page staged: it is read again against the emitted images."""
        self._staged.pop(table, None)

    def _write(self, table: str, staged: dict[str, dict[str, Any] | None]) -> None:
        puts: list[tuple[bytes, bytes]] = []
        gone: list[bytes] = []
        prefix = _prefix(table)
        for k, v in staged.items():
            key = prefix + k.encode("utf-8", "surrogatepass")
            if len(key) > _KEY_ROOM:
                key = _long_key(table, k)
            try:
                image = None if v is None else orjson.dumps(v)
            except TypeError:  # orjson cannot write it (its event was dead-lettered): forgotten
                image = None
            if image is None:
                gone.append(key)
            else:
                puts.append((key, image))
        with self._lock:
            self._put(puts, gone)

    def _put(self, puts: list[tuple[bytes, bytes]], gone: list[bytes]) -> None:
        """One transaction (the lock held): every put and delete, or none of them."""
        if self._env is None:
            self._memory.update(puts)
            for k in gone:
                self._memory.pop(k, None)
            return

        def write(txn: lmdb.Transaction) -> None:
            if puts:
                txn.cursor().putmulti(puts)
            for k in gone:
                txn.delete(k)
        self._in_txn(write, write=True)

    def _read(self, key: bytes) -> bytes | None:
        if self._env is None:
            return self._memory.get(key)
        return cast("bytes | None", self._in_txn(lambda txn: txn.get(key), write=False))  # buffers=False: bytes

    def _in_txn(self, work: Callable[[lmdb.Transaction], _T], *, write: bool) -> _T:
        """``work`` in a transaction; a full mapping is doubled and the work done again, one that
        another process (the other writer of this store) grew is taken up."""
        assert self._env is not None
        while True:
            try:
                with self._env.begin(write=write) as txn:
                    return work(txn)
            except lmdb.MapFullError:
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
            except lmdb.MapResizedError:
                self._env.set_mapsize(0)

    def _import(self, legacy: Path) -> None:
        """The images of the SQLite store of earlier versions, once, into a store still empty,
        in one transaction that first checks that it is (a crash half-way leaves the new store
        empty and the old one where it was, so the next start imports it again; of the source
        and an initial sync starting together, the second finds it done); the old file is then
        renamed (kept, never read again)."""
        assert self._env is not None

        def copy(txn: lmdb.Transaction) -> None:
            if txn.cursor().first():  # not empty: imported already (by the other writer, say)
                return
            db = sqlite3.connect(f"file:{legacy}?mode=ro", uri=True)
            try:
                cursor = db.execute("SELECT tbl, rec, image FROM images")
                while rows := cursor.fetchmany(10_000):
                    txn.cursor().putmulti([(_key(t, r), bytes(i)) for t, r, i in rows])
            finally:
                db.close()

        try:
            with self._lock:
                self._in_txn(copy, write=True)
        except sqlite3.Error as exc:
            raise ImageStoreError(f"{legacy}: the store of an earlier version cannot be read "
                                  f"({exc}); move it away to start afresh (updates then carry "
                                  "no before image until their rows change again)") from None
        with contextlib.suppress(FileNotFoundError):  # the other writer, starting too, renamed it
            legacy.rename(legacy.with_name(legacy.name + ".imported"))


def _prefix(table: str) -> bytes:
    return f"{table}\0".encode("utf-8", "surrogatepass")


def _key(table: str, key: str) -> bytes:
    """The store's key of a record: table, a separator, the record key; a record key too long
    for LMDB goes by its SHA-256 (`_long_key`)."""
    plain = _prefix(table) + key.encode("utf-8", "surrogatepass")
    return plain if len(plain) <= _KEY_ROOM else _long_key(table, key)


def _long_key(table: str, key: str) -> bytes:
    """Another separator, so a digest never meets a plain key."""
    return f"{table}\1".encode("utf-8", "surrogatepass") + hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
