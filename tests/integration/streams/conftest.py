"""Fixtures of the streams integration tests: isolated topics and a worker process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.streams.harness import Cdc, Reader, WorkerProcess, create_topics


@pytest.fixture
def prefix(kafka_bootstrap: str, unique: str) -> str:
    name = f"t{unique}."
    create_topics(kafka_bootstrap, name)
    return name


@pytest.fixture
def worker(kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path,
           request: pytest.FixtureRequest) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path / "state",
                         tmp_path / "worker.log")
    if request.node.get_closest_marker("faust_agents"):
        proc.env["DUALWRITE_PROCESSOR__ENGINE"] = "faust"
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def cdc(kafka_bootstrap: str, prefix: str) -> Cdc:
    return Cdc(kafka_bootstrap, prefix)


@pytest.fixture
def finance_commands(kafka_bootstrap: str, prefix: str, unique: str) -> Iterator[Reader]:
    reader = Reader(kafka_bootstrap, prefix + "sync.commands.finance", f"rd-{unique}")
    yield reader
    reader.close()
