"""One OData call, independent of transport: the HTTP route and ``$batch`` both use it.

``FinanceApi.handle`` takes an ``ApiRequest`` (path below ``/data/``) and returns an
``ApiResponse`` or raises ``ODataError``. Reads run outside a transaction; each write or
action runs in ``Store.transaction`` (a nested call inside a ``$batch`` change set joins the
change set's transaction, so the whole change set shares one txid and rolls back together).

URL forms served:
    GET    <Collection>[?$filter&$select&$orderby&$top&$skip&$count&cross-company]
    GET    <Collection>/$count
    POST   <Collection>                                   create
    GET|PATCH|PUT|DELETE <Collection>(<key>)              read / update / replace / delete
    POST   <Collection>/Microsoft.Dynamics.DataEntities.<Action>        collection action
    POST   <Collection>(<key>)/Microsoft.Dynamics.DataEntities.<Action> bound action
"""

from __future__ import annotations

from emulators.common.config import EmulatorConfig
from emulators.common.errors import ODataError
from emulators.common.store import Store
from emulators.finance import reads
from emulators.finance.actions import run as run_action
from emulators.finance.entities import entity
from emulators.finance.errors import BAD_KEY, not_found
from emulators.finance.keys import BadKey, parse_key, parse_path
from emulators.finance.messages import ApiRequest, ApiResponse
from emulators.finance.mutations import create, delete, update
from emulators.finance.schema import CoercionError, Entity, coerce
from emulators.finance.writer import Writer

__all__ = ["ApiRequest", "ApiResponse", "FinanceApi"]


def _method_not_allowed(req: ApiRequest) -> ODataError:
    return ODataError(405, "MethodNotAllowed",
                      f"The HTTP method '{req.method}' is not allowed for '/data/{req.path}'.")


class FinanceApi:
    """Dispatches OData calls to reads, writes and business actions.

    Synchronous on purpose: the routes are async but call ``handle`` without awaiting anything
    in between, so one SQLite transaction never interleaves with another request's on the
    single shared connection (the store's nesting depth would otherwise be corrupted).
    """

    def __init__(self, store: Store, cfg: EmulatorConfig) -> None:
        self.store = store
        self.cfg = cfg
        self.writer = Writer(store)
        self.page_size = cfg.max_page_size or reads.MAX_PAGE_SIZE

    def handle(self, req: ApiRequest) -> ApiResponse:
        try:
            target = parse_path(req.segments)
        except BadKey as exc:
            raise ODataError(400, BAD_KEY, str(exc)) from exc
        ent = entity(target.collection)
        if ent is None:
            raise not_found(f"Resource not found for the segment '{target.collection}'.")
        key = self._key(ent, target.key_text)
        if target.action == "$count" and key is None:
            if req.method != "GET":
                raise _method_not_allowed(req)
            return reads.count(self, ent, req)
        if target.action is not None:
            if req.method != "POST":
                raise _method_not_allowed(req)
            with self.store.transaction(f"batch:{req.principal}"):
                return run_action(self, ent, key, target.action, req)
        if key is None:
            if req.method == "GET":
                return reads.collection(self, ent, req)
            if req.method == "POST":
                with self.store.transaction(req.principal):
                    return create(self, ent, req)
            raise _method_not_allowed(req)
        if req.method == "GET":
            return reads.single(self, ent, key, req)
        with self.store.transaction(req.principal):
            if req.method == "PATCH":
                return update(self, ent, key, req, replace=False)
            if req.method == "PUT":
                return update(self, ent, key, req, replace=True)
            if req.method == "DELETE":
                return delete(self, ent, key, req)
        raise _method_not_allowed(req)

    def _key(self, ent: Entity, key_text: str | None) -> dict[str, object] | None:
        if key_text is None:
            return None
        try:
            key = parse_key(ent, key_text)
        except BadKey as exc:
            raise ODataError(400, BAD_KEY, str(exc)) from exc
        # dataAreaId values are stored lower-case; FO matches them case-insensitively.
        for name in ent.company_fields:
            if isinstance(key.get(name), str):
                key[name] = str(key[name]).lower()
        for name in ent.key:
            f = ent.get(name)
            if f is not None and f.type in ("date", "datetime"):
                try:  # stored in one canonical form, so '2026-01-01' finds the noon value
                    key[name] = coerce(f, key[name])
                except CoercionError as exc:
                    raise ODataError(400, BAD_KEY, str(exc)) from exc
        return key

    def visible(self, ent: Entity, key: dict[str, object], req: ApiRequest) -> bool:
        """FO resolves keyed URLs in the caller's company unless cross-company=true."""
        if ent.company_field is None or req.cross_company:
            return True
        return str(key[ent.company_field]).lower() == self.cfg.default_company.lower()
