"""Reconcile as the oracle of a real pipeline run: once the pipeline drained a scenario, the
command finds both systems in sync (exit 0); a row deleted in the target behind the pipeline's
back is then reported missing under its map (exit 1).

The maps checked are those the scenario's activity flows through from Dataverse to Finance, plus
legal entities. Customers are left out: the seeded Dataverse holds an account (a vendor as
account, ``USPM-000001``) that no Finance customer produces, which reconcile rightly reports as
extra whatever the pipeline does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dualwrite.scenario import Scenario
from dualwrite.stack import Stack
from tests.support.pipeline import drift, running_stack, wait_for

pytestmark = pytest.mark.integration

MAPS = ("legal_entities", "projects", "project_tasks")
DRAIN = 240.0


def run_cli(stack: Stack, report: Path) -> subprocess.CompletedProcess[str]:
    args = [arg for name in MAPS for arg in ("--map", name)]
    return subprocess.run([sys.executable, "-m", "dualwrite", "reconcile", "--json", str(report), *args],
                          env={**os.environ, **stack.env}, capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[3])


def test_reconcile_finds_the_drained_pipeline_in_sync_and_a_deleted_row_missing(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        scenario = Scenario(stack.dataverse(), stack.finance(), seed=11)
        for _ in range(15):
            scenario.step()
        project = scenario.create_project()
        scenario.create_task(project, "1")
        scenario.create_task(project, "1.1", parent="1")
        wait_for(lambda: not drift(stack, MAPS), DRAIN, "reconcile to find every map in sync")

        report = tmp_path / "report.json"
        done = run_cli(stack, report)
        assert done.returncode == 0, done.stdout + done.stderr
        counts = {m["map"]: m["counts"]["in_sync"] for m in json.loads(report.read_text())["maps"]}
        assert counts["projects"] >= 1 and counts["project_tasks"] >= 2

        # Behind the pipeline's back: the child task goes from Finance only.
        fo = stack.finance()
        key = f"ProjectTasks(dataAreaId='usmf',ProjectId='{project}',Task='1.1')"
        assert fo.request("DELETE", key).status_code in (200, 204)
        done = run_cli(stack, report)
        assert done.returncode == 1, done.stdout + done.stderr
        maps = {m["map"]: m for m in json.loads(report.read_text())["maps"]}
        assert [item["key"] for item in maps["project_tasks"]["missing"]] == [
            f"ProjectTasks(ProjectId='{project}',Task='1.1',dataAreaId='usmf')"]
        assert maps["projects"]["in_sync"] is True and maps["legal_entities"]["in_sync"] is True
