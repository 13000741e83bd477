"""Run an emulator app with uvicorn on the configured interface and port."""

from __future__ import annotations

import logging
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from emulators.common.config import EmulatorConfig
from emulators.common.faults import ABORT_EXTENSION

log = logging.getLogger("emulators.server")


class AbortableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus an ASGI extension that aborts the TCP connection.

    ASGI has no message for "hang up without answering"; fault injection needs exactly that.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner: ASGIApp = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            scope.setdefault("extensions", {})[ABORT_EXTENSION] = self._abort
            await inner(scope, receive, send)

        self.app = app

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def serve(app: ASGIApp, cfg: EmulatorConfig) -> None:
    """Serve ``app`` until SIGINT/SIGTERM (uvicorn finishes in-flight requests, then exits)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Bind first so a port of 0 can be reported as the real one.
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose listening
    # socket names the protocol, and without it every response with a body waits ~40 ms on
    # delayed ACKs (Nagle), capping a connection at ~22 writes/s.
    sock = socket.socket(socket.AF_INET6 if ":" in cfg.host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((cfg.host, cfg.port))
    host, port = sock.getsockname()[:2]
    log.info("emulator listening on http://%s:%d (db %s)", host, port, cfg.db_path)
    config = uvicorn.Config(app, http=AbortableH11Protocol, log_level="info", access_log=False,
                            timeout_graceful_shutdown=10, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
