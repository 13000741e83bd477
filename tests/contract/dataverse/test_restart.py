"""The SQLite file keeps data, versions and delta tokens across a restart."""

from __future__ import annotations

import pytest

from tests.contract.dataverse.helpers import delta_start, follow, project
from tests.support.emulators import start_emulator

pytestmark = pytest.mark.contract


def test_data_and_delta_links_survive_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    emu = start_emulator("dataverse", tmp_path_factory.mktemp("restart"), "--seed")
    try:
        with emu.client() as client:
            link = delta_start(client, "msdyn_projects")
            pid = project(client)
            version = client.get(f"msdyn_projects({pid})").json()["versionnumber"]
        emu.restart()
        with emu.client() as client:  # tokens are per process: a new one is needed
            row = client.get(f"msdyn_projects({pid})").json()
            assert row["versionnumber"] == version
            entries, _ = follow(client, link.replace(link.split("/api/")[0], emu.base_url))
            assert [e["msdyn_projectid"] for e in entries] == [pid]
            assert len(client.get("cdm_companies").json()["value"]) == 2  # seeded once only
            later = project(client)
            assert client.get(f"msdyn_projects({later})").json()["versionnumber"] > version
    finally:
        emu.stop()
