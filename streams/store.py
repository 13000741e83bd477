"""The batch engine's tables: RocksDB per table partition, a changelog per table, one batch open.

    Stores(tables, datadir, changelog_topic)   every table of the worker
    Stores.at(partition)                       reads and writes now go to this partition
    Table[key], Table.get, Table[key] = v, Table.pop   as `streams.gatekeeper` uses a table
    Stores.changelog() -> [(topic, partition, key, value)]   the open batch's last writes
    Stores.persist(offsets)                    after the batch's transaction committed
    Stores.drop()                              the batch failed: forget its writes

The layout is Faust's, so either engine opens the other's state: one RocksDB database per table
partition at ``<tabledir>/<table>-<partition>.db`` opened with Faust's options, keys and
values JSON as on the changelog topic ``<app id>-<table>-changelog``, and the offset of the last
changelog record a database holds under Faust's offset key.

A key lives in the partition of the gate record being handled when it is written (as Faust
writes it), and is read from that partition only: the engine says which with `at` before it
hands a record to ingest or the gatekeeper.

Writes of the open batch are kept in memory, encoded as the changelog will carry them, and read
back from there. When the batch ends the engine produces `changelog` (the last write of each key,
to its partition) in the batch's Kafka transaction; only once that transaction committed are the
writes put into RocksDB, with each partition's last changelog offset in the same write batch
(`persist`). So RocksDB never holds a write whose transaction did not commit, and a worker killed
between the commit and `persist` reads the tail of the changelog back (`recover`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import orjson
from faust.stores.rocksdb import RocksDBOptions

__all__ = ["OFFSET_KEY", "Stores", "Table", "db_path"]

OFFSET_KEY = b"__faust\0offset__"  # Faust's own key for a database's persisted changelog offset

_DELETED = None


def db_path(tabledir: Path, table: str, partition: int) -> Path:
    """Where Faust keeps a table partition's database (its app's ``tabledir``)."""
    return tabledir / f"{table}-{partition}.db"


def _key(key: str) -> bytes:
    return orjson.dumps(key)


class Table(MutableMapping[str, Any]):
    """One table across this worker's partitions, read and written in the current one."""

    ONE_LOOKUP = True  # a read is one lookup (`streams.gatekeeper.store_reads`): no miss raises

    def __init__(self, name: str, stores: Stores) -> None:
        self.name = name
        self._stores = stores
        self.dbs: dict[int, Any] = {}
        self.batch: dict[int, dict[bytes, bytes | None]] = {}  # the open batch's writes

    @property
    def data(self) -> Table:
        """`streams.gatekeeper.StoreReads` reads a Faust table's store as ``data``: here it is
        the table itself (one lookup a read either way)."""
        return self

    def _raw(self, key: bytes) -> bytes | None:
        p = self._stores.partition
        written = self.batch.get(p)
        if written is not None and key in written:
            return written[key]
        db = self.dbs.get(p)
        return None if db is None else db.get(key)

    def __getitem__(self, key: str) -> Any:
        raw = self._raw(_key(key))
        if raw is None:
            raise KeyError(key)
        return orjson.loads(raw)

    def get(self, key: str, default: Any = None) -> Any:
        raw = self._raw(_key(key))
        return default if raw is None else orjson.loads(raw)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._raw(_key(key)) is not None

    def __setitem__(self, key: str, value: Any) -> None:
        self.batch.setdefault(self._stores.partition, {})[_key(key)] = orjson.dumps(value)

    def __delitem__(self, key: str) -> None:
        self.batch.setdefault(self._stores.partition, {})[_key(key)] = _DELETED

    def pop(self, key: str, default: Any = None) -> Any:
        value = self.get(key, default)
        self.batch.setdefault(self._stores.partition, {})[_key(key)] = _DELETED
        return value

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """Every key of every partition this worker holds (committed state: between batches),
        as a Faust table's ``items`` (not the current partition's alone)."""
        for db in list(self.dbs.values()):
            for raw_key, raw in db.items():
                if raw_key != OFFSET_KEY:
                    yield orjson.loads(raw_key), orjson.loads(raw)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _value in self.items())

    def __len__(self) -> int:
        return sum(1 for _ in self.items())


class Stores:
    """The worker's tables, their databases and the partition being handled."""

    def __init__(self, tables: Iterable[str], tabledir: Path, changelog_topic: Callable[[str], str]) -> None:
        self.tabledir = tabledir
        self.partition = 0
        self.tables = {name: Table(name, self) for name in tables}
        self.topics = {name: changelog_topic(name) for name in self.tables}
        self._options = RocksDBOptions()

    def __getitem__(self, name: str) -> Table:
        return self.tables[name]

    def at(self, partition: int) -> None:
        self.partition = partition

    def open(self, partition: int) -> dict[str, int | None]:
        """Open every table's database of ``partition``: the offset of the last changelog
        record each holds (None: none yet)."""
        out: dict[str, int | None] = {}
        for name, table in self.tables.items():
            db = table.dbs.get(partition)
            if db is None:
                path = db_path(self.tabledir, name, partition)
                path.parent.mkdir(parents=True, exist_ok=True)
                db = table.dbs[partition] = self._options.open(path)
            raw = db.get(OFFSET_KEY)
            out[name] = None if raw is None else int(raw)
        return out

    def close(self, partitions: Iterable[int] | None = None) -> None:
        for table in self.tables.values():
            for p in list(table.dbs) if partitions is None else list(partitions):
                db = table.dbs.pop(p, None)
                if db is not None:
                    db.close()

    def apply(self, name: str, partition: int, records: Iterable[tuple[bytes, bytes | None, int]]) -> None:
        """Changelog records (key, value or None, offset) read back into a database (recovery)."""
        from rocksdict import WriteBatch

        batch, last = WriteBatch(raw_mode=True), None
        for key, value, offset in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
            last = offset
        if last is not None:
            batch.put(OFFSET_KEY, str(last).encode())
            self.tables[name].dbs[partition].write(batch)

    def changelog(self) -> list[tuple[str, int, bytes, bytes | None]]:
        """The open batch's writes as changelog records: (topic, partition, key, value)."""
        return [(self.topics[name], p, key, value)
                for name, table in self.tables.items()
                for p, written in table.batch.items() for key, value in written.items()]

    def persist(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Put the open batch's writes into RocksDB, each partition with the offset of its last
        changelog record (``offsets`` by (topic, partition)), and close the batch."""
        from rocksdict import WriteBatch

        for name, table in self.tables.items():
            for p, written in table.batch.items():
                db = table.dbs.get(p)
                if db is None:  # not open: the partition was never assigned here (cannot happen)
                    raise RuntimeError(f"table {name} partition {p} written but not open")
                batch = WriteBatch(raw_mode=True)
                for key, value in written.items():
                    if value is None:
                        batch.delete(key)
                    else:
                        batch.put(key, value)
                offset = offsets.get((self.topics[name], p))
                if offset is not None:
                    batch.put(OFFSET_KEY, str(offset).encode())
                db.write(batch)
            table.batch.clear()

    def drop(self) -> None:
        for table in self.tables.values():
            table.batch.clear()

    def pending(self) -> int:
        return sum(len(w) for table in self.tables.values() for w in table.batch.values())
