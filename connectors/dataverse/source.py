"""Dataverse change capture: ``Prefer: odata.track-changes`` and delta links.

- Snapshot: ``GET <set>`` with ``Prefer: odata.track-changes, odata.maxpagesize=N``; pages
  follow ``@odata.nextLink``; the last page carries ``@odata.deltaLink``, whose token the server
  fixed when the first page was served, i.e. before the rows were read.
- Changes: ``GET <deltaLink>``: new/updated rows, then deleted rows as
  ``{"@odata.context": ".../$deletedEntity", "id": ..., "reason": "deleted"}``, and a new delta
  link (or a ``nextLink`` inside a large window, which we checkpoint as well).
- An expired/invalid token is HTTP 400 with code ``0x80044352`` ("ExpiredVersionStamp"):
  `PositionExpired`, and the engine takes a new snapshot.
- Emulator annotations (not in real Dataverse): ``@dualwrite.txid``, ``@dualwrite.principal``,
  ``@dualwrite.version`` and ``@dualwrite.op``. Without them, txid/origin stay null, a delete's
  version is the delta token's version, and created/updated is told by createdon == modifiedon.
  On delta pages, ``@dualwrite.txrows`` / ``txorder`` / ``txtableorder`` give the transaction
  block: ``event_count`` is the rows the transaction touched in the tables this source captures
  (each is one event, whichever delta window it lands in), so the processor can release the
  transaction whole. A row changed again by a later transaction before it is read shows that
  later one; the first then never completes and the processor releases it on its time-out.
- What each table's rows are keyed by and which column names their company comes from the
  map registry (`CaptureTable`: ``primary_key``, ``company`` code column or ``company_lookup``
  GUID column), so nothing is guessed for a table the pipeline captures. A reader given no
  declaration for a table (library use) falls back to Dataverse's naming convention
  (``<singular>id``) and the common company lookups.
- Hostile answers (see `connectors.common.source`): every row goes through one guard (`isolate`)
  and its version through `capture_version`, so a bad row is a dead letter and its page goes on;
  a page that is not a JSON object with a ``value`` array is `UnreadableAnswer`; a next or delta
  link outside the configured API (scheme, host, port, path) is `ForeignOrigin` for that page,
  and a stored delta link outside it is `UntrustedPosition` (a fresh snapshot follows).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from functools import partial
from typing import Any

from connectors.common.auth import ApiOrigin, ForeignOrigin
from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import PositionExpired, Rejected
from connectors.common.http import ApiClient, answer_json, error_message, rejection
from connectors.common.images import BeforeImages, ImageStore
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
from connectors.dataverse.client import DataverseConnection, primary_key
from topics import ChangeEvent, Op, Source, System, TransactionBlock

__all__ = ["DataverseReader", "parse_delta_page", "row_change"]

EXPIRED_CODES = ("0x80044352", "ExpiredVersionStamp")
_TOKEN_VERSION = re.compile(r"\$deltatoken=([0-9]+)")  # ASCII only: \d takes any script's digits
LINKS = ("@odata.nextLink", "@odata.deltaLink")
# Without a declaration: lookup columns naming a row's legal entity (cdm_company) in the Web
# API's _x_value form.
COMPANY_LOOKUPS = ("_msdyn_owningcompany_value", "_msdyn_company_value")


def token_version(link: str) -> int | None:
    match = _TOKEN_VERSION.search(link)
    return int(match.group(1)) if match else None


def transaction_block(row: dict[str, Any], captured: tuple[str, ...] | None) -> TransactionBlock | None:
    """The row's transaction block from the emulator's annotations; None when they are absent."""
    txid, rows = row.get("@dualwrite.txid"), row.get("@dualwrite.txrows")
    order, in_table = row.get("@dualwrite.txorder"), row.get("@dualwrite.txtableorder")
    if not txid or not isinstance(rows, dict) or not isinstance(order, int) or not isinstance(in_table, int) \
            or order < 1 or in_table < 1:
        return None
    count = sum(n for t, n in rows.items() if isinstance(n, int) and (captured is None or t in captured))
    return TransactionBlock(id=str(txid), total_order=order, data_collection_order=in_table,
                            event_count=max(count, 1))


def is_deleted(row: dict[str, Any]) -> bool:
    """A ``$deletedEntity`` entry of a delta page (its id is in ``id``)."""
    return "$deletedEntity" in str(row.get("@odata.context", "")) or row.get("reason") == "deleted"


def row_id(row: dict[str, Any], pk: str) -> Any:
    return row.get("id") if is_deleted(row) else row.get(pk)


def row_change(table: str, pk: str, row: dict[str, Any], *, snapshot: bool, captured_ms: int,
               company_field: str | None = None, before: dict[str, Any] | None = None,
               fallback_version: int | None = None,
               captured: tuple[str, ...] | None = None) -> Change | BadRecord:
    """One Web API row (or $deletedEntity) as a change, or a BadRecord saying what is missing."""
    deleted = is_deleted(row)
    record_id = row_id(row, pk)
    version = row.get("@dualwrite.version", row.get("versionnumber"))
    if deleted and version is None:
        version = fallback_version
    if not record_id or not isinstance(record_id, str | int) or isinstance(record_id, bool):
        return BadRecord.of(row, f"{table}: row without primary key '{pk}'")
    if version is None:
        return BadRecord.of(row, f"{table}({record_id}): row without a usable versionnumber")
    try:
        version = capture_version(version)
    except ValueError as exc:
        return BadRecord.of(row, f"{table}({record_id}): row without a usable versionnumber: {exc}",
                            "BadVersion")
    image = row_image(row)
    op: Op
    if snapshot:
        op = "r"
    elif deleted:
        op = "d"
    else:
        hinted = row.get("@dualwrite.op")
        if hinted in ("c", "u"):
            op = hinted
        else:
            op = "c" if image.get("createdon") and image.get("createdon") == image.get("modifiedon") else "u"
    company = (image.get(company_field) or (before or {}).get(company_field)) if company_field else None
    if snapshot and not row.get("@dualwrite.txid") and not row.get("@dualwrite.principal"):
        # Every part is checked (the version by capture_version, the time not negative): the
        # change is built from them without validating them again, a snapshot's largest cost.
        return Change.read(str(record_id), "dataverse", table, version, iso_ms(image.get("modifiedon")) or captured_ms,
                           str(company) if company else None, captured_ms, image)
    source = Source(system="dataverse", table=table, version=str(version),
                    ts_ms=iso_ms(image.get("modifiedon")) or captured_ms,
                    snapshot="true" if snapshot else "false",
                    company=str(company) if company else None,
                    txid=str(row["@dualwrite.txid"]) if row.get("@dualwrite.txid") else None,
                    origin=str(row["@dualwrite.principal"]) if row.get("@dualwrite.principal") else None)
    transaction = None if snapshot else transaction_block(row, captured)
    if op == "d":
        event = ChangeEvent(before=before or {pk: str(record_id)}, after=None, op="d",
                            ts_ms=captured_ms, source=source, transaction=transaction)
    else:
        event = ChangeEvent(before=before if op == "u" else None, after=image, op=op, ts_ms=captured_ms,
                            source=source, transaction=transaction)
    return Change(str(record_id), event)


def parse_delta_page(table: str, pk: str, body: dict[str, Any], *, snapshot: bool, captured_ms: int,
                     images: BeforeImages | None = None,
                     company_field: str | None = None,
                     captured: tuple[str, ...] | None = None) -> Page:
    """A collection/delta response body as a Page (position = next link or delta link)."""
    values = body.get("value")
    if not isinstance(values, list):
        return Page([BadRecord.of(body, f"{table}: response without a 'value' array")], "", False)
    next_link = body.get("@odata.nextLink")
    delta_link = body.get("@odata.deltaLink")
    position = str(next_link or delta_link or "")
    token_v = token_version(str(delta_link)) if delta_link else None
    items: list[Change | BadRecord] = []
    related: set[str] = set()
    for row in values:
        if not isinstance(row, dict):
            items.append(BadRecord.of(row, f"{table}: row is not an object"))
            continue
        related |= transaction_tables(row, captured)
        record_id = row_id(row, pk)
        before = images.get(str(record_id)) if images is not None and record_id is not None else None
        items.append(isolate(row, table, partial(
            row_change, table, pk, row, snapshot=snapshot, captured_ms=captured_ms,
            company_field=company_field, before=before, fallback_version=token_v, captured=captured)))
    return Page(items, position, bool(next_link), related=frozenset(related - {table}))


def transaction_tables(row: dict[str, Any], captured: tuple[str, ...] | None) -> set[str]:
    """The captured tables holding rows of this row's transaction (``@dualwrite.txrows``)."""
    rows = row.get("@dualwrite.txrows")
    if not isinstance(rows, dict):
        return set()
    return {t for t, n in rows.items() if isinstance(t, str) and type(n) is int and n > 0
            and (captured is None or t in captured)}


