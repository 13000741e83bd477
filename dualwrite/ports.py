"""Free loopback ports, one at a time or in runs, for the servers this machine starts (the demo,
benchmarks and tests).

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

import contextlib
import os
import random
import socket
import threading

__all__ = ["PORTS_ENV", "PortBlockError", "free_port", "free_run", "port_block"]

PORTS_ENV = "DUALWRITE_PORTS"
# Without a block, runs of ports are looked for below the kernel's usual ephemeral range (32768+).
_RUN_SPAN = range(20000, 32768)

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


def _run_at(base: int, length: int) -> bool:
    """Whether base..base+length-1 are all free now (each checked by binding it)."""
    with contextlib.ExitStack() as held:
        for port in range(base, base + length):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_run(length: int) -> int:
    """The first of ``length`` consecutive free loopback ports, none given before (a local cluster
    of n nodes takes port..port+2n-1). Taken from the ``DUALWRITE_PORTS`` block when one is set,
    else from below the ephemeral range, where no client socket is handed a port."""
    block = os.environ.get(PORTS_ENV)
    span = port_block(block) if block else _RUN_SPAN
    bases = range(span.start, span.stop - length + 1)
    with _lock:
        if bases:
            offset = random.randrange(len(bases))
            for i in range(len(bases)):
                base = bases[(offset + i) % len(bases)]
                run = range(base, base + length)
                if _given.isdisjoint(run) and _run_at(base, length):
                    _given.update(run)
                    return base
    where = f"{PORTS_ENV}={span.start}-{span.stop - 1}" if block else f"ports {span.start}-{span.stop - 1}"
    raise PortBlockError(f"no {length} consecutive free ports in {where}")
