"""`dualwrite replay` against a live pipeline: one stack for the module, the tests in order.

After a small run (projects and tasks created, a project renamed, a task deleted, drained):
replaying every map re-drives nothing and the emulators take no write; a task row deleted and
another edited by hand in Finance (the people's principal, not the sink's) are listed by
``--repair --dry-run``, which produces nothing; ``--repair`` then restores exactly those two
rows, and Finance's change feed shows no other row written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dualwrite.scenario import Scenario
from dualwrite.stack import Stack
from tests.support.pipeline import admin, caught_up, drift, quiet, running_stack, wait_for
from topics import cdc_topic

pytestmark = pytest.mark.integration

DRAIN = 240.0
MAPS = ("projects", "project_tasks")
TASKS_TOPIC = cdc_topic("dataverse", "msdyn_projecttasks")
FEED_TOPIC = cdc_topic("finance", "ProjectTasks")
GATE_TOPIC = "dualwrite-streams-gate"


@dataclass
class Run:
    stack: Stack
    scenario: Scenario
    first: str
    second: str
    edited_from: dict[str, Any] | None = None  # the task row before the hand edit

    @property
    def bootstrap(self) -> str:
        return self.stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with running_stack(tmp_path_factory.mktemp("replay")) as stack:
        scenario = Scenario(stack.dataverse(), stack.finance(), seed=19)
        first, second = scenario.create_project(), scenario.create_project()
        for project, wbs in ((first, "1"), (first, "2"), (second, "1")):
            scenario.create_task(project, wbs)
        scenario.rename_project(first, "Renamed before the replay")
        scenario.delete_task(first, "2")
        wait_for(lambda: scenario.progress().done, DRAIN, "the run to arrive")
        wait_for(lambda: not drift(stack, MAPS), DRAIN, "reconcile to find projects and tasks in sync")
        wait_for(lambda: quiet(stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]), DRAIN,
                 "the worker and the sinks to have nothing left to write")
        yield Run(stack, scenario, first, second)


def replay(run: Run, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([sys.executable, "-m", "dualwrite", "replay", "--json", *args],
                          env={**os.environ, **run.stack.env}, capture_output=True, text=True,
                          timeout=180, cwd=Path(__file__).resolve().parents[3])
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def writes(run: Run) -> dict[str, dict[str, Any]]:
    with admin(run.stack.dv_url) as dv, admin(run.stack.fo_url) as fo:
        return {"dataverse": dv.get("/requests").json(), "finance": fo.get("/requests").json()}


def reset_counters(run: Run) -> None:
    with admin(run.stack.dv_url) as dv, admin(run.stack.fo_url) as fo:
        dv.delete("/requests")
        fo.delete("/requests")


def task_key(project: str, wbs: str) -> str:
    return f"ProjectTasks(dataAreaId='usmf',ProjectId='{project}',Task='{wbs}')"


def record_key(project: str, wbs: str) -> str:
    return f"ProjectTasks(ProjectId='{project}',Task='{wbs}',dataAreaId='usmf')"


def finance_task(run: Run, project: str, wbs: str) -> dict[str, Any] | None:
    resp = run.stack.finance().request("GET", task_key(project, wbs), params={"cross-company": "true"})
    return dict(resp.json()) if resp.status_code == 200 else None


def end_offsets(run: Run, topic: str) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": run.bootstrap, "group.id": f"ends-{time.time_ns()}"})
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in sorted(parts)]
    finally:
        consumer.close()


def feed_position(run: Run) -> int:
    resp = run.stack.finance().request("GET", "ChangeFeed", params={"since": "0", "top": "0"})
    return int(resp.json()["watermark"])


def test_replaying_every_map_redrives_nothing_and_writes_nothing(run: Run) -> None:
    reset_counters(run)
    code, report = replay(run)
    assert code == 0, report
    summary = report["summary"]
    assert summary["redriven"] == 0, report["redriven"]
    # Not vacuous: the run's projects and tasks were re-read and found applied.
    assert summary["already_applied"] >= 7 and summary["reread"] >= summary["already_applied"]
    time.sleep(5)  # nothing was produced; a stray write would have landed by now
    seen = writes(run)
    assert (seen["dataverse"]["writes"], seen["finance"]["writes"]) == (0, 0), seen


def _edit_by_hand(run: Run) -> dict[str, Any]:
    """Delete the second project's task and rename the first's in Finance, as a person would,
    then wait until the worker has read both edits from Finance's feed (through its gate)."""
    original = finance_task(run, run.first, "1")
    assert original is not None and finance_task(run, run.second, "1") is not None
    fo = run.stack.finance()
    before = sum(end_offsets(run, FEED_TOPIC))  # before the edits: the source may capture them at once
    assert fo.request("DELETE", task_key(run.second, "1")).status_code in (200, 204)
    assert fo.request("PATCH", task_key(run.first, "1"), json={"Name": "Edited by hand"}).status_code in (200, 204)
    wait_for(lambda: sum(end_offsets(run, FEED_TOPIC)) >= before + 2 or None, 60,
             "the Finance source to capture both edits", interval=1.0)
    wait_for(lambda: caught_up(run.bootstrap, "dualwrite-streams", [FEED_TOPIC, GATE_TOPIC]), 60,
             "the worker to read the edits")
    return original


