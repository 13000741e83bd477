"""GET on collections and rows: company scoping, query options and server-driven paging.

- Company-specific collections answer only the caller's default company unless
  ``cross-company=true`` (then every company; filter one with ``$filter=dataAreaId eq 'demf'``).
- Server paging: at most 10,000 rows per page (``EmulatorConfig.max_page_size`` overrides), or
  fewer when the client sends ``Prefer: odata.maxpagesize=<n>`` (answered with
  ``Preference-Applied``). ``@odata.nextLink`` repeats the query with ``$skip`` advanced, which
  is how FO's own next links look. Default order is RecId (insertion order), so pages are stable.
- ``$count=true`` adds ``@odata.count`` (all matching rows, ignoring ``$top``/``$skip``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from emulators.common.query import Query
from emulators.finance import tables
from emulators.finance.errors import not_found
from emulators.finance.keys import format_key
from emulators.finance.messages import ApiRequest, ApiResponse
from emulators.finance.odata import parse_fo_query
from emulators.finance.schema import Entity

if TYPE_CHECKING:
    from emulators.finance.api import FinanceApi

__all__ = ["MAX_PAGE_SIZE", "collection", "count", "single"]

MAX_PAGE_SIZE = 10_000
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)


def _where(api: FinanceApi, ent: Entity, req: ApiRequest, query: Query) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if ent.company_field and not req.cross_company:
        clauses.append(f'"{ent.company_field}" = ?')
        params.append(api.cfg.default_company)
    if query.where:
        clauses.append(f"({query.where})")
        params += query.params
    return " AND ".join(clauses), params


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"OData-Version": "4.0", **(extra or {})}


def _context(req: ApiRequest, ent: Entity) -> str:
    return f"{req.base_url}/$metadata#{ent.name}"


def collection(api: FinanceApi, ent: Entity, req: ApiRequest) -> ApiResponse:
    query = parse_fo_query(req.query, ent)
    where, params = _where(api, ent, req, query)
    page = api.page_size
    extra: dict[str, str] = {}
    prefer = _MAXPAGESIZE.search(req.header("prefer") or "")
    if prefer and int(prefer.group(1)) > 0:
        page = min(page, int(prefer.group(1)))
        extra["Preference-Applied"] = f"odata.maxpagesize={page}"
    wanted = query.top if query.top is not None else None
    limit = page if wanted is None else min(page, wanted)
    sql = f'SELECT * FROM "{ent.sql_table}"' + (f" WHERE {where}" if where else "")
    sql += f" ORDER BY {query.order_by + ', ' if query.order_by else ''}RecId LIMIT ? OFFSET ?"
    cur = api.store.conn.execute(sql, [*params, limit + 1, query.skip])
    rows = [dict(r) for r in cur.fetchall()]
    body: dict[str, object] = {"@odata.context": _context(req, ent)}
    if query.count:
        count_sql = f'SELECT COUNT(*) FROM "{ent.sql_table}"' + (f" WHERE {where}" if where else "")
        body["@odata.count"] = int(api.store.conn.execute(count_sql, params).fetchone()[0])
    more = len(rows) > limit and (wanted is None or wanted > limit)
    body["value"] = [tables.json_row(ent, r, query.select) for r in rows[:limit]]
    if more:
        nxt = {k: v for k, v in req.query.items() if k not in ("$skip", "$top")}
        nxt["$skip"] = str(query.skip + limit)
        if wanted is not None:
            nxt["$top"] = str(wanted - limit)
        body["@odata.nextLink"] = f"{req.base_url}/{ent.name}?{urlencode(nxt, safe='$,()')}"
    return ApiResponse(200, body, _headers(extra))


def count(api: FinanceApi, ent: Entity, req: ApiRequest) -> ApiResponse:
    query = parse_fo_query({k: v for k, v in req.query.items() if k == "$filter"}, ent)
    where, params = _where(api, ent, req, query)
    sql = f'SELECT COUNT(*) FROM "{ent.sql_table}"' + (f" WHERE {where}" if where else "")
    total = int(api.store.conn.execute(sql, params).fetchone()[0])
    return ApiResponse(200, None, _headers(), text=str(total))


def single(api: FinanceApi, ent: Entity, key: dict[str, object], req: ApiRequest) -> ApiResponse:
    row = tables.fetch(api.store.conn, ent, key) if api.visible(ent, key, req) else None
    if row is None:
        raise not_found(f"No {ent.name} record found with key {format_key(ent, key)}.")
    query = parse_fo_query({k: v for k, v in req.query.items() if k == "$select"}, ent)
    body = {"@odata.context": f"{_context(req, ent)}/$entity",
            **tables.json_row(ent, row, query.select)}
    return ApiResponse(200, body, _headers({"ETag": tables.etag(row)}))
