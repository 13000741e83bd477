"""Session fixtures shared by every tier.

Integration tests need a real Kafka broker: the one named by ``DUALWRITE_KAFKA__BOOTSTRAP_SERVERS``
or, when unset, one this session starts through the same launcher as `dualwrite kafka up`.

`make test` runs the tiers on parallel workers (pytest-xdist, one test module per worker at a
time); each worker starts its own broker and takes its loopback ports from a block of its own,
so two workers never pick the same port.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from dualwrite.kafka import LocalKafka
from dualwrite.ports import PORTS_ENV, free_port

BOOTSTRAP_ENV = "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"
PORT_BLOCKS_START, PORT_BLOCK_SIZE = 20000, 1500  # 8 workers' blocks end below the ephemeral range


def pytest_configure(config: pytest.Config) -> None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... under pytest-xdist
    if worker.startswith("gw") and worker[2:].isdigit() and PORTS_ENV not in os.environ:
        first = PORT_BLOCKS_START + int(worker[2:]) * PORT_BLOCK_SIZE
        os.environ[PORTS_ENV] = f"{first}-{first + PORT_BLOCK_SIZE - 1}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``interpreted`` patch functions that compiled modules call directly (a patch
    they would not see): deselected, not skipped, while `streams.native` has them compiled.
    `make test` runs them in its interpreted pass (``DUALWRITE_NATIVE=0``)."""
    from streams import native

    if not native.status().startswith("compiled"):
        return
    kept = [item for item in items if item.get_closest_marker("interpreted") is None]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real broker for this test session."""
    given = os.environ.get(BOOTSTRAP_ENV)
    if given:
        yield given
        return
    port = free_port()
    controller = free_port()
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), port=port, controller_port=controller)
    broker.up(timeout=120)
    os.environ[BOOTSTRAP_ENV] = broker.bootstrap  # child processes inherit the address
    try:
        yield broker.bootstrap
    finally:
        os.environ.pop(BOOTSTRAP_ENV, None)
        broker.down()


@pytest.fixture
def unique() -> str:
    """A short random suffix for topic names, group ids and app ids."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


NOTEWORTHY = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|worker stuck|exited|restart")
NOISE = re.compile(r"producer buffer full")
LINES_PER_LOG = 15


def noteworthy_lines(log_dir: Path) -> str:
    """The last warnings and errors of every process log of a stack, for a failed test's report:
    CI keeps only the test output, not the logs, and a pipeline that stalled says why there."""
    out = []
    for log in sorted(log_dir.glob("*.log")):
        with log.open(errors="replace") as f:
            hits = [line.rstrip()[:300] for line in f if NOTEWORTHY.search(line) and not NOISE.search(line)]
        if hits:
            out.append(f"--- {log.name}: {len(hits)} noteworthy lines, the last {min(len(hits), LINES_PER_LOG)}")
            out.extend(hits[-LINES_PER_LOG:])
    return "\n".join(out) or f"no warnings in {log_dir}"


STACK_LINES = 80


def thread_stacks(children: dict[str, Any]) -> str:
    """Where each running process of a stack is now: SIGUSR1 makes it print every thread's
    stack into its log (`dualwrite.cli.main`) and go on; what it printed, per process."""
    sizes = {}
    for name, child in children.items():
        if child.alive:
            sizes[name] = child.log_path.stat().st_size
            os.kill(child.process.pid, signal.SIGUSR1)
    time.sleep(1.0)
    out = []
    for name, size in sizes.items():
        with children[name].log_path.open("rb") as f:
            f.seek(size)
            lines = f.read().decode(errors="replace").splitlines()
        dump = [line for line in lines if line.startswith(("Thread 0x", "Current thread 0x", "  File "))]
        out.append(f"--- {name}")
        out.extend(dump[:STACK_LINES])
    return "\n".join(out) or "no process running"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.when == "call":
        stack = getattr(item, "funcargs", {}).get("stack")
        sup = getattr(stack, "sup", None)
        log_dir = getattr(sup, "log_dir", None)
        if isinstance(log_dir, Path) and log_dir.is_dir():
            report.sections.append(("process logs (warnings and worse)", noteworthy_lines(log_dir)))
            with contextlib.suppress(Exception):  # a diagnosis must never hide the failure itself
                report.sections.append(("process thread stacks (SIGUSR1)", thread_stacks(getattr(sup, "children", {}))))
    return report
