"""The change feed: the emulator's documented stand-in for FO change tracking.

Real Finance has no OData delta links. Its change capture is row-version change tracking
(10.0.34+, used by Dataverse virtual tables), DMF incremental export and business events, none
of which a plain OData client can poll. The emulator therefore exposes one extra, clearly
non-FO resource that a Finance source connector reads instead:

    GET /data/ChangeFeed?since=<version>&entities=ProjectsV2,CustomersV3&top=<n>
    Authorization: Bearer ...

    200 {"value": [{"version": 42, "entity": "ProjectsV2", "op": "c" | "u" | "d",
                    "key": {"dataAreaId": "usmf", "ProjectId": "P-1"},
                    "row": {...full row image at that change...} | null (delete),
                    "txid": "9f0c...", "principal": "dualwrite-sink" | "batch:<principal>",
                    "ts_ms": 1764063000123,
                    "txorder": 2, "txentries": {"ProjectVendorInvoices": 1, ...}}, ...],
         "watermark": <highest version returned, or since>,
         "@odata.nextLink": ".../data/ChangeFeed?since=<watermark>&..."   (only if more)}

- ``version`` is global across entities and strictly increasing, also across restarts (SQLite
  AUTOINCREMENT on the common change log); it equals the row's ``RecVersion`` after the change.
- Every create/update/delete appends exactly one entry, in the same SQLite transaction as the
  change itself; one HTTP request, one ``$batch`` change set or one business action = one txid.
- A page does not split a transaction: when ``top`` falls inside a txid, the rest of that txid
  is added (up to 10,000 entries in all), so a consumer can release source transactions whole.
- A consumer that asks for some entities at a time (a source pacing its tables) still sees a
  transaction's shape: ``txentries`` counts the transaction's entries per entity, of every
  entity, and ``txorder`` is the entry's position in it (1-based, in version order). A source
  sums the counts of the entities it captures, so it knows how many events to wait for even when
  they arrive in different pages (a vendor invoice's header and lines; like Dataverse's
  ``@dualwrite.txrows``).
- ``top`` defaults to 1,000 and is capped at 10,000 (FO's maximum page size). ``top=0`` returns
  no entries and the end of the feed as ``watermark`` (the highest version of the requested
  entities), so a snapshot-then-stream reader can take its position in one call. ``entities`` is
  optional (all entities); names are public collection names, case-insensitive.
- While the ``feed_paused`` fault is set the feed answers an empty page with the watermark
  unchanged (``since``), like a change-tracking backlog that is not yet visible.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace

__all__ = ["DEFAULT_TOP", "MAX_TOP", "FeedEntry", "FeedPage", "end_of_feed", "read_feed"]

DEFAULT_TOP = 1000
MAX_TOP = 10_000


@dataclass(frozen=True)
class FeedEntry:
    version: int
    entity: str
    op: str
    key: dict[str, object]
    row: dict[str, object] | None
    txid: str
    principal: str
    ts_ms: int
    txorder: int = 1
    txentries: dict[str, int] | None = None

    def as_json(self) -> dict[str, object]:
        return {"version": self.version, "entity": self.entity, "op": self.op, "key": self.key,
                "row": self.row, "txid": self.txid, "principal": self.principal,
                "ts_ms": self.ts_ms, "txorder": self.txorder, "txentries": self.txentries or {}}


@dataclass(frozen=True)
class FeedPage:
    entries: list[FeedEntry]
    watermark: int
    more: bool


_SELECT = ("SELECT c.version, c.tbl, c.op, i.key_json, i.row_json, c.txid, c.principal, "
           "i.ts_ms FROM _changes c JOIN fo_ChangeImages i ON i.version = c.version ")


def _entry(r: tuple[object, ...]) -> FeedEntry:
    version, tbl, op, key, row, txid, principal, ts_ms = r
    return FeedEntry(int(str(version)), str(tbl), str(op), json.loads(str(key)),
                     None if row is None else json.loads(str(row)), str(txid), str(principal),
                     int(str(ts_ms)))


def read_feed(conn: sqlite3.Connection, since: int, entities: list[str] | None = None,
              top: int = DEFAULT_TOP) -> FeedPage:
    """Entries with ``version > since`` (optionally of some entities), oldest first."""
    where = "WHERE c.version > ?"
    params: list[object] = [since]
    if entities:
        where += f" AND c.tbl IN ({', '.join('?' for _ in entities)})"
        params += entities
    rows = conn.execute(f"{_SELECT}{where} ORDER BY c.version LIMIT ?",
                        [*params, top + 1]).fetchall()
    more = len(rows) > top
    entries = [_entry(tuple(r)) for r in rows[:top]]
    if more and entries:
        # Complete the last transaction so a page never holds half of one.
        last = entries[-1]
        tail = conn.execute(f"{_SELECT}{where} AND c.version > ? AND c.txid = ? "
                            "ORDER BY c.version LIMIT ?",
                            [*params, last.version, last.txid, MAX_TOP - top]).fetchall()
        entries += [_entry(tuple(r)) for r in tail]
        following = conn.execute(f"SELECT 1 FROM _changes c {where} AND c.version > ? LIMIT 1",
                                 [*params, entries[-1].version]).fetchone()
        more = following is not None
    watermark = entries[-1].version if entries else since
    return FeedPage(_with_shapes(conn, entries), watermark, more)


def _with_shapes(conn: sqlite3.Connection, entries: list[FeedEntry]) -> list[FeedEntry]:
    """Each entry with its transaction's shape (``txorder``, ``txentries``), one query per txid."""
    counts: dict[str, dict[str, int]] = {}
    order: dict[int, int] = {}
    for txid in dict.fromkeys(e.txid for e in entries):
        per_entity = counts[txid] = {}
        rows = conn.execute("SELECT version, tbl FROM _changes WHERE txid = ? ORDER BY version", (txid,))
        for position, (version, tbl) in enumerate(rows, start=1):
            per_entity[str(tbl)] = per_entity.get(str(tbl), 0) + 1
            order[int(version)] = position
    return [replace(e, txorder=order.get(e.version, 1), txentries=counts[e.txid]) for e in entries]


def end_of_feed(conn: sqlite3.Connection, since: int, entities: list[str] | None = None) -> int:
    """The highest version of ``entities`` (all when None), or ``since`` if that is higher."""
    sql = "SELECT COALESCE(MAX(version), 0) FROM _changes"
    params: list[object] = []
    if entities:
        sql += f" WHERE tbl IN ({', '.join('?' for _ in entities)})"
        params = list(entities)
    return max(since, int(conn.execute(sql, params).fetchone()[0]))
