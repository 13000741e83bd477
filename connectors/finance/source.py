"""Finance change capture from the emulator's change feed (FO has no OData delta links).

``GET /data/ChangeFeed?since=<version>&entities=<E>&top=N`` answers
``{"value": [{"version", "entity", "op", "key", "row", "txid", "principal", "ts_ms"}],
"watermark", "@odata.nextLink"?}``; versions are global and strictly increasing and equal the
row's ``RecVersion``; a page never splits a source transaction.

Snapshot: the feed position is captured first (the watermark at the end of the feed), then the
rows are read across companies in RecId order by keyset paging
(``$filter=RecId gt <last>&$orderby=RecId``), which, unlike ``$skip`` paging, cannot skip a row
when another row is deleted meanwhile. Changes after the captured watermark come from the feed.

The column naming a row's company (``source.company``) is declared per table by the map
registry (`CaptureTable.company`); a table without a declaration uses ``dataAreaId``, the
company field of every company-specific Finance entity.

Hostile answers (see `connectors.common.source`): every feed entry and snapshot row goes through
one guard (`isolate`), its version through `capture_version` and its key values must be scalars,
so a bad one is a dead letter and its page goes on (an entry of an entity not asked for is one
too, never an event of another table). A feed answer without a watermark that is a version, a
page that is not JSON and an unreadable ``$metadata`` are `UnreadableAnswer`: the tables that
needed it wait and retry, the others keep their feed. A stored position that is not a version is
`UntrustedPosition` (a fresh snapshot follows); a snapshot ``@odata.nextLink`` outside the
configured API is `ForeignOrigin`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from functools import partial
from typing import Any, NamedTuple
from xml.etree.ElementTree import ParseError

from connectors.common.auth import ApiOrigin
from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import ConnectorError, Rejected
from connectors.common.http import ApiClient, answer_json, rejection
from connectors.common.images import ImageStore
from connectors.common.paging import read_ahead
from connectors.common.source import (
    BadRecord,
    CaptureTable,
    Change,
    Page,
    UnreadableAnswer,
    UntrustedPosition,
    capture_version,
    iso_ms,
    isolate,
    row_image,
)
from connectors.finance.client import FinanceConnection, key_string, parse_metadata_keys
from topics import MAX_VERSION, ChangeEvent, Op, Source, System, TransactionBlock

__all__ = ["FinanceReader", "feed_entry_change", "snapshot_row_change", "snapshot_rows"]

log = logging.getLogger(__name__)
_OPS: dict[str, Op] = {"c": "c", "u": "u", "d": "d", "insert": "c", "update": "u", "delete": "d"}
_MAX_TS_MS = 2**63 - 1
COMPANY_FIELD = "dataAreaId"  # an undeclared table's company field


def _scalar_key(key: dict[str, Any]) -> bool:
    """Key values a record id and an OData key can be built from (no objects, lists or nulls)."""
    return all(isinstance(v, str | int | float) for v in key.values())


def _version(raw: Any, value: Any, what: str, name: str) -> str | BadRecord:
    """The row's version as the envelope carries it, or the row as a `BadRecord` saying why."""
    if value is None:
        return BadRecord.of(raw, f"{what} without an integer {name}")
    try:
        return capture_version(value)
    except ValueError as exc:
        return BadRecord.of(raw, f"{what} without a usable {name}: {exc}", "BadVersion")


