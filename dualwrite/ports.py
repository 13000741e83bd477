"""Free loopback ports for the servers this machine starts (the demo, benchmarks and tests).

The kernel may hand the same ephemeral port to two probes in a row once the first probe's
socket is closed. A broker given one port as both its client and its controller port refuses to
start, so a port is never handed out twice in one process.
"""

from __future__ import annotations

import socket
import threading

__all__ = ["free_port"]

_given: set[int] = set()
_lock = threading.Lock()


def _probe() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port() -> int:
    """A loopback TCP port nothing listens on now and this process has not been given before."""
    with _lock:
        while True:
            port = _probe()
            if port not in _given:
                _given.add(port)
                return port