def test_repair_dry_run_lists_the_two_rows_and_produces_nothing(run: Run) -> None:
    run.edited_from = _edit_by_hand(run)  # the next test checks the values come back
    reset_counters(run)
    offsets = end_offsets(run, TASKS_TOPIC)
    code, report = replay(run, "--map", "project_tasks", "--repair", "--dry-run")
    assert code == 0, report
    assert report["repair_keys"] == {record_key(run.second, "1"): "missing",
                                     record_key(run.first, "1"): "different"}
    assert len(report["would_redrive"]) == 2 and report["summary"]["redriven"] == 2
    assert report["extra"] == [] and report["unresolved"] == []
    time.sleep(3)
    assert end_offsets(run, TASKS_TOPIC) == offsets
    seen = writes(run)
    assert (seen["dataverse"]["writes"], seen["finance"]["writes"]) == (0, 0), seen
    assert finance_task(run, run.second, "1") is None


def test_repair_restores_exactly_the_deleted_and_the_edited_row(run: Run) -> None:
    original = run.edited_from
    assert original is not None, "runs after the dry run, which edits the rows"
    reset_counters(run)
    since = feed_position(run)
    code, report = replay(run, "--map", "project_tasks", "--repair")
    assert code == 0, report
    assert report["summary"]["redriven"] == 2
    restored = wait_for(lambda: finance_task(run, run.second, "1"), 90, "the deleted task back")
    assert restored["Name"] == "Work package 1" and not restored.get("ParentTask")
    wait_for(lambda: (finance_task(run, run.first, "1") or {}).get("Name") == original["Name"], 90,
             "the edited task's name back")
    wait_for(lambda: not drift(run.stack, MAPS), 60, "projects and tasks in sync again")
    # Nothing else written: Finance's feed shows changes of those two rows only, Dataverse none.
    changes = run.stack.finance().request("GET", "ChangeFeed", params={"since": str(since)}).json()["value"]
    touched = {(c["entity"], c["key"].get("ProjectId"), c["key"].get("Task")) for c in changes}
    assert touched == {("ProjectTasks", run.second, "1"), ("ProjectTasks", run.first, "1")}, changes
    seen = writes(run)
    assert seen["dataverse"]["writes"] == 0, seen
    finance_writes = {t: n for t, n in seen["finance"]["by_target"].items() if not t.startswith("GET")}
    assert finance_writes and set(finance_writes) <= {"POST ProjectTasks", "PATCH ProjectTasks",
                                                      "POST $batch"}, finance_writes
