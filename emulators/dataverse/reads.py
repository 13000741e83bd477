"""GET handlers: one row, a collection with server paging, and change tracking (delta links).

Paging follows Dataverse: ``Prefer: odata.maxpagesize=N`` (default and cap: the server page
size, 5,000), ``@odata.nextLink`` carrying an opaque ``$skiptoken``. Without ``$orderby`` pages
are cut by primary key (stable under concurrent writes); with it, by offset. ``$skip`` and
``$apply`` are refused as in Dataverse; ``$expand`` covers lookups only (:mod:`.expand`).

Emulator extensions on rows returned by change tracking (real Dataverse has none of these):
``@dualwrite.txid`` (the transaction that made the change: one request or one change set),
``@dualwrite.principal`` (the OAuth client id that made it), ``@dualwrite.version`` (the change
log version the entry reflects) and, on delta links, ``@dualwrite.op`` (``c``, ``u`` or ``d``)
and the transaction's shape: ``@dualwrite.txrows`` (distinct rows it touched per entity set),
``@dualwrite.txorder`` and ``@dualwrite.txtableorder`` (the row's position in it, overall and
within its entity set, by first change). Real Dataverse exposes no transaction at all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from emulators.common.errors import ODataError
from emulators.common.faults import FaultInjector
from emulators.common.query import Query, parse_query
from emulators.common.store import Store
from emulators.dataverse.expand import expand, parse_expand
from emulators.dataverse.keys import key_columns
from emulators.dataverse.messages import ApiRequest, ApiResponse, decode_skiptoken, encode_skiptoken
from emulators.dataverse.records import Records, Row, etag, to_json
from emulators.dataverse.schema import Table
from emulators.dataverse.tracking import (
    TxShape,
    delta_entries,
    make_token,
    parse_token,
    transaction_shape,
)

QUERY_OPTIONS = ("$filter", "$select", "$orderby", "$top", "$count", "$expand")


def not_found(table: Table, key: object) -> ODataError:
    if isinstance(key, str):
        return ODataError(404, "0x80040217",
                          f"Entity '{table.logical_name}' With Id = {key} Does Not Exist")
    return ODataError(404, "0x80040217", "A record with the specified key values does not exist "
                      f"in {table.logical_name} entity")


class Reader:
    def __init__(self, store: Store, records: Records, faults: FaultInjector,
                 max_page_size: int, token_expiry_days: float) -> None:
        self.store = store
        self.records = records
        self.faults = faults
        self.max_page_size = max_page_size
        self.token_expiry_days = token_expiry_days

    def _page_size(self, req: ApiRequest) -> tuple[int, dict[str, str]]:
        raw = req.prefers().get("odata.maxpagesize")
        if raw is None:
            return self.max_page_size, {}
        if not raw.isdigit() or int(raw) < 1:
            raise ODataError(400, "0x80060888", f"Invalid odata.maxpagesize preference '{raw}'.")
        size = min(int(raw), self.max_page_size)
        return size, {"odata.maxpagesize": str(size)}

    def one(self, req: ApiRequest, table: Table, key: str | dict[str, Any]) -> ApiResponse:
        row = self.records.find(table, key_columns(table, key))
        if row is None:
            raise not_found(table, key)
        if req.headers.get("if-none-match") == etag(row):
            return ApiResponse.empty(304)
        query = parse_query({k: v for k, v in req.query.items() if k == "$select"}, table.properties)
        expansions = parse_expand(req.query["$expand"], table) if "$expand" in req.query else []
        body = {"@odata.context": f"{req.base}$metadata#{table.entity_set}/$entity",
                **expand(self.records, row, to_json(table, row, query.select), expansions)}
        return ApiResponse.json(200, body, {"ETag": etag(row)})

    def collection(self, req: ApiRequest, table: Table) -> ApiResponse:
        for unsupported in ("$skip", "$apply"):
            if unsupported in req.query:
                raise ODataError(400, "0x80060888",
                                 f"The query parameter {unsupported} is not supported")
        if "$deltatoken" in req.query:
            return self.delta(req, table)
        tracking = "odata.track-changes" in req.prefers()
        if tracking:
            for option in ("$filter", "$orderby", "$top", "$expand"):  # refused by Dataverse too
                if option in req.query:
                    raise ODataError(400, "0x80060888", f"The query parameter {option} is not "
                                     "supported with change tracking (odata.track-changes).")
        query = parse_query({k: v for k, v in req.query.items() if k in QUERY_OPTIONS},
                            table.properties)
        size, applied = self._page_size(req)
        state = decode_skiptoken(req.query["$skiptoken"]) if "$skiptoken" in req.query else {}
        watermark = int(str(state.get("w", self.store.last_version())))
        rows, more, next_state = self._page(table, query, size, state)
        body: dict[str, Any] = {"@odata.context": f"{req.base}$metadata#{table.entity_set}"}
        if query.count:
            body["@odata.count"] = self._count(table, query)
        expansions = parse_expand(req.query["$expand"], table) if "$expand" in req.query else []
        body["value"] = [expand(self.records, r, self._annotate(to_json(table, r, query.select), r,
                                                                 tracking), expansions)
                         for r in rows]
        if more:
            next_state["w"] = watermark
            body["@odata.nextLink"] = self._link(req, table, {"$skiptoken": encode_skiptoken(next_state)})
        elif tracking:
            body["@odata.deltaLink"] = self._link(req, table, {"$deltatoken": make_token(watermark)},
                                                  keep=("$select",))
        if tracking:
            applied["odata.track-changes"] = ""
        return ApiResponse.json(200, body, _preference_applied(applied))

    def _page(self, table: Table, query: Query, size: int,
              state: dict[str, object]) -> tuple[list[Row], bool, dict[str, object]]:
        remaining = query.top - int(str(state.get("n", 0))) if query.top is not None else None
        limit = size if remaining is None else min(size, remaining)
        where, params = ([query.where] if query.where else []), list(query.params)
        if query.order_by:
            order, offset = f'{query.order_by}, "{table.primary_key}"', int(str(state.get("o", 0)))
        else:
            order, offset = f'"{table.primary_key}"', 0
            if "k" in state:
                where.append(f'"{table.primary_key}" > ?')
                params.append(state["k"])
        sql = (f'SELECT * FROM "{table.entity_set}"' + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY {order} LIMIT ? OFFSET ?")
        fetched = [dict(r) for r in self.records.conn.execute(sql, [*params, limit + 1, offset])]
        rows = fetched[:limit]
        served = int(str(state.get("n", 0))) + len(rows)
        more = len(fetched) > limit and (query.top is None or served < query.top)
        next_state: dict[str, object] = {"n": served}
        if query.order_by:
            next_state["o"] = offset + len(rows)
        elif rows:
            next_state["k"] = rows[-1][table.primary_key]
        return rows, more, next_state

    def _count(self, table: Table, query: Query) -> int:
        sql = f'SELECT COUNT(*) FROM "{table.entity_set}"' + (f" WHERE {query.where}" if query.where else "")
        return int(self.records.conn.execute(sql, query.params).fetchone()[0])

    def _annotate(self, out: Row, row: Row, tracking: bool) -> Row:
        if tracking:
            change = self.records.conn.execute(
                "SELECT txid, principal FROM _changes WHERE version = ?",
                (row["versionnumber"],)).fetchone()
            if change is not None:
                out["@dualwrite.txid"], out["@dualwrite.principal"] = change[0], change[1]
            out["@dualwrite.version"] = row["versionnumber"]
        return out

    def _link(self, req: ApiRequest, table: Table, extra: dict[str, str],
              keep: tuple[str, ...] = QUERY_OPTIONS) -> str:
        params = {k: v for k, v in req.query.items() if k in keep}
        params.update(extra)
        return f"{req.base}{table.entity_set}?{urlencode(params, safe='$,')}"

    def delta(self, req: ApiRequest, table: Table) -> ApiResponse:
        token = req.query["$deltatoken"]
        after = parse_token(token, self.store, self.token_expiry_days)
        query = parse_query({k: v for k, v in req.query.items() if k in ("$select", "$count")},
                            table.properties)
        size, applied = self._page_size(req)
        state = decode_skiptoken(req.query["$skiptoken"]) if "$skiptoken" in req.query else {}
        # A paused feed answers "nothing new" and hands back a link that still covers the gap.
        upto = int(str(state.get("u", after if self.faults.feed_paused else self.store.last_version())))
        offset = int(str(state.get("o", 0)))
        entries = delta_entries(self.store, table.entity_set, after, upto)
        page = entries[offset: offset + size]
        values: list[Row] = []
        shapes: dict[str, TxShape] = {}

        def tx_marks(txid: object, row_id: str) -> dict[str, object]:
            if str(txid) not in shapes:
                shapes[str(txid)] = transaction_shape(self.store, str(txid))
            return shapes[str(txid)].marks(table.entity_set, row_id)

        for entry in page:
            change = entry.change
            marks: Row = {"@dualwrite.txid": change.txid, "@dualwrite.principal": change.principal,
                          "@dualwrite.version": change.version}
            if entry.deleted:
                values.append({"@odata.context": f"{req.base}$metadata#{table.entity_set}/$deletedEntity",
                               "id": entry.row_id, "reason": "deleted", **marks,
                               **tx_marks(change.txid, entry.row_id), "@dualwrite.op": "d"})
                continue
            row = self.records.get(table, entry.row_id)
            if row is None:
                continue  # deleted after the window closed: the next delta link reports it
            if row["versionnumber"] != change.version:
                # Changed again after the window closed: describe the state actually shown.
                self._annotate(marks, row, tracking=True)
            values.append({**to_json(table, row, query.select), **marks, **tx_marks(marks["@dualwrite.txid"], entry.row_id),
                           "@dualwrite.op": "c" if entry.created else "u"})
        body: dict[str, Any] = {"@odata.context": f"{req.base}$metadata#{table.entity_set}/$delta"}
        if query.count:
            body["@odata.count"] = len(entries)
        body["value"] = values
        if offset + size < len(entries):
            link = {"$deltatoken": token,
                    "$skiptoken": encode_skiptoken({"u": upto, "o": offset + size})}
            body["@odata.nextLink"] = self._link(req, table, link, keep=("$select",))
        else:
            body["@odata.deltaLink"] = self._link(req, table, {"$deltatoken": make_token(upto)},
                                                  keep=("$select",))
        return ApiResponse.json(200, body, _preference_applied(applied))


def _preference_applied(applied: dict[str, str]) -> dict[str, str]:
    if not applied:
        return {}
    return {"Preference-Applied": ", ".join(f"{k}={v}" if v else k for k, v in applied.items())}
