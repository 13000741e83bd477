"""OData error bodies and the handlers that make every failure answer one.

Both services answer failures as ``{"error": {"code": ..., "message": ...}}``. The emulators
must never leak a stack trace or an HTML page: a client written against them has to cope only
with what the real services send.
"""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("emulators.errors")


class ODataError(Exception):
    """A failure to answer as an OData error (raised anywhere inside a request)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    def response(self) -> JSONResponse:
        return odata_error_response(self.status, self.code, self.message, self.headers)


def odata_error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def odata_error_response(status: int, code: str, message: str,
                         headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(odata_error_body(code, message), status_code=status, headers=headers)


async def _on_odata_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ODataError)
    return exc.response()


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return odata_error_response(404, "0x80060888",
                                    f"Resource not found for the segment '{request.url.path}'.")
    if exc.status_code == 405:
        return odata_error_response(405, "0x80060888",
                                    f"The HTTP method '{request.method}' is not allowed "
                                    f"for '{request.url.path}'.", dict(exc.headers or {}))
    return odata_error_response(exc.status_code, str(exc.status_code), str(exc.detail),
                                dict(exc.headers or {}))


async def _on_bad_json(request: Request, exc: Exception) -> Response:
    return odata_error_response(400, "0x80048d19", f"Error parsing the request body: {exc}")


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return odata_error_response(500, "0x80040216", "An unexpected error occurred.")


def install_error_handlers(app: Starlette) -> None:
    """Route every failure of ``app`` to an OData error body (500s are logged, never echoed)."""
    app.add_exception_handler(ODataError, _on_odata_error)
    app.add_exception_handler(HTTPException, _on_http_exception)
    app.add_exception_handler(json.JSONDecodeError, _on_bad_json)
    app.add_exception_handler(Exception, _on_unexpected)


async def read_json(request: Request) -> object:
    """The request body as JSON; malformed or non-UTF-8 bodies are a 400 OData error."""
    raw = await request.body()
    return parse_json(raw)


def parse_json(raw: bytes) -> object:
    if not raw.strip():
        raise ODataError(400, "0x80048d19", "Error parsing the request body: the body is empty.")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # nesting too deep
        raise ODataError(400, "0x80048d19", f"Error parsing the request body: {exc}") from exc
