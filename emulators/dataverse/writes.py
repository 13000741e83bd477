"""POST (create), PATCH (upsert), DELETE and bound actions, each in its own transaction
(or joined to the surrounding ``$batch`` change set's transaction).

Preconditions follow the Web API: ``If-Match: *`` makes PATCH update-only (404 when missing),
``If-None-Match: *`` makes it create-only (412 when present), ``If-Match: W/"<version>"`` on
PATCH/DELETE is refused with 412 when the row has moved on.
"""

from __future__ import annotations

from typing import Any

from emulators.common.errors import ODataError, parse_json
from emulators.common.query import parse_query
from emulators.common.store import Store
from emulators.common.target import encode_segment
from emulators.dataverse import rules
from emulators.dataverse.actions import ON_CREATE, bound_action
from emulators.dataverse.keys import KeyValue, key_columns
from emulators.dataverse.messages import ApiRequest, ApiResponse
from emulators.dataverse.reads import not_found
from emulators.dataverse.records import Records, Row, etag, to_json, unable_to_lookup
from emulators.dataverse.schema import BY_SET, Table


def _stale(row: Row) -> ODataError:
    return ODataError(412, "0x80060882", "The version of the existing record doesn't match the "
                      f"RowVersion property provided (current {etag(row)}).")


class Writer:
    def __init__(self, store: Store, records: Records) -> None:
        self.store = store
        self.records = records

    def _body(self, req: ApiRequest) -> dict[str, Any]:
        body = parse_json(req.body)
        if not isinstance(body, dict):
            raise ODataError(400, "0x80048d19", "The request body must be a JSON object.")
        return body

    def _entity_id(self, req: ApiRequest, table: Table, row: Row) -> dict[str, str]:
        segment = encode_segment(f"{table.entity_set}({row[table.primary_key]})")
        return {"OData-EntityId": f"{req.base}{segment}"}

    def _answer(self, req: ApiRequest, table: Table, row: Row, created: bool) -> ApiResponse:
        headers = {**self._entity_id(req, table, row), "ETag": etag(row)}
        if req.prefers().get("return") == "representation":
            query = parse_query({k: v for k, v in req.query.items() if k == "$select"}, table.properties)
            fresh = self.records.get(table, row[table.primary_key]) or row
            body = {"@odata.context": f"{req.base}$metadata#{table.entity_set}/$entity",
                    **to_json(table, fresh, query.select)}
            return ApiResponse.json(201 if created else 200, body,
                                    {**headers, "Preference-Applied": "return=representation"})
        return ApiResponse.empty(204, headers)

    def _create(self, table: Table, values: Row) -> Row:
        full = {c.name: None for c in table.columns} | values
        rules.validate(self.records, table, full, None)
        row = self.records.insert(table, values)
        hook = ON_CREATE.get(table.entity_set)
        if hook is not None:
            hook(self.records, row)
        return row

    def _update(self, table: Table, existing: Row, values: Row) -> Row:
        rules.validate(self.records, table, {**existing, **values}, existing)
        return self.records.update(table, existing, values)

    def create(self, req: ApiRequest, table: Table) -> ApiResponse:
        body = self._body(req)
        with self.store.transaction(req.principal):
            row = self._create(table, self.records.values_from_body(table, body, req.content_ids))
        return self._answer(req, table, row, created=True)

    def upsert(self, req: ApiRequest, table: Table, key: str | dict[str, KeyValue]) -> ApiResponse:
        body = self._body(req)
        columns = key_columns(table, key)
        if_match, if_none_match = req.headers.get("if-match"), req.headers.get("if-none-match")
        with self.store.transaction(req.principal):
            existing = self.records.find(table, columns)
            if if_none_match == "*" and existing is not None:
                raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
            if if_match is not None and existing is None:
                raise not_found(table, key)
            if if_match not in (None, "*") and existing is not None and if_match != etag(existing):
                raise _stale(existing)
            values = self.records.values_from_body(table, body, req.content_ids)
            for name, value in columns.items():
                if name in values and values[name] != value and existing is None:
                    raise ODataError(400, "0x80060888", f"The value of '{name}' in the request "
                                     "body does not match the key in the request URI.")
            if existing is not None:
                row = self._update(table, existing, values)
                created = False
            else:
                self._check_key_lookups(table, columns)
                row = self._create(table, {**values, **columns})
                created = True
        return self._answer(req, table, row, created)

    def _check_key_lookups(self, table: Table, columns: dict[str, KeyValue]) -> None:
        for name, value in columns.items():
            column = table.column(name)
            if column is not None and column.kind == "lookup" and column.target is not None:
                target = BY_SET[column.target]
                if value is None or self.records.get(target, str(value)) is None:
                    raise unable_to_lookup(target, [value])

    def delete(self, req: ApiRequest, table: Table, key: str | dict[str, KeyValue]) -> ApiResponse:
        columns = key_columns(table, key)
        with self.store.transaction(req.principal):
            existing = self.records.find(table, columns)
            if existing is None:
                raise not_found(table, key)
            if_match = req.headers.get("if-match")
            if if_match not in (None, "*") and if_match != etag(existing):
                raise _stale(existing)
            rules.validate_delete(self.records, table, existing)
            self.records.delete(table, existing)
        return ApiResponse.empty(204)

    def action(self, req: ApiRequest, table: Table, key: str | dict[str, KeyValue],
               segment: str) -> ApiResponse:
        run = bound_action(table.entity_set, segment)
        if req.body.strip():
            self._body(req)  # actions take no parameters here, but the body must be valid JSON
        with self.store.transaction(req.principal):
            existing = self.records.find(table, key_columns(table, key))
            if existing is None:
                raise not_found(table, key)
            created = run(self.records, existing)
        value = []
        for row in created:
            target = next(t for t in BY_SET.values() if set(row) == set(t.by_name))
            value.append({"@odata.type": f"#{target.type_name}", **to_json(target, row)})
        return ApiResponse.json(200, {"@odata.context": f"{req.base}$metadata#Collection(crmbaseentity)",
                                      "value": value})
