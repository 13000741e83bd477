"""The Finance emulator as an ASGI app: ``create_app(cfg) -> Starlette``.

Layers, outermost first: ``/_admin`` for loopback clients only (``emulators.common.admin``),
request counters, fault injection (``/_admin/faults``), bearer auth (client-credentials
tokens from ``POST /{tenant}/oauth2/v2.0/token`` on the same server), FO throttling (429 +
``Retry-After`` past ``cfg.limits``), then the routes:

    GET  /data                  service document (entity sets)
    GET  /data/$metadata        CSDL generated from the entity declarations
    GET  /data/ChangeFeed       the change feed (see ``emulators.finance.feed``)
    POST /data/$batch           multipart/mixed batches (see ``emulators.finance.batching``)
    *    /data/<path>           entities and actions (see ``emulators.finance.api``)

Every failure answers ``{"error": {"code", "message"}}`` (codes in ``emulators.finance.errors``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulators.common.admin import LoopbackAdminMiddleware
from emulators.common.auth import BearerAuthMiddleware, ClientRegistry, token_route
from emulators.common.batch import boundary_of, format_batch, parse_batch
from emulators.common.config import EmulatorConfig
from emulators.common.errors import install_error_handlers
from emulators.common.faults import FaultInjector, FaultMiddleware, admin_routes
from emulators.common.stats import RequestStats, RequestStatsMiddleware, stats_routes
from emulators.common.store import Store
from emulators.common.target import raw_target
from emulators.common.throttle import (
    CONCURRENCY,
    EXECUTION_TIME,
    REQUESTS,
    ServiceProtection,
    ServiceProtectionMiddleware,
)
from emulators.finance import feed, metadata, tables
from emulators.finance.api import FinanceApi
from emulators.finance.batching import run_batch
from emulators.finance.entities import ENTITIES, entity
from emulators.finance.errors import THROTTLE_MESSAGE, THROTTLED, bad_request
from emulators.finance.messages import ApiResponse, api_request
from emulators.finance.seed import seed
from emulators.finance.writer import IMAGES_DDL

__all__ = ["create_app"]

JSON_TYPE = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"


def _open_store(cfg: EmulatorConfig) -> Store:
    store = Store(cfg.db_path)
    store.conn.executescript(IMAGES_DDL)
    with store.transaction("system"):
        tables.create_tables(store.conn)
    if cfg.seed and tables.is_empty(store.conn):
        seed(store)
    return store


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/data"


def _principal(request: Request) -> str:
    return str(request.scope.get("state", {}).get("principal", "anonymous"))


def _respond(resp: ApiResponse) -> Response:
    if resp.body is not None:
        return Response(json.dumps(resp.body), resp.status, resp.headers, media_type=JSON_TYPE)
    if resp.text is not None:
        return Response(resp.text, resp.status, resp.headers, media_type="text/plain")
    return Response(None, resp.status, resp.headers)


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise bad_request(f"The parameter '{name}' must be a non-negative integer, not '{raw}'.")
    return int(raw)


def create_app(cfg: EmulatorConfig) -> Starlette:
    store = _open_store(cfg)
    api = FinanceApi(store, cfg)
    injector = FaultInjector(cfg.faults)
    registry = ClientRegistry(cfg.clients, cfg.token_ttl_seconds)
    protection = ServiceProtection(cfg.limits)

    async def service_document(request: Request) -> Response:
        body = {"@odata.context": f"{_base_url(request)}/$metadata",
                "value": [{"name": e.name, "kind": "EntitySet", "url": e.name} for e in ENTITIES]}
        return Response(json.dumps(body), 200, {"OData-Version": "4.0"}, media_type=JSON_TYPE)

    async def csdl(request: Request) -> Response:
        return Response(metadata.csdl(ENTITIES), 200, {"OData-Version": "4.0"},
                        media_type="application/xml")

    async def change_feed(request: Request) -> Response:
        since = _int_param(request, "since", 0)
        top = min(_int_param(request, "top", feed.DEFAULT_TOP), feed.MAX_TOP)
        names: list[str] | None = None
        if request.query_params.get("entities"):
            names = []
            for raw in request.query_params["entities"].split(","):
                ent = entity(raw.strip())
                if ent is None:
                    raise bad_request(f"'{raw.strip()}' is not an entity of this service.")
                names.append(ent.name)
        if injector.feed_paused:
            page = feed.FeedPage([], since, False)
        elif top == 0:
            page = feed.FeedPage([], feed.end_of_feed(store.conn, since, names), False)
        else:
            page = feed.read_feed(store.conn, since, names, top)
        body: dict[str, object] = {"value": [e.as_json() for e in page.entries],
                                   "watermark": page.watermark}
        if page.more:
            query = f"since={page.watermark}&top={top}"
            if names:
                query += "&entities=" + ",".join(names)
            body["@odata.nextLink"] = f"{_base_url(request)}/ChangeFeed?{query}"
        return Response(json.dumps(body), 200, {"OData-Version": "4.0"}, media_type=JSON_TYPE)

    async def batch(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        boundary_of(content_type)
        parts = parse_batch(await request.body(), content_type)
        continue_on_error = "odata.continue-on-error" in request.headers.get("prefer", "").lower()
        out = run_batch(api, parts, _principal(request), _base_url(request), continue_on_error)
        body, out_type = format_batch(out)
        return Response(body, 200, {"OData-Version": "4.0", "Content-Type": out_type})

    async def resource(request: Request) -> Response:
        req = api_request(request.method, raw_target(request.scope), request.headers,
                          await request.body(), _principal(request), _base_url(request))
        return _respond(api.handle(req))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            store.close()

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    stats = RequestStats("/data")
    routes = [
        token_route(registry),
        *admin_routes(injector),
        *stats_routes(stats),
        Route("/data", service_document, methods=["GET"]),
        Route("/data/", service_document, methods=["GET"]),
        Route("/data/$metadata", csdl, methods=["GET"]),
        Route("/data/ChangeFeed", change_feed, methods=["GET"]),
        Route("/data/$batch", batch, methods=["POST"]),
        Route("/data/{path:path}", resource, methods=methods),
    ]
    fo_codes: dict[str, int | str] = {REQUESTS: THROTTLED, EXECUTION_TIME: THROTTLED,
                                      CONCURRENCY: THROTTLED}
    fo_messages = {REQUESTS: THROTTLE_MESSAGE, EXECUTION_TIME: THROTTLE_MESSAGE,
                   CONCURRENCY: THROTTLE_MESSAGE}
    middleware = [
        Middleware(LoopbackAdminMiddleware),
        Middleware(RequestStatsMiddleware, stats=stats),
        Middleware(FaultMiddleware, injector=injector, storm_code=THROTTLED,
                   storm_message=THROTTLE_MESSAGE),
        Middleware(BearerAuthMiddleware, registry=registry),
        Middleware(ServiceProtectionMiddleware, protection=protection, error_codes=fo_codes,
                   messages=fo_messages),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    install_error_handlers(app)
    return app
