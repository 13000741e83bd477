"""Dataverse emulator servers for the contract tests (real subprocesses over loopback HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.emulators import RunningEmulator, start_emulator


@pytest.fixture(scope="package")
def dataverse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One seeded emulator shared by the tests that only add their own uniquely keyed rows."""
    emu = start_emulator("dataverse", tmp_path_factory.mktemp("dataverse"), "--seed")
    yield emu
    emu.stop()


@pytest.fixture(scope="package")
def dv_client(dataverse: RunningEmulator) -> Iterator[httpx.Client]:
    with dataverse.client() as client:
        yield client


@pytest.fixture(scope="module")
def isolated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """A seeded emulator of its own, for tests that change global state (faults, feeds)."""
    emu = start_emulator("dataverse", tmp_path_factory.mktemp("dataverse-isolated"), "--seed")
    yield emu
    emu.stop()
