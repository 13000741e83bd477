"""Request counting for tests and benchmarks: ``GET /_admin/requests``, ``DELETE`` resets.

Counts every API call (not ``/_admin`` nor the token endpoint) by method and by the first path
segment after the API root (the entity set / collection, ``$batch``, ``ChangeFeed``), so a test can
assert that a replay sent zero writes and a benchmark can report requests per change.
"""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestStats", "RequestStatsMiddleware", "stats_routes"]

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class RequestStats:
    def __init__(self, api_root: str) -> None:
        self.api_root = api_root.rstrip("/")
        self.by_method: Counter[str] = Counter()
        self.by_target: Counter[str] = Counter()

    def target(self, path: str) -> str | None:
        if not path.startswith(self.api_root + "/"):
            return None
        rest = path[len(self.api_root) + 1:]
        return rest.split("/", 1)[0].split("(", 1)[0] or None

    def record(self, method: str, path: str) -> None:
        target = self.target(path)
        if target is None:
            return
        self.by_method[method] += 1
        self.by_target[f"{method} {target}"] += 1

    def snapshot(self) -> dict[str, object]:
        writes = sum(n for m, n in self.by_method.items() if m in WRITE_METHODS)
        return {"total": sum(self.by_method.values()), "writes": writes,
                "by_method": dict(self.by_method), "by_target": dict(self.by_target)}

    def reset(self) -> None:
        self.by_method.clear()
        self.by_target.clear()


class RequestStatsMiddleware:
    """Pure ASGI middleware recording each HTTP request before it is handled."""

    def __init__(self, app: ASGIApp, stats: RequestStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.stats.record(scope["method"], scope["path"])
        await self.app(scope, receive, send)


def stats_routes(stats: RequestStats) -> list[Route]:
    async def get_stats(request: Request) -> JSONResponse:
        return JSONResponse(stats.snapshot())

    async def reset_stats(request: Request) -> JSONResponse:
        stats.reset()
        return JSONResponse(stats.snapshot())

    return [Route("/_admin/requests", get_stats, methods=["GET"]),
            Route("/_admin/requests", reset_stats, methods=["DELETE"])]
