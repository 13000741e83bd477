"""A map added in a test registry (and nowhere else) is provisioned, captured, processed and
written: the registry is the one declaration the sources, the catalog and the worker follow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dualwrite.stack import PIPELINE
from streams.maps import default_registry
from tests.integration.connectors.registry import REGISTRY
from tests.support.pipeline import admin, read_topic, running_stack, wait_for
from topics import decode_event

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[3]
MAPS_ENV = {"DUALWRITE_PROCESSOR__MAPS": "tests.integration.connectors.registry:REGISTRY",
            "PYTHONPATH": str(ROOT)}
NEW_TABLES = {("finance", "OperatingUnits"), ("dataverse", "msdyn_organizationalunits")}
CAPTURED_DV = {ep.table for ep in REGISTRY.captured("dataverse")}


def test_a_map_declared_only_in_a_test_registry_is_captured_processed_and_written(tmp_path: Path) -> None:
    # The test map's tables must be ones the default registry (provisioned by the stack) lacks.
    assert not NEW_TABLES & set(default_registry().cdc_tables())
    assert set(REGISTRY.cdc_tables()) >= NEW_TABLES
    with running_stack(tmp_path, pipeline=False, extra_env=MAPS_ENV) as stack:
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        applied = subprocess.run([sys.executable, "-m", "dualwrite", "topics", "apply"], env=stack.sup.base_env,
                                 capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert applied.returncode == 0, applied.stderr
        # The catalog derived from the registry holds the new map's tables (and no others).
        created = {line.split()[-1] for line in applied.stderr.splitlines() if line.startswith("created ")}
        assert created == {"finance.cdc.operatingunits", "dataverse.cdc.msdyn_organizationalunits"}, \
            applied.stderr

        stack.start_pipeline(PIPELINE)
        fo, dv = stack.finance(), stack.dataverse()
        response = fo.request("POST", "OperatingUnits", json={
            "OperatingUnitNumber": "OU-REG-1", "Name": "Registry Unit", "OperatingUnitType": "Department"})
        assert response.status_code < 300, response.text

        def arrived() -> list[dict[str, object]]:
            return dv.get_all("msdyn_organizationalunits", {"$filter": "msdyn_name eq 'Registry Unit'"})

        (row,) = wait_for(arrived, 180, "the new organizational unit in Dataverse")
        assert row["msdyn_currency"] == "USD"

        # Captured by the Finance source (its CDC topic), and the written row seen back by the
        # Dataverse source on the target's own feed, keyed by the declared primary key.
        finance_events = [decode_event(m.value()) for m in read_topic(bootstrap, "finance.cdc.operatingunits")
                          if m.value()]
        assert any(e and (e.after or {}).get("OperatingUnitNumber") == "OU-REG-1" for e in finance_events)

        def echoed() -> bool:
            keys = {m.key() for m in read_topic(bootstrap, "dataverse.cdc.msdyn_organizationalunits")}
            return any(str(row["msdyn_organizationalunitid"]) in (k or b"").decode() for k in keys)

        wait_for(echoed, 60, "the written unit on dataverse.cdc.msdyn_organizationalunits")

        # The Dataverse source read only the tables the registry derives.
        with admin(stack.dv_url) as client:
            gets = {target.split(" ", 1)[1] for target in client.get("/requests").json()["by_target"]
                    if target.startswith("GET ")}
        assert gets - {"$metadata"} <= CAPTURED_DV, gets