class DataverseReader:
    """`ChangeReader` for Dataverse entity sets."""

    system: System = "dataverse"

    def __init__(self, conn: DataverseConnection, api: ApiClient, clock: Clock | None = None,
                 company_fields: dict[str, str] | None = None,
                 captured: tuple[str, ...] | None = None,
                 declared: Mapping[str, CaptureTable] | None = None, images: ImageStore | None = None) -> None:
        """``captured``: the entity sets this source reads (counts a transaction's events);
        ``declared``: their primary key and company column, by entity set; ``images``: the
        before images (in memory when not given)."""
        self.conn = conn
        self.captured = captured
        self.declared = dict(declared or {})
        self.api = api
        self.origin = ApiOrigin.of(api.http.base_url)
        self.clock = clock or SystemClock()
        self.company_fields = {"cdm_companies": "cdm_companycode", **(company_fields or {})}
        self.images = images or ImageStore()
        self._companies: dict[str, str] = {}
        self._companies_read_at = 0.0

    async def aclose(self) -> None:
        await self.api.aclose()

    def _prefer(self, tracking: bool) -> dict[str, str]:
        prefer = f"odata.maxpagesize={self.conn.page_size}"
        return {"Prefer": f"odata.track-changes, {prefer}" if tracking else prefer}

    async def _get(self, table: str, url: str, tracking: bool) -> dict[str, Any]:
        response = await self.api.request("GET", url, headers=self._prefer(tracking))
        if response.status_code == 400 and any(c in error_message(response) for c in EXPIRED_CODES):
            raise PositionExpired(f"{table}: {error_message(response)}")
        if response.status_code != 200:
            raise rejection(response, f"GET {table}")
        try:
            body = answer_json(response)
        except (ValueError, RecursionError):  # HTML, truncated JSON, bad UTF-8, absurd nesting
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            # A page we cannot read is the service's glitch, not a row to dead-letter; and a
            # snapshot must never end on it.
            kind = response.headers.get("content-type", "?")[:80]
            raise UnreadableAnswer(f"GET {table}: answer is not a JSON object with a 'value' array "
                                   f"({kind}, {len(response.content)} bytes)")
        for name in LINKS:  # the page is followed or checkpointed only with links of our API
            if name in body:
                self.origin.check_link(str(body[name]), f"GET {table}: {name}")
        return body

    def primary_key(self, table: str) -> str:
        """The declared primary id column (the naming convention only for an undeclared table)."""
        declared = self.declared.get(table)
        if declared is not None and declared.primary_key:
            return declared.primary_key
        return primary_key(table, self.conn.primary_keys)

    def _company_field(self, table: str) -> str | None:
        declared = self.declared.get(table)
        return declared.company if declared is not None else self.company_fields.get(table)

    def _company_lookups(self, table: str) -> tuple[str, ...]:
        declared = self.declared.get(table)
        if declared is None:
            return COMPANY_LOOKUPS
        return (declared.company_lookup,) if declared.company_lookup else ()

    def _parse(self, table: str, body: dict[str, Any], snapshot: bool) -> Page:
        page = parse_delta_page(table, self.primary_key(table), body,
                                snapshot=snapshot, captured_ms=int(self.clock.time() * 1000),
                                images=self.images.table(table),
                                company_field=self._company_field(table),
                                captured=self.captured)
        self.images.remember(table, page.items)
        return page

    async def _with_companies(self, table: str, page: Page) -> Page:
        """Fill ``source.company`` (the legal entity code) from the row's company lookup GUID."""
        lookups = self._company_lookups(table)
        for index, item in enumerate(page.items):
            if not lookups or not isinstance(item, Change) or item.company:
                continue
            row = item.row
            guid = next((row.get(c) for c in lookups if row.get(c)), None)
            if not guid:
                continue
            code = await self._company_code(str(guid))
            if code:
                page.items[index] = item.with_source(company=code)
        return page

    async def _company_code(self, guid: str) -> str | None:
        # Companies are few and rarely new: one read of cdm_companies, again at most once a
        # minute while a row names a company we have not seen.
        stale = self.clock.monotonic() - self._companies_read_at > 60.0
        if guid not in self._companies and (stale or not self._companies_read_at):
            self._companies_read_at = self.clock.monotonic()
            response = await self.api.request("GET", "cdm_companies",
                                              params={"$select": "cdm_companyid,cdm_companycode"})
            try:
                rows = answer_json(response).get("value", []) if response.status_code == 200 else []
            except (ValueError, RecursionError, AttributeError):
                rows = []  # unreadable: the company stays unknown, as for an unseen GUID
            for row in rows if isinstance(rows, list) else []:
                if isinstance(row, dict):
                    self._companies[str(row.get("cdm_companyid"))] = str(row.get("cdm_companycode"))
        return self._companies.get(guid)

    async def snapshot(self, table: str, resume: str = "") -> AsyncIterator[Page]:
        """Tracked pages; a page's `Page.resume` is its ``@odata.nextLink`` (its skip token
        carries the change-tracking position of the first page), checked like a delta link."""
        url = table
        if resume:
            try:
                url = self.origin.check_link(resume, f"{table}: snapshot cursor")
            except ForeignOrigin as exc:
                raise UntrustedPosition(exc.reason) from None

        async def answer(link: str) -> tuple[dict[str, Any], str | None]:
            body = await self._get(table, link, tracking=True)  # its links checked
            next_link = body.get("@odata.nextLink")
            return body, str(next_link) if next_link else None

        # Each next page's request is on the wire before a page is parsed (`read_ahead`).
        async with aclosing(read_ahead(answer, url)) as bodies:
            async for body in bodies:  # closed with this generator: no request after it
                page = await self._with_companies(table, self._parse(table, body, snapshot=True))
                if not page.more:
                    if not page.position:
                        raise Rejected(f"{table}: tracked read returned no delta link "
                                       "(is change tracking enabled on the table?)")
                    yield page
                    return
                page.position, page.resume = "", page.position
                yield page

    async def changes(self, table: str, position: str) -> Page:
        try:
            self.origin.check_link(position, f"{table}: stored delta link")
        except ForeignOrigin as exc:
            raise UntrustedPosition(exc.reason) from None
        page = self._parse(table, await self._get(table, position, tracking=False), snapshot=False)
        return await self._with_companies(table, page)