def feed_entry_change(entry: Any, key_fields: tuple[str, ...] | None, captured_ms: int,
                      before: dict[str, Any] | None = None,
                      company: str | None = COMPANY_FIELD) -> Change | BadRecord:
    """One change-feed entry as a change, or a BadRecord naming what is wrong with it."""
    if not isinstance(entry, dict):
        return BadRecord.of(entry, "feed entry is not an object")
    version, key, row = entry.get("version"), entry.get("key"), entry.get("row")
    op = _OPS.get(str(entry.get("op")))
    table = str(entry.get("entity") or "")
    if not table or op is None or not isinstance(key, dict) or not key or not _scalar_key(key):
        return BadRecord.of(entry, f"feed entry without entity/op/key: {str(entry)[:200]}")
    version = _version(entry, version, f"{table}: feed entry", "version")
    if isinstance(version, BadRecord):
        return version
    if op != "d" and not isinstance(row, dict):
        return BadRecord.of(entry, f"{table}: {op} entry without a row image")
    order = key_fields if key_fields and all(k in key for k in key_fields) else tuple(key)
    ts = entry.get("ts_ms")
    source = Source(system="finance", table=table, version=version,
                    ts_ms=ts if isinstance(ts, int) and 0 <= ts <= _MAX_TS_MS else captured_ms, snapshot="false",
                    company=_company(key, row, company),
                    txid=str(entry["txid"]) if entry.get("txid") else None,
                    origin=str(entry["principal"]) if entry.get("principal") else None)
    if op == "d":
        event = ChangeEvent(before=before or dict(key), after=None, op="d", ts_ms=captured_ms, source=source)
    else:
        assert isinstance(row, dict)
        event = ChangeEvent(before=before if op == "u" else None, after=row_image(row), op=op,
                            ts_ms=captured_ms, source=source)
    return Change(key_string(key, order), event)


class _At(NamedTuple):
    """Where a snapshot answer is read: a keyset page (``params``) or a link to follow."""

    url: str
    params: dict[str, str] | None
    may_fall_back: bool = False  # the snapshot's first request: keyset refused -> links


def _company(key: dict[str, Any], row: Any, field: str | None) -> str | None:
    """The row's company code from its key, else its image (None when not declared or empty)."""
    if not field:
        return None
    value = key.get(field) or (row.get(field) if isinstance(row, dict) else None)
    return str(value) if value else None


_PLAIN_KEY = (str, int, float)  # exactly these types: anything else takes the checked path


def snapshot_row_change(table: str, row: Any, key_fields: tuple[str, ...],
                        captured_ms: int, company: str | None = COMPANY_FIELD) -> Change | BadRecord:
    """One snapshot row as an ``op: "r"`` change, or a BadRecord naming what is wrong with it.

    The common row (an integer RecVersion in range, every key field a non-empty string or a
    number) is recognised by a few type tests and built at once; any other goes through
    `_checked_row_change`, which names the fault or accepts it (a version given as text)."""
    if type(row) is dict and key_fields:
        version = row.get("RecVersion")
        if type(version) is int and 0 <= version <= MAX_VERSION:
            for name in key_fields:
                value = row.get(name)
                if value.__class__ not in _PLAIN_KEY or value == "":
                    break
            else:
                return _read_change(table, row, key_fields, str(version), captured_ms, company)
    return _checked_row_change(table, row, key_fields, captured_ms, company)


def snapshot_rows(table: str, rows: list[Any], key_fields: tuple[str, ...], captured_ms: int,
                  company: str | None = COMPANY_FIELD) -> list[Change | BadRecord]:
    """`snapshot_row_change` of every row of a page, each isolated (`isolate`: a row that fails
    in any way is a BadRecord, its page goes on) without a guard object per row."""
    out: list[Change | BadRecord] = []
    for row in rows:
        try:
            out.append(snapshot_row_change(table, row, key_fields, captured_ms, company))
        except Exception:  # the row's fault: described again through the common guard
            out.append(isolate(row, table, partial(snapshot_row_change, table, row, key_fields,
                                                   captured_ms, company)))
    return out


def _read_change(table: str, row: dict[str, Any], key_fields: tuple[str, ...], version: str,
                 captured_ms: int, company: str | None) -> Change:
    image = row_image(row)
    # Every part is checked (the version as capture_version does, the times are not negative):
    # the change is built from them without validating them again, a snapshot's largest cost per row.
    return Change.read(key_string(image, key_fields), "finance", table, version,
                       iso_ms(image.get("ModifiedDateTime")) or captured_ms, _company({}, image, company),
                       captured_ms, image)


