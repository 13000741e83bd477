"""Real emulator processes on loopback, one per module, and connector objects pointed at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from connectors.common.http import HttpConfig
from connectors.dataverse import DataverseConnection
from connectors.finance import FinanceConnection
from tests.support.emulators import RunningEmulator, start_emulator

# Fast retries so fault tests finish in seconds; Retry-After is still obeyed exactly.
FAST = HttpConfig(max_attempts=12, backoff_base_s=0.05, backoff_cap_s=0.5, timeout_s=10.0)


@pytest.fixture(scope="module")
def dataverse_emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    emu = start_emulator("dataverse", Path(tmp_path_factory.mktemp("dv")), "--seed")
    yield emu
    emu.stop()


@pytest.fixture(scope="module")
def finance_emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    emu = start_emulator("finance", Path(tmp_path_factory.mktemp("fo")), "--seed")
    yield emu
    emu.stop()


def set_faults(emu: RunningEmulator, **faults: object) -> None:
    with emu.admin() as admin:
        admin.put("/faults", json=faults).raise_for_status()


def reset_faults(emu: RunningEmulator) -> None:
    set_faults(emu, error_rate=0.0, throttle_storm_seconds=0.0, drop_rate=0.0, feed_paused=False)


def dataverse_conn(emu: RunningEmulator) -> DataverseConnection:
    return DataverseConnection(url=emu.base_url, token_url=emu.token_url, client_id=emu.client_id,
                               client_secret=SecretStr(emu.client_secret), http=FAST)


def finance_conn(emu: RunningEmulator) -> FinanceConnection:
    return FinanceConnection(url=emu.base_url, token_url=emu.token_url, client_id=emu.client_id,
                             client_secret=SecretStr(emu.client_secret), http=FAST)
