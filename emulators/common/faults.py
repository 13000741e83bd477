"""Fault injection for API calls, changeable at run time through ``/_admin/faults``.

Faults never touch ``/_admin`` nor the token endpoint, so tests can always steer and observe
the emulator. Install the middleware inside authentication and service protection: injected
latency then holds a concurrency slot and adds execution time, as a slow server would.
Half of the dropped connections are dropped after the request was processed, so a client
cannot tell whether a dropped write was applied (exactly the ambiguity a real network gives). A dropped connection is a TCP abort with no HTTP response at all; it needs the
``dualwrite.abort`` ASGI extension that :mod:`emulators.common.server` puts in the scope.
Elsewhere (another ASGI server) the fallback sends a status line and then closes the
connection mid-response, which a client also sees as a transport error.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulators.common.auth import is_open_path
from emulators.common.config import FaultConfig
from emulators.common.errors import ODataError, odata_error_response, read_json

ABORT_EXTENSION = "dualwrite.abort"

STORM_CODE = "0x80072322"
STORM_MESSAGE = "Number of requests exceeded the limit of 6000 over time window of 300 seconds."


class DroppedConnection(Exception):
    """Raised after the response has started, so the server closes the connection."""


class FaultInjector:
    """The current fault configuration and the moment the current throttle storm began."""

    def __init__(self, config: FaultConfig, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self._clock = clock
        self._rng = rng or random.Random()
        self._config = config
        self._storm_started = clock()

    @property
    def config(self) -> FaultConfig:
        return self._config

    @property
    def feed_paused(self) -> bool:
        return self._config.feed_paused

    def update(self, changes: dict[str, object]) -> FaultConfig:
        """Apply a partial update; setting ``throttle_storm_seconds`` (re)starts the storm."""
        unknown = set(changes) - set(FaultConfig.model_fields)
        if unknown:
            raise ODataError(400, "0x80048d19", f"Unknown fault settings: {sorted(unknown)}")
        try:
            self._config = FaultConfig.model_validate({**self._config.model_dump(), **changes})
        except ValidationError as exc:
            raise ODataError(400, "0x80048d19", f"Invalid fault settings: {exc}") from exc
        if "throttle_storm_seconds" in changes:
            self._storm_started = self._clock()
        return self._config

    def storm_remaining(self) -> float:
        return max(0.0, self._storm_started + self._config.throttle_storm_seconds - self._clock())

    def draw(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def error_status(self) -> int:
        return self._rng.choice(self._config.error_statuses or (500,))


class FaultMiddleware:
    """Applies latency, dropped connections, 429 storms and 5xx answers to API calls."""

    def __init__(self, app: ASGIApp, injector: FaultInjector,
                 storm_code: str = STORM_CODE, storm_message: str = STORM_MESSAGE) -> None:
        self.app = app
        self.injector = injector
        self.storm_code = storm_code
        self.storm_message = storm_message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        cfg = self.injector.config
        if cfg.latency_ms:
            await asyncio.sleep(cfg.latency_ms / 1000)
        if self.injector.draw(cfg.drop_rate):
            if self.injector.draw(0.5):
                # As on a real network, a lost answer may follow a request that was applied:
                # half the drops happen after the app has done its work.
                await self.app(scope, receive, _discard)
            await _drop(scope, send)
            return
        storm = self.injector.storm_remaining()
        if storm > 0:
            response: Response = odata_error_response(
                429, self.storm_code, self.storm_message,
                {"Retry-After": str(cfg.throttle_retry_after_seconds)})
        elif self.injector.draw(cfg.error_rate):
            status = self.injector.error_status()
            response = odata_error_response(
                status, "0x80040216", "An unexpected error occurred." if status == 500
                else "The service is temporarily unavailable. Please try again later.")
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


async def _discard(message: Message) -> None:
    return None


async def _drop(scope: Scope, send: Send) -> None:
    abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
    if abort is not None:
        abort()
        # Let the transport report the loss so the server knows not to answer a 500.
        for _ in range(3):
            await asyncio.sleep(0)
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    raise DroppedConnection("fault injection: connection dropped")


def admin_routes(injector: FaultInjector) -> list[Route]:
    """``GET/PUT /_admin/faults`` and ``GET /_admin/health``."""

    async def get_faults(request: Request) -> Response:
        return JSONResponse(_describe(injector))

    async def put_faults(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ODataError(400, "0x80048d19", "The fault settings must be a JSON object.")
        injector.update(body)
        return JSONResponse(_describe(injector))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [Route("/_admin/faults", get_faults, methods=["GET"]),
            Route("/_admin/faults", put_faults, methods=["PUT"]),
            Route("/_admin/health", health, methods=["GET"])]


def _describe(injector: FaultInjector) -> dict[str, object]:
    return {**injector.config.model_dump(mode="json"),
            "throttle_storm_remaining_seconds": round(injector.storm_remaining(), 3)}
