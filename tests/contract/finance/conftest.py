"""One seeded Finance emulator per test module, reached only over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.emulators import RunningEmulator, start_emulator


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    running = start_emulator("finance", Path(tmp_path_factory.mktemp("finance")), "--seed")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fo(emu: RunningEmulator) -> Iterator[httpx.Client]:
    with emu.client() as client:
        yield client
