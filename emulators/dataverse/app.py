"""The Dataverse Web API emulator as a Starlette application.

Routes: ``POST /{tenant}/oauth2/v2.0/token``; ``/api/data/v9.2/<entityset>[(<key>)]`` (GET,
POST, PATCH, DELETE), bound actions, ``POST /api/data/v9.2/$batch``; ``/_admin/faults`` and
``/_admin/health`` (loopback clients only: ``emulators.common.admin``). Middleware, outermost
first: the loopback guard of ``/_admin``, request counters, bearer authentication, service protection
(Dataverse error codes), fault injection (so injected latency occupies a concurrency slot and
counts as execution time), then OData error handling.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from emulators.common.admin import LoopbackAdminMiddleware
from emulators.common.auth import BearerAuthMiddleware, ClientRegistry, token_route
from emulators.common.config import EmulatorConfig
from emulators.common.errors import install_error_handlers
from emulators.common.faults import FaultInjector, FaultMiddleware, admin_routes
from emulators.common.stats import RequestStats, RequestStatsMiddleware, stats_routes
from emulators.common.store import Store
from emulators.common.target import raw_target
from emulators.common.throttle import ServiceProtection, ServiceProtectionMiddleware
from emulators.dataverse.api import DataverseApi
from emulators.dataverse.batching import run_batch
from emulators.dataverse.messages import API_ROOT, ApiRequest, ApiResponse, api_request
from emulators.dataverse.schema import TABLES, ddl
from emulators.dataverse.seed import seed

DEFAULT_PAGE_SIZE = 5000
TOKEN_EXPIRY_DAYS = 7.0
log = logging.getLogger("emulators.dataverse")


def open_store(cfg: EmulatorConfig) -> Store:
    store = Store(cfg.db_path)
    with store.transaction():
        for table in TABLES:
            for statement in ddl(table):
                store.conn.execute(statement)
    if cfg.seed and seed(store):
        log.info("seeded reference data into %s", cfg.db_path)
    return store


def create_app(cfg: EmulatorConfig, token_expiry_days: float = TOKEN_EXPIRY_DAYS) -> Starlette:
    store = open_store(cfg)
    faults = FaultInjector(cfg.faults)
    registry = ClientRegistry(cfg.clients, cfg.token_ttl_seconds)
    api = DataverseApi(store, faults, cfg.max_page_size or DEFAULT_PAGE_SIZE, token_expiry_days)

    async def to_api_request(request: Request) -> ApiRequest:
        return api_request(request.method, raw_target(request.scope), request.headers,
                           await request.body(), request.state.principal,
                           f"{str(request.base_url).rstrip('/')}{API_ROOT}/")

    def to_response(answer: ApiResponse) -> Response:
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    async def batch(request: Request) -> Response:
        return to_response(run_batch(api, await to_api_request(request), cfg.max_batch_requests))

    async def resource(request: Request) -> Response:
        return to_response(api.execute(await to_api_request(request)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    stats = RequestStats(API_ROOT)
    app = Starlette(
        routes=[token_route(registry), *admin_routes(faults), *stats_routes(stats),
                Route(f"{API_ROOT}/$batch", batch, methods=["POST"]),
                Route(f"{API_ROOT}/{{path:path}}", resource, methods=methods),
                Route(API_ROOT, resource, methods=["GET"])],
        middleware=[Middleware(LoopbackAdminMiddleware),
                    Middleware(RequestStatsMiddleware, stats=stats),
                    Middleware(BearerAuthMiddleware, registry=registry),
                    Middleware(ServiceProtectionMiddleware,
                               protection=ServiceProtection(cfg.limits)),
                    Middleware(FaultMiddleware, injector=faults)],
        lifespan=lifespan)
    install_error_handlers(app)
    app.state.store = store
    app.state.faults = faults
    return app
