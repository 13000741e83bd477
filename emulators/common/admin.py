"""The ``/_admin`` surface (faults, request counters, health) answers loopback clients only.

``/_admin`` needs no bearer token (tests and the demo steer the emulator through it while its
API is throttled or faulted), so it is kept off the network instead: whoever can inject faults or
reset counters must be on the emulator's own machine. A client whose address is not a loopback
address (``127.0.0.0/8``, ``::1``, IPv4-mapped loopback) gets 403, even when the emulator
listens on every interface (``--host 0.0.0.0``, as in docker-compose). Inside a container,
``docker compose exec <service> ...`` reaches it on loopback.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from emulators.common.auth import ADMIN_PREFIX
from emulators.common.errors import odata_error_response

__all__ = ["LoopbackAdminMiddleware", "is_loopback"]


def is_loopback(client: tuple[str, int] | None) -> bool:
    """Whether the ASGI ``client`` (host, port) is on this machine; unknown is not."""
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_admin(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


class LoopbackAdminMiddleware:
    """Refuses ``/_admin`` requests from non-loopback clients with 403 (install outermost)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_admin(scope["path"]) and \
                not is_loopback(scope.get("client")):
            response = odata_error_response(
                403, "Forbidden", "The /_admin endpoints answer only clients on the emulator's "
                "own machine (loopback).")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
