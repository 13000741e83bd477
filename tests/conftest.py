"""Session fixtures shared by every tier.

Integration tests need a real Kafka broker: the one named by ``DUALWRITE_KAFKA__BOOTSTRAP_SERVERS``
or, when unset, one this session starts through the same launcher as `dualwrite kafka up`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dualwrite.kafka import LocalKafka
from dualwrite.ports import free_port

BOOTSTRAP_ENV = "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"


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
