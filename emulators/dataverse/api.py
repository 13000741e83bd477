"""Dispatch of one Web API request (from HTTP or from a ``$batch`` part) to its handler.

Both arrive as :class:`ApiRequest` built by ``messages.api_request`` from the raw target, so a
percent-encoded key is decoded once and identically on either path.
"""

from __future__ import annotations

import uuid

from emulators.common.errors import ODataError
from emulators.common.faults import FaultInjector
from emulators.common.store import Store
from emulators.dataverse.keys import parse_resource, resolve_content_id
from emulators.dataverse.messages import ApiRequest, ApiResponse
from emulators.dataverse.metadata import metadata_document
from emulators.dataverse.reads import Reader
from emulators.dataverse.records import Records
from emulators.dataverse.schema import TABLES
from emulators.dataverse.writes import Writer


class DataverseApi:
    def __init__(self, store: Store, faults: FaultInjector, max_page_size: int,
                 token_expiry_days: float) -> None:
        self.store = store
        self.records = Records(store)
        self.reader = Reader(store, self.records, faults, max_page_size, token_expiry_days)
        self.writer = Writer(store, self.records)

    def execute(self, req: ApiRequest) -> ApiResponse:
        """Run one request; failures raise :class:`ODataError`."""
        segments = resolve_content_id(req.segments, req.content_ids)
        path = "/".join(segments)
        if not segments:
            return self._service_document(req)
        if segments == ("$metadata",) and req.method.upper() == "GET":
            return ApiResponse(200, {"Content-Type": "application/xml", "OData-Version": "4.0"},
                               metadata_document())
        if segments in (("WhoAmI",), ("WhoAmI()",)) and req.method.upper() == "GET":
            return self._who_am_i(req)
        resource = parse_resource(segments)
        table, key, method = resource.table, resource.key, req.method.upper()
        if resource.action is not None:
            if method != "POST":
                raise _not_allowed(method, path)
            assert key is not None
            return self.writer.action(req, table, key, resource.action)
        if key is None:
            if method == "GET":
                return self.reader.collection(req, table)
            if method == "POST":
                return self.writer.create(req, table)
            raise _not_allowed(method, path)
        if method == "GET":
            return self.reader.one(req, table, key)
        if method == "PATCH":
            return self.writer.upsert(req, table, key)
        if method == "DELETE":
            return self.writer.delete(req, table, key)
        raise _not_allowed(method, path)

    def _who_am_i(self, req: ApiRequest) -> ApiResponse:
        """The calling application user; ids are stable per client id."""
        return ApiResponse.json(200, {
            "@odata.context": f"{req.base}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": _stable_id("businessunit", "root"),
            "UserId": _stable_id("systemuser", req.principal),
            "OrganizationId": _stable_id("organization", "emulator")})

    def _service_document(self, req: ApiRequest) -> ApiResponse:
        return ApiResponse.json(200, {
            "@odata.context": f"{req.base}$metadata",
            "value": [{"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set} for t in TABLES]})


def _stable_id(kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://github.com/dualwrite/emulators/{kind}/{name}"))


def _not_allowed(method: str, path: str) -> ODataError:
    return ODataError(405, "0x80060888", f"The HTTP method '{method}' is not allowed for '{path}'.")