def _checked_row_change(table: str, row: Any, key_fields: tuple[str, ...], captured_ms: int,
                        company: str | None) -> Change | BadRecord:
    if not isinstance(row, dict):
        return BadRecord.of(row, f"{table}: row is not an object")
    missing = [k for k in key_fields if row.get(k) in (None, "")]
    version = row.get("RecVersion")
    if missing or not key_fields:
        return BadRecord.of(row, f"{table}: row without key field(s) {missing or 'unknown'}")
    if not _scalar_key({k: row[k] for k in key_fields}):
        return BadRecord.of(row, f"{table}: key field(s) {list(key_fields)} hold an object or a list")
    version = _version(row, version, f"{table}: row", "RecVersion")
    if isinstance(version, BadRecord):
        return version
    return _read_change(table, row, key_fields, version, captured_ms, company)


def _number_transactions(items: dict[str, list[Change | BadRecord]],
                         shapes: Mapping[int, tuple[int, int]] | None = None) -> None:
    """Give every change its Debezium transaction block.

    ``shapes`` (feed version -> the entry's position in its transaction and the transaction's
    entries in the captured tables, from the feed's ``txorder``/``txentries``) count the
    transaction as a whole, so the processor waits for every captured event of it even when the
    tables' pollers read them in different pages: a vendor invoice's header and lines are one
    change set. Without a shape (an older feed), the count is the transaction's events in this
    page, which the feed never splits."""
    shapes = shapes or {}
    members: dict[str, list[tuple[str, int]]] = {}
    for table, changes in items.items():
        for index, item in enumerate(changes):
            if isinstance(item, Change) and item.event.source.txid:
                members.setdefault(item.event.source.txid, []).append((table, index))
    for txid, where in members.items():
        where.sort(key=lambda ti: items[ti[0]][ti[1]].event.source.version_int)  # type: ignore[union-attr]
        per_table: dict[str, int] = {}
        for order, (table, index) in enumerate(where, start=1):
            change = items[table][index]
            assert isinstance(change, Change)
            per_table[table] = per_table.get(table, 0) + 1
            position, count = shapes.get(change.event.source.version_int, (order, len(where)))
            block = TransactionBlock(id=txid, total_order=position, data_collection_order=per_table[table],
                                     event_count=max(count, len(where)))
            items[table][index] = Change(change.key, change.event.model_copy(update={"transaction": block}))


def _shape(entry: dict[str, Any], captured: tuple[str, ...]) -> tuple[int, int] | None:
    """The entry's (position in its transaction, the transaction's entries in ``captured``)."""
    order, counts = entry.get("txorder"), entry.get("txentries")
    if type(order) is not int or order < 1 or not isinstance(counts, dict) or not captured:
        return None
    wanted = {t.lower() for t in captured}
    count = sum(n for t, n in counts.items() if type(n) is int and n > 0 and str(t).lower() in wanted)
    return (order, count) if count >= 1 else None


def _transaction_tables(entry: dict[str, Any], captured: Mapping[str, str]) -> set[str]:
    """The captured tables (``captured``: by lower-case name) holding entries of this entry's
    transaction (``txentries``)."""
    counts = entry.get("txentries")
    if not isinstance(counts, dict):
        return set()
    return {captured[str(t).lower()] for t, n in counts.items()
            if type(n) is int and n > 0 and str(t).lower() in captured}


def _resume_cursor(cursor: str) -> tuple[int, int]:
    """The captured position and last RecId of a snapshot cursor; `UntrustedPosition` when it
    is not two versions (anyone who can write a checkpoint can write one)."""
    position, _, recid = cursor.partition(":")
    try:
        return int(capture_version(position)), int(capture_version(recid))
    except ValueError as exc:
        raise UntrustedPosition(f"snapshot cursor {cursor[:100]!r} is not <version>:<RecId>: {exc}") from None


