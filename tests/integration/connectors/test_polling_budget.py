"""Sources polling the emulators stay well inside one user's service-protection budget while
idle, and still capture a change: counted at the emulators, never timed tighter than the cap."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.polling import BUDGET_RPS, GOAL_SHARE, SOURCES, measure_idle, wait_for_snapshots
from streams.maps import default_registry
from tests.support.pipeline import admin, read_topic, running_stack, wait_for
from topics import decode_event

pytestmark = pytest.mark.integration

SETTLE_S = 45.0  # hot window (10 s) and the doubling ramp to the idle cap
# A table idle at period P is polled at most floor(W / P) + 1 times in a window W: with about 20
# tables per source (P = 25 s at 0.8 requests/s), 45 s counts at most 2 polls per table (0.9/s),
# where 60 s could count 3 (1.0/s, the limit).
WINDOW_S = 45.0
IDLE_MAX_S = 30.0  # the longest an idle table waits: 10 s, or tables / 0.8 requests/s (17: 21 s)


def test_idle_sources_stay_under_a_tenth_of_the_budget_and_still_capture_a_change(tmp_path: Path) -> None:
    with running_stack(tmp_path, pipeline=False) as stack:
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        stack.start_pipeline(SOURCES)
        wait_for_snapshots(bootstrap, len(default_registry().cdc_tables()))
        time.sleep(SETTLE_S)
        figures = measure_idle(stack, WINDOW_S)
        for figure in figures:
            # All idle tables of a source together cost at most 0.8 requests/s, however many
            # the maps capture (17 Dataverse tables at a 10 s cap would be 1.7); the old fixed
            # 2 s poll of all 21 tables would be 10.5.
            assert figure.rps <= GOAL_SHARE * BUDGET_RPS[figure.target] / 2, figure
            assert figure.requests >= 1, figure  # it does poll

        # A change on an idle table is captured within the idle cap (plus generous slack) ...
        dv = stack.dataverse()
        with admin(stack.dv_url) as client:
            client.delete("/requests")
            dv.request("POST", "cdm_companies", json={"cdm_companycode": "ZQ1", "cdm_name": "Polled"}
                       ).raise_for_status()

            def captured(code: str) -> bool:
                events = [decode_event(m.value()) for m in read_topic(bootstrap, "dataverse.cdc.cdm_companies")
                          if m.value()]
                return any(e and (e.after or {}).get("cdm_companycode") == code for e in events)

            wait_for(lambda: captured("ZQ1"), IDLE_MAX_S + 30, "the change on the idle table")
            # ... and the table is active now: polled tightly (counted, not timed).
            time.sleep(3.0)
            polls = client.get("/requests").json()["by_target"].get("GET cdm_companies", 0)
            assert polls >= 5, polls  # at the idle cap it would be one in 30 s
            dv.request("POST", "cdm_companies", json={"cdm_companycode": "ZQ2", "cdm_name": "Active"}
                       ).raise_for_status()
            wait_for(lambda: captured("ZQ2"), IDLE_MAX_S, "the change on the active table")
