"""Session fixtures shared by every tier.

Integration tests need a real Kafka broker: the one named by ``DUALWRITE_KAFKA__BOOTSTRAP_SERVERS``
or, when unset, one this session starts through the same launcher as `dualwrite kafka up`.

`make test` runs the tiers on parallel workers (pytest-xdist, one test module per worker at a
time); each worker starts its own broker and takes its loopback ports from a block of its own,
so two workers never pick the same port.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

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
