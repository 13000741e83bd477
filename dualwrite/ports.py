"""Free loopback ports for the servers this machine starts (the demo, benchmarks and tests).

The kernel may hand the same ephemeral port to two probes in a row once the first probe's
socket is closed. A broker given one port as both its client and its controller port refuses to
start, so a port is never handed out twice in one process.

Two processes probing at once (test runs in parallel) can still be handed the same port by the
kernel, each before the other's server binds it. ``DUALWRITE_PORTS=START-END`` gives a process a
block of its own: ports are then taken from that block only (below the kernel's ephemeral range,
so no client socket takes them either), each checked free by binding it. The test suite gives
each of its parallel workers a separate block.
"""

from __future__ import annotations

import os
import random
import socket
import threading

__all__ = ["PORTS_ENV", "PortBlockError", "free_port", "port_block"]

PORTS_ENV = "DUALWRITE_PORTS"

_given: set[int] = set()
_lock = threading.Lock()


class PortBlockError(ValueError):
    """``DUALWRITE_PORTS`` is not ``START-END`` within 1024-65535, or every port in it is taken."""


def port_block(text: str) -> range:
    """The ports of a ``START-END`` block, both ends included (pure)."""
    start, sep, end = text.partition("-")
    try:
        first, last = int(start), int(end)
    except ValueError:
        first = last = 0
    if not sep or not 1024 <= first <= last <= 65535:
        raise PortBlockError(f"{PORTS_ENV}={text!r} is not a block START-END of ports within 1024-65535")
    return range(first, last + 1)


def _bind(port: int) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        return int(sock.getsockname()[1])


def _from_block(block: range) -> int:
    # A random start, so a child process given the same block rarely walks the parent's ports.
    offset = random.randrange(len(block))
    for i in range(len(block)):
        port = block[(offset + i) % len(block)]
        if port in _given:
            continue
        try:
            return _bind(port)
        except OSError:
            continue
    raise PortBlockError(f"every port of {PORTS_ENV}={block.start}-{block.stop - 1} is taken")


def free_port() -> int:
    """A loopback TCP port nothing listens on now and this process has not been given before."""
    block = os.environ.get(PORTS_ENV)
    with _lock:
        while True:
            port = _from_block(port_block(block)) if block else _bind(0)
            if port not in _given:
                _given.add(port)
                return port
