"""Building blocks shared by the Dataverse and Finance emulators.

One concept per module: ``errors`` (OData error bodies), ``auth`` (client-credentials tokens,
bearer middleware), ``admin`` (``/_admin`` for loopback clients only), ``throttle`` (service
protection limits), ``faults`` (fault injection and admin routes), ``query`` (OData query options
to SQL), ``target`` (request URLs: one parser for plain requests and ``$batch`` parts),
``batch`` (``$batch`` wire format), ``store`` (SQLite, transactions, change log) and ``server``
(uvicorn runner).
"""

from emulators.common.auth import BearerAuthMiddleware, ClientRegistry, is_open_path, token_route
from emulators.common.batch import (
    BatchPart,
    BatchRequest,
    BatchResponse,
    BatchResponsePart,
    ChangeSet,
    ChangeSetResponse,
    count_requests,
    format_batch,
    format_batch_request,
    parse_batch,
    parse_batch_response,
)
from emulators.common.config import EmulatorConfig, FaultConfig, ServiceLimits
from emulators.common.errors import (
    ODataError,
    install_error_handlers,
    odata_error_response,
    parse_json,
    read_json,
)
from emulators.common.faults import FaultInjector, FaultMiddleware, admin_routes
from emulators.common.query import Query, normalise_datetime, parse_filter, parse_query
from emulators.common.stats import RequestStats, RequestStatsMiddleware, stats_routes
from emulators.common.store import Change, Store, Transaction, open_db, utc_now
from emulators.common.throttle import (
    DATAVERSE_ERROR_CODES,
    DATAVERSE_MESSAGES,
    Rejection,
    ServiceProtection,
    ServiceProtectionMiddleware,
    format_code,
)

__all__ = [
    "DATAVERSE_ERROR_CODES",
    "DATAVERSE_MESSAGES",
    "BatchPart",
    "BatchRequest",
    "BatchResponse",
    "BatchResponsePart",
    "BearerAuthMiddleware",
    "Change",
    "ChangeSet",
    "ChangeSetResponse",
    "ClientRegistry",
    "EmulatorConfig",
    "FaultConfig",
    "FaultInjector",
    "FaultMiddleware",
    "ODataError",
    "Query",
    "Rejection",
    "RequestStats",
    "RequestStatsMiddleware",
    "ServiceLimits",
    "ServiceProtection",
    "ServiceProtectionMiddleware",
    "Store",
    "Transaction",
    "admin_routes",
    "count_requests",
    "format_batch",
    "format_batch_request",
    "format_code",
    "install_error_handlers",
    "is_open_path",
    "normalise_datetime",
    "odata_error_response",
    "open_db",
    "parse_batch",
    "parse_batch_response",
    "parse_filter",
    "parse_json",
    "parse_query",
    "read_json",
    "stats_routes",
    "token_route",
    "utc_now",
]
