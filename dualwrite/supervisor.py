"""Run the pipeline's processes as children: start, watch, kill, restart, stop.

Used by `dualwrite demo` and by the integration and chaos tests, so what the tests kill is what
users run. Each child logs to its own file. Children started with ``restart=True`` are restarted
when they exit with a non-zero code (like `restart: on-failure` in docker-compose): the worker
exits 75 on purpose when it must re-read its input. Every start is counted and shown.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["Child", "ChildFailed", "Supervisor"]


class ChildFailed(RuntimeError):
    """A child exited or never became ready; the message carries its log tail."""


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready: Callable[[], bool] | None = None
    restart: bool = False
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    stopped: bool = False  # stopped on purpose: never restarted behind the caller's back
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class Supervisor:
    """A group of child processes sharing a base environment and a log directory."""

    def __init__(self, log_dir: Path, base_env: Mapping[str, str] | None = None) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.base_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(base_env or {})}
        self.children: dict[str, Child] = {}
        self._lock = threading.RLock()
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None

    @staticmethod
    def dualwrite(*args: str) -> list[str]:
        """argv of a `dualwrite` sub-command run by this interpreter."""
        return [sys.executable, "-m", "dualwrite", *args]

    def start(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None,
              ready: Callable[[], bool] | None = None, timeout: float = 60.0,
              restart: bool = False) -> Child:
        child = Child(name, argv, {**self.base_env, **(env or {})}, self.log_dir / f"{name}.log",
                      ready, restart)
        with self._lock:
            self.children[name] = child
            self._spawn(child, timeout)
        return child

    def watch(self, interval: float = 0.5) -> None:
        """Restart children with ``restart=True`` that exited non-zero, until `stop_all`."""
        if self._watcher is not None:
            return
        self._watching.set()

        def loop() -> None:
            while self._watching.is_set():
                with self._lock:
                    for child in self.children.values():
                        failed = (child.process is not None and not child.alive
                                  and child.process.returncode != 0)
                        if child.restart and not child.stopped and failed:
                            self._close_log(child)
                            self._spawn(child, 60.0)
                time.sleep(interval)

        self._watcher = threading.Thread(target=loop, name="supervisor-watch", daemon=True)
        self._watcher.start()

    def _spawn(self, child: Child, timeout: float) -> None:
        child._log = open(child.log_path, "ab")  # noqa: SIM115 - closed when the child stops
        child.process = subprocess.Popen(child.argv, env=child.env, stdout=child._log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        child.starts += 1
        if child.ready is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not child.alive:
                raise ChildFailed(f"{child.name} exited with {child.process.returncode}:\n"
                                  f"{child.log_tail()}")
            try:
                if child.ready():
                    return
            except Exception:  # not ready yet, whatever the probe raised
                pass
            time.sleep(0.2)
        raise ChildFailed(f"{child.name} not ready within {timeout:.0f}s:\n{child.log_tail()}")

    @staticmethod
    def _close_log(child: Child) -> None:
        if child._log is not None:
            child._log.close()
            child._log = None

    def kill(self, name: str, sig: int = signal.SIGKILL, wait: float = 30.0) -> None:
        """Stop one child on purpose (it stays stopped until `restart`)."""
        with self._lock:
            child = self.children[name]
            child.stopped = True
            if child.process is not None and child.alive:
                child.process.send_signal(sig)
                try:
                    child.process.wait(wait)
                except subprocess.TimeoutExpired:
                    child.process.kill()
                    child.process.wait(wait)
            self._close_log(child)

    def restart(self, name: str, timeout: float = 60.0) -> Child:
        """SIGKILL one child (if it runs) and start it again."""
        with self._lock:
            child = self.children[name]
            self.kill(name, signal.SIGKILL)
            child.stopped = False
            self._spawn(child, timeout)
            return child

    def dead(self) -> list[Child]:
        """Children that exited although nobody stopped them and nobody will restart them."""
        with self._lock:
            return [c for c in self.children.values()
                    if c.process is not None and not c.alive and not c.stopped
                    and not (c.restart and c.process.returncode != 0 and self._watching.is_set())]

    def stop_all(self, grace: float = 15.0) -> None:
        """SIGTERM everyone (newest first), then SIGKILL whoever is still there after `grace`."""
        self._watching.clear()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None
        for child in self.children.values():
            child.stopped = True
        for child in reversed(list(self.children.values())):
            if child.alive and child.process is not None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in reversed(list(self.children.values())):
            if child.process is None:
                continue
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(10)
            self._close_log(child)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()
