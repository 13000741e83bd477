"""The Finance emulator's error codes, drawn once.

Every failure is an ``emulators.common.errors.ODataError`` answered as
``{"error": {"code": <code>, "message": <message>}}``. Real FO puts most of its detail in an
``innererror`` of AxODataWriteException; we keep the FO text in ``message`` and use stable codes
so a client can classify without parsing prose:

    status  code                    when
    400     BadRequest              malformed URL, query option, key or body
    400     BadKey                  key segment missing a key field or naming an unknown one
    400     InvalidValue            a field value of the wrong type, size or enum symbol
    400     WriteFailed             FO validation: missing reference, duplicate key, read-only
                                    entity, key change, restricted delete
    400     ActionFailed            a business action refused (finished project, wrong status)
    401     (common auth)           missing/expired bearer token
    404     NotFound                no such entity set, row or action
    405     MethodNotAllowed        e.g. POST on a keyed URL
    412     PreconditionFailed      If-Match etag is stale
    429     TooManyRequests         throttled ("...system is experiencing high resource
                                    utilization"), with Retry-After (also injected storms)
    5xx     (common faults)         injected through /_admin/faults
"""

from __future__ import annotations

from emulators.common.errors import ODataError

__all__ = [
    "ACTION_FAILED",
    "BAD_KEY",
    "BAD_REQUEST",
    "INVALID_VALUE",
    "NOT_FOUND",
    "PRECONDITION_FAILED",
    "THROTTLED",
    "THROTTLE_MESSAGE",
    "WRITE_FAILED",
    "action_failed",
    "bad_request",
    "not_found",
    "write_failed",
]

BAD_REQUEST = "BadRequest"
BAD_KEY = "BadKey"
INVALID_VALUE = "InvalidValue"
WRITE_FAILED = "WriteFailed"
ACTION_FAILED = "ActionFailed"
NOT_FOUND = "NotFound"
PRECONDITION_FAILED = "PreconditionFailed"
THROTTLED = "TooManyRequests"
THROTTLE_MESSAGE = ("The request was throttled because the system is experiencing high resource "
                    "utilization. Retry the request after the period in the Retry-After header.")


def bad_request(message: str, code: str = BAD_REQUEST) -> ODataError:
    return ODataError(400, code, message)


def not_found(message: str) -> ODataError:
    return ODataError(404, NOT_FOUND, message)


def write_failed(table: str, detail: str) -> ODataError:
    """FO's validateWrite failure text: the AOT table name, then the infolog line."""
    return ODataError(400, WRITE_FAILED,
                      f"Write failed for table row of type '{table}'. Infolog: Error: {detail}")


def action_failed(message: str) -> ODataError:
    return ODataError(400, ACTION_FAILED, message)
