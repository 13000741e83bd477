"""Service protection limits: per-principal sliding windows of requests and execution time,
plus a concurrency cap, answered with 429 and ``Retry-After`` like Dataverse.

As in Dataverse, the request and execution-time limits bite only once the window is already
exceeded, the concurrency limit bites immediately, and rejected requests are not counted.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulators.common.auth import is_open_path
from emulators.common.config import ServiceLimits
from emulators.common.errors import odata_error_response

REQUESTS = "requests"
EXECUTION_TIME = "execution_time"
CONCURRENCY = "concurrency"

DATAVERSE_ERROR_CODES: dict[str, int | str] = {
    REQUESTS: -2147015902, EXECUTION_TIME: -2147015903, CONCURRENCY: -2147015898,
}
# Formatted with the active limits: {requests}, {window}, {execution_ms}, {concurrent}.
DATAVERSE_MESSAGES: dict[str, str] = {
    REQUESTS: "Number of requests exceeded the limit of {requests} over time window of "
              "{window} seconds.",
    EXECUTION_TIME: "Combined execution time of incoming requests exceeded limit of "
                    "{execution_ms} milliseconds over time window of {window} seconds. Decrease "
                    "number of concurrent requests or reduce the duration of requests and try "
                    "again later.",
    CONCURRENCY: "Number of concurrent requests exceeded the limit of {concurrent}.",
}


@dataclass(frozen=True)
class Rejection:
    """Why a request was refused and when the client may try again."""

    kind: str
    retry_after: int


@dataclass
class _Usage:
    calls: deque[tuple[float, float]] = field(default_factory=deque)  # (finished at, seconds)
    started: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class ServiceProtection:
    """Accounting of one web server's limits; all times come from the injected clock."""

    def __init__(self, limits: ServiceLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._usage: dict[str, _Usage] = {}

    def _prune(self, usage: _Usage, now: float) -> None:
        horizon = now - self.limits.window_seconds
        while usage.started and usage.started[0] <= horizon:
            usage.started.popleft()
        while usage.calls and usage.calls[0][0] <= horizon:
            usage.calls.popleft()

    def admit(self, principal: str) -> Rejection | None:
        """Count a request in, or say why it is refused. Admitted requests must ``release``."""
        now = self.clock()
        usage = self._usage.setdefault(principal, _Usage())
        self._prune(usage, now)
        window = self.limits.window_seconds
        if usage.in_flight >= self.limits.max_concurrent:
            return Rejection(CONCURRENCY, 1)
        if len(usage.started) >= self.limits.requests_per_window:
            # The window frees a slot when the oldest counted request slides out of it.
            excess = len(usage.started) - self.limits.requests_per_window
            return Rejection(REQUESTS, _seconds(usage.started[excess] + window - now))
        spent = sum(seconds for _, seconds in usage.calls)
        if spent >= self.limits.execution_seconds_per_window:
            over = spent - self.limits.execution_seconds_per_window
            freed = 0.0
            for finished, seconds in usage.calls:
                freed += seconds
                if freed > over:
                    return Rejection(EXECUTION_TIME, _seconds(finished + window - now))
        usage.started.append(now)
        usage.in_flight += 1
        return None

    def requests_remaining(self, principal: str) -> int:
        usage = self._usage.get(principal)
        used = len(usage.started) if usage is not None else 0
        return max(0, self.limits.requests_per_window - used)

    def release(self, principal: str, execution_seconds: float) -> None:
        usage = self._usage.setdefault(principal, _Usage())
        usage.in_flight = max(0, usage.in_flight - 1)
        usage.calls.append((self.clock(), execution_seconds))


def _seconds(delay: float) -> int:
    return max(1, math.ceil(delay))


def format_code(code: int | str) -> str:
    """Dataverse writes its int32 error codes as unsigned hex in error bodies (0x80072322)."""
    if isinstance(code, int):
        return f"0x{code & 0xFFFFFFFF:08x}"
    return code


class ServiceProtectionMiddleware:
    """Applies ``protection`` to every API request of an authenticated principal."""

    def __init__(self, app: ASGIApp, protection: ServiceProtection,
                 error_codes: dict[str, int | str] | None = None,
                 messages: dict[str, str] | None = None) -> None:
        self.app = app
        self.protection = protection
        self.error_codes = {**DATAVERSE_ERROR_CODES, **(error_codes or {})}
        self.messages = {**DATAVERSE_MESSAGES, **(messages or {})}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("state", {}).get("principal")
        if scope["type"] != "http" or principal is None or is_open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        rejection = self.protection.admit(principal)
        if rejection is not None:
            limits = self.protection.limits
            message = self.messages[rejection.kind].format(
                requests=limits.requests_per_window, window=f"{limits.window_seconds:g}",
                execution_ms=f"{limits.execution_seconds_per_window * 1000:,.0f}",
                concurrent=limits.max_concurrent)
            response = odata_error_response(
                429, format_code(self.error_codes[rejection.kind]), message,
                {"Retry-After": str(rejection.retry_after)})
            await response(scope, receive, send)
            return
        started = self.protection.clock()
        remaining = self.protection.requests_remaining(principal)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-ms-ratelimit-burst-remaining-xrm-requests",
                                str(remaining).encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            self.protection.release(principal, self.protection.clock() - started)
