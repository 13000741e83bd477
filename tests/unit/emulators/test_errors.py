"""Every failure of an emulator app answers OData error JSON, never a stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.common.errors import ODataError, install_error_handlers, read_json

pytestmark = pytest.mark.unit


async def _boom(request: Request) -> Response:
    raise RuntimeError("secret internals")


async def _refuse(request: Request) -> Response:
    raise ODataError(409, "0x1", "Nope", {"X-Why": "because"})


async def _echo(request: Request) -> Response:
    return JSONResponse(await read_json(request))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # In-process ASGI calls: no sockets, the app's own answers only.
    app = Starlette(routes=[Route("/boom", _boom), Route("/refuse", _refuse),
                            Route("/echo", _echo, methods=["POST"])])
    install_error_handlers(app)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        yield client


async def test_unexpected_exception_is_a_generic_500(client: httpx.AsyncClient) -> None:
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "0x80040216", "message": "An unexpected error occurred."}}
    assert "secret" not in response.text


async def test_odata_error_keeps_status_code_and_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/refuse")
    assert (response.status_code, response.headers["X-Why"]) == (409, "because")
    assert response.json() == {"error": {"code": "0x1", "message": "Nope"}}


@pytest.mark.parametrize("body", [b"{bad", b"", b"\xff\xfe"])
async def test_malformed_json_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/echo", content=body)
    assert response.status_code == 400 and set(response.json()["error"]) == {"code", "message"}


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = await client.get("/echo")
    assert wrong.status_code == 405 and "error" in wrong.json()