class FinanceReader:
    """`ChangeReader` for Finance public collections."""

    system: System = "finance"

    def __init__(self, conn: FinanceConnection, api: ApiClient, clock: Clock | None = None,
                 coalesce_s: float = 0.05, declared: Mapping[str, CaptureTable] | None = None,
                 images: ImageStore | None = None, captured: tuple[str, ...] = ()) -> None:
        """``declared``: the captured collections' company field, by collection; ``images``:
        the before images (in memory when not given); ``captured``: every collection this
        source captures (a transaction counts its events in those)."""
        self.conn = conn
        self.captured = captured
        self.declared = dict(declared or {})
        self.api = api
        self.origin = ApiOrigin.of(api.http.base_url)
        self.clock = clock or SystemClock()
        self._keys: dict[str, tuple[str, ...]] = dict(conn.keys)
        self._metadata_loaded = False
        self.images = images or ImageStore()
        self.coalesce_s = coalesce_s
        self._waiting: dict[str, tuple[int, asyncio.Future[Page]]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        await self.api.aclose()

    async def key_fields(self, table: str) -> tuple[str, ...]:
        if table not in self._keys and not self._metadata_loaded:
            response = await self.api.request("GET", "$metadata", headers={"Accept": "application/xml"})
            if response.status_code != 200:
                raise rejection(response, "GET $metadata")
            try:
                declared = parse_metadata_keys(response.content)
            except (ParseError, ValueError, RecursionError) as exc:
                raise UnreadableAnswer(f"GET $metadata: not a CSDL document ({exc})"[:300]) from None
            if not declared:
                raise UnreadableAnswer("GET $metadata: the document declares no entity set with a key")
            self._keys = {**declared, **self.conn.keys}
            self._metadata_loaded = True
        return self._keys.get(table, ())

    def company_field(self, table: str) -> str | None:
        declared = self.declared.get(table)
        return declared.company if declared is not None else COMPANY_FIELD

    def _now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    async def _get_json(self, url: str, params: dict[str, str], what: str) -> dict[str, Any]:
        response = await self.api.request("GET", url, params=params)
        if response.status_code != 200:
            raise rejection(response, what)
        try:
            body = answer_json(response)
        except (ValueError, RecursionError):
            # A 200 that is not JSON is a glitch of the service or a proxy, not our data.
            kind = response.headers.get("content-type", "?")[:80]
            raise UnreadableAnswer(f"{what}: answer is not JSON ({kind}, {len(response.content)} bytes)") from None
        if not isinstance(body, dict):
            raise UnreadableAnswer(f"{what}: answer is not a JSON object")
        return body

    @staticmethod
    def _watermark(body: dict[str, Any], what: str) -> int:
        """The feed's position in an answer; a missing or non-version one is the answer's fault
        (moving to it could skip changes, staying put would re-read the page for ever)."""
        try:
            return int(capture_version(body.get("watermark")))
        except ValueError as exc:
            raise UnreadableAnswer(f"{what}: watermark is not a version ({exc})"[:300]) from None

    async def _feed(self, table: str, since: int) -> dict[str, Any]:
        return await self._get_json("ChangeFeed", {"since": str(since), "entities": table,
                                                   "top": str(self.conn.page_size)}, f"ChangeFeed {table}")

    async def current_position(self, table: str) -> int:
        """The feed's end now: ``top=0`` answers only the watermark, reading no history."""
        what = f"ChangeFeed {table} position"
        return self._watermark(await self._get_json("ChangeFeed", {"since": "0", "entities": table, "top": "0"},
                                                    what), what)

    async def snapshot(self, table: str, resume: str = "") -> AsyncIterator[Page]:
        """Keyset pages; a page's `Page.resume` is ``<captured position>:<its last RecId>``, so
        a resumed snapshot keeps the position captured before its first row (nextLink paging,
        the fallback, cannot be resumed).

        The answers are read ahead (`read_ahead`): each next request is on the wire before the
        rows already read are turned into changes and handed over, so the service is never
        idle waiting for us, nor we for it."""
        if resume:
            position, last_recid = _resume_cursor(resume)
            keys = await self.key_fields(table)
        else:  # the position and the key fields asked together
            (position, keys), last_recid = await asyncio.gather(self.current_position(table),
                                                                self.key_fields(table)), None
        company = self.company_field(table)
        size = self.conn.page_size
        keyset_params = {"cross-company": "true", "$orderby": "RecId", "$top": str(size)}
        params: dict[str, str] | None = keyset_params if last_recid is None else \
            {**keyset_params, "$filter": f"RecId gt {last_recid}"}

        async def answer(at: _At) -> tuple[tuple[list[Any], Page], _At | None]:
            """One answer's rows with its page (no items yet), and where the next one is (the
            last one carries the captured position)."""
            body, rows, keyset = await self._snapshot_page(table, at.url, at.params, at.may_fall_back)
            recids = [r["RecId"] for r in rows if isinstance(r, dict) and isinstance(r.get("RecId"), int)]
            next_link = body.get("@odata.nextLink") if not keyset else None
            if keyset and at.params is not None and len(rows) >= size and recids:
                last = max(recids)
                return (rows, Page([], "", True, resume=f"{position}:{last}")), \
                    _At(table, {**keyset_params, "$filter": f"RecId gt {last}"})
            if next_link:
                url = self.origin.check_link(str(next_link), f"GET {table}: @odata.nextLink")
                return (rows, Page([], "", True)), _At(url, None)
            return (rows, Page([], str(position), False)), None

        async with aclosing(read_ahead(answer, _At(table, params, may_fall_back=last_recid is None))) as answers:
            async for rows, page in answers:  # closed with this generator: no request after it
                page.items = snapshot_rows(table, rows, keys, self._now_ms(), company)
                self.images.remember(table, page.items)
                yield page

    async def _snapshot_page(self, table: str, url: str, params: dict[str, str] | None,
                             may_fall_back: bool) -> tuple[dict[str, Any], list[Any], bool]:
        """One snapshot answer: its body, its rows, and whether it was read by keyset paging
        (``params``) or by following links. ``may_fall_back``: the first request of a
        snapshot, which falls back to server-driven paging when the service refuses it."""
        response = await self.api.request("GET", url, params=params)
        keyset = params is not None
        if response.status_code == 400 and keyset and may_fall_back:
            # A service that cannot filter/order on RecId (real public entities may not
            # expose it): fall back to server-driven paging through @odata.nextLink.
            log.warning("%s: keyset paging on RecId refused; following nextLinks", table)
            response = await self.api.request("GET", url, params={"cross-company": "true"})
            keyset = False
        if response.status_code != 200:
            raise rejection(response, f"GET {table}")
        try:
            body = answer_json(response)
        except (ValueError, RecursionError):
            body = None
        rows = body.get("value") if isinstance(body, dict) else None
        if not isinstance(body, dict) or not isinstance(rows, list):
            # Never end a snapshot on a page we could not read: that would be a gap.
            raise UnreadableAnswer(f"GET {table}: answer is not a JSON object with a 'value' array")
        return body, rows, keyset

    async def changes(self, table: str, position: str) -> Page:
        """Changes of ``table`` after ``position``.

        Tables polled at about the same time share ONE feed request
        (``since=<lowest position>&entities=A,B,...``), so a source capturing 21 entities costs
        one request per poll instead of 21 against the service protection budget.
        """
        try:
            since = int(capture_version(position))
        except ValueError as exc:
            raise UntrustedPosition(f"{table}: stored feed position is not a version ({exc})"[:300]) from None
        future: asyncio.Future[Page] = asyncio.get_running_loop().create_future()
        self._waiting[table] = (since, future)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(self.coalesce_s)  # let the other tables' pollers join this request
        waiting, self._waiting = self._waiting, {}
        results: dict[str, Page | Exception]
        try:
            results = await self._read_feed({t: p for t, (p, _) in waiting.items()})
        except Exception as exc:
            results = {t: exc for t in waiting}
            if len(waiting) > 1 and isinstance(exc, Rejected):
                # One bad entity name must not starve the others: ask per table instead.
                for t, (p, _) in waiting.items():
                    try:
                        results[t] = (await self._read_feed({t: p}))[t]
                    except Exception as single:
                        results[t] = single
        for t, (_, f) in waiting.items():  # every waiter gets its answer, whatever happened
            if f.done():
                continue  # its poller was cancelled (stopping)
            outcome = results[t]
            if isinstance(outcome, Exception):
                f.set_exception(outcome)
            else:
                f.set_result(outcome)

    async def _keys_of(self, tables: set[str]) -> dict[str, tuple[str, ...] | ConnectorError]:
        """Key fields of the tables present in a feed page, or the error that hid them (an
        unreadable ``$metadata``, asked once per page): only those tables wait and retry."""
        out: dict[str, tuple[str, ...] | ConnectorError] = {}
        failure: ConnectorError | None = None
        for table in sorted(tables):
            if failure is not None and table not in self._keys:
                out[table] = failure
                continue
            try:
                out[table] = await self.key_fields(table)
            except ConnectorError as exc:
                out[table] = failure = exc
        return out

    def _feed_change(self, table: str, entry: dict[str, Any], keys: tuple[str, ...]) -> Change | BadRecord:
        key = entry.get("key")
        before = None
        if isinstance(key, dict) and key:
            order = keys if keys and all(k in key for k in keys) else None
            before = self.images.get(table, key_string(key, order))
        return feed_entry_change(entry, keys, self._now_ms(), before, self.company_field(table))

    async def _read_feed(self, positions: dict[str, int]) -> dict[str, Page | Exception]:
        since = min(positions.values())
        tables = sorted(positions)
        body = await self._get_json("ChangeFeed", {"since": str(since), "entities": ",".join(tables),
                                                   "top": str(self.conn.page_size)}, "ChangeFeed")
        entries = body.get("value")
        end = self._watermark(body, "ChangeFeed")
        more = bool(body.get("@odata.nextLink"))
        if not isinstance(entries, list):
            raise UnreadableAnswer("ChangeFeed answered without a 'value' array")
        by_name = {t.lower(): t for t in tables}
        items: dict[str, list[Change | BadRecord]] = {t: [] for t in tables}
        entity_of = [by_name.get(str(e.get("entity", "")).lower()) if isinstance(e, dict) else None
                     for e in entries]
        keys = await self._keys_of({t for t in entity_of if t is not None})
        shapes: dict[int, tuple[int, int]] = {}
        related: set[str] = set()
        captured = {t.lower(): t for t in self.captured}
        for entry, table in zip(entries, entity_of, strict=True):
            if table is None:
                # Not an entity we asked for: never an event on another table's topic.
                items[tables[0]].append(BadRecord.of(
                    entry, f"ChangeFeed entry of an entity not asked for ({', '.join(tables)})"[:500]))
                continue
            version = entry.get("version")
            if type(version) is int and 0 <= version <= positions[table]:
                continue  # this table had already got past it (it polled from further on)
            table_keys = keys[table]
            if isinstance(table_keys, ConnectorError):
                continue  # the whole page is this table's error below: it reads it again later
            item = isolate(entry, table, partial(self._feed_change, table, entry, table_keys))
            items[table].append(item)
            self.images.remember(table, [item])  # a page may hold a create and its delete
            shape = _shape(entry, self.captured)
            if shape is not None and type(version) is int:
                shapes[version] = shape
            related |= _transaction_tables(entry, captured)
        _number_transactions(items, shapes)
        # Every entry of every asked table up to `end` is in this page, so each table may
        # move to `end` (never back: a table may have started past it).
        out: dict[str, Page | Exception] = {}
        for t in tables:
            failed = keys.get(t)
            out[t] = failed if isinstance(failed, ConnectorError) else \
                Page(items[t], str(max(end, positions[t])), more, related=frozenset(related - set(tables)))
        return out

