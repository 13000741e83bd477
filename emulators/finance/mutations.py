"""POST, PATCH, PUT and DELETE on data entities.

- POST creates (201 + body + ``Location``; ``Prefer: return=minimal`` gives 204 +
  ``OData-EntityId``); both hold the key percent-encoded (headers are ASCII). A missing ``dataAreaId`` defaults to the caller's company, as in FO.
- PATCH updates the fields sent; PUT replaces the row (fields not sent go back to their
  defaults). Both are update-only, as in FO: a missing row is 404, there is no upsert (clients
  upsert by PATCH, then POST on 404). 204, or 200 + body with ``Prefer: return=representation``.
- DELETE answers 204; a row still referenced by another row's lookup cannot be deleted.
- ``If-Match: W/"<RecVersion>"`` on PATCH/PUT/DELETE answers 412 when the row has changed;
  ``If-Match: *`` only requires the row to exist.
- Read-only entities (journals, proposal lines, the posting export entities) refuse writes.
- FO entity logic runs in the same transaction (``hooks.py``): shared categories for a new
  transaction category, fixed-price revenue estimate projects, forecasts from estimates.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from emulators.common.errors import ODataError
from emulators.finance import hooks, tables
from emulators.finance.errors import (
    INVALID_VALUE,
    PRECONDITION_FAILED,
    bad_request,
    not_found,
    write_failed,
)
from emulators.finance.keys import entity_url, format_key
from emulators.finance.messages import ApiRequest, ApiResponse
from emulators.finance.schema import SYSTEM_FIELDS, CoercionError, Entity, coerce
from emulators.finance.writer import Row

if TYPE_CHECKING:
    from emulators.finance.api import FinanceApi

__all__ = ["create", "delete", "parse_body", "update"]


def parse_body(ent: Entity, raw: bytes) -> Row:
    """The JSON body as typed field values; annotations and system fields are ignored."""
    try:
        body = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # nesting too deep
        raise bad_request(f"Error parsing the request body: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    values: Row = {}
    for name, value in body.items():
        if "@" in name or name in SYSTEM_FIELDS:
            continue
        f = ent.get(name)
        if f is None:
            raise bad_request(f"The property '{name}' does not exist on type "
                              f"'Microsoft.Dynamics.DataEntities.{ent.name}'.")
        try:
            values[name] = coerce(f, value)
        except CoercionError as exc:
            raise ODataError(400, INVALID_VALUE, str(exc)) from exc
    for name in ent.company_fields:
        if isinstance(values.get(name), str):
            values[name] = str(values[name]).lower()
    return values


def _check_etag(ent: Entity, row: Row, req: ApiRequest) -> None:
    wanted = req.header("if-match")
    if wanted is None or wanted.strip() == "*":
        return
    if tables.etag(row) not in [w.strip() for w in wanted.split(",")]:
        raise ODataError(412, PRECONDITION_FAILED,
                         f"The record {ent.name}{format_key(ent, row)} was changed by another "
                         f"user (current ETag {tables.etag(row)}); re-read it and try again.")


def _refuse_read_only(ent: Entity) -> None:
    if ent.read_only:
        raise write_failed(ent.table, f"{ent.name} can only be changed by Finance processes.")


def _returns(req: ApiRequest, default: bool) -> bool:
    prefer = (req.header("prefer") or "").lower()
    if "return=representation" in prefer:
        return True
    if "return=minimal" in prefer:
        return False
    return default


def _representation(req: ApiRequest, ent: Entity, row: Row) -> dict[str, object]:
    return {"@odata.context": f"{req.base_url}/$metadata#{ent.name}/$entity",
            **tables.json_row(ent, row)}


def create(api: FinanceApi, ent: Entity, req: ApiRequest) -> ApiResponse:
    _refuse_read_only(ent)
    values = parse_body(ent, req.body)
    if ent.company_field and not values.get(ent.company_field):
        values[ent.company_field] = api.cfg.default_company
    hooks.before_create(api.writer, ent, values)
    row = api.writer.insert(ent, values)
    hooks.after_write(api.writer, ent, None, row)
    location = entity_url(req.base_url, ent, row)
    headers = {"OData-Version": "4.0", "Location": location, "ETag": tables.etag(row)}
    if not _returns(req, True):
        return ApiResponse(204, None, {**headers, "OData-EntityId": location})
    return ApiResponse(201, _representation(req, ent, row), headers)


def update(api: FinanceApi, ent: Entity, key: Row, req: ApiRequest, replace: bool) -> ApiResponse:
    _refuse_read_only(ent)
    current = tables.fetch(api.store.conn, ent, key) if api.visible(ent, key, req) else None
    if current is None:
        raise not_found(f"No {ent.name} record found with key {format_key(ent, key)}.")
    _check_etag(ent, current, req)
    changes = parse_body(ent, req.body)
    if replace:
        changes = {f.name: changes.get(f.name, f.default) for f in ent.fields
                   if f.name not in ent.key} | {k: v for k, v in changes.items() if k in ent.key}
    row = api.writer.update(ent, key, changes)
    hooks.after_write(api.writer, ent, current, row)
    headers = {"OData-Version": "4.0", "ETag": tables.etag(row)}
    if _returns(req, False):
        return ApiResponse(200, _representation(req, ent, row), headers)
    return ApiResponse(204, None, headers)


def delete(api: FinanceApi, ent: Entity, key: Row, req: ApiRequest) -> ApiResponse:
    _refuse_read_only(ent)
    current = tables.fetch(api.store.conn, ent, key) if api.visible(ent, key, req) else None
    if current is None:
        raise not_found(f"No {ent.name} record found with key {format_key(ent, key)}.")
    _check_etag(ent, current, req)
    api.writer.delete(ent, key)
    hooks.after_write(api.writer, ent, current, None)
    return ApiResponse(204, None, {"OData-Version": "4.0"})
