"""Crash safety: SIGKILL every pipeline process at random points, several times, during a run of
a few thousand changes; after restarts both systems hold exactly the state of a calm run.

The sources are also killed on a schedule, each kill followed by deletes of tasks created before
it: a restarted source has lost the images it kept, so those deletes reach the processor without
a before image and must still delete the right Finance rows."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import pytest

from dualwrite.scenario import Scenario
from dualwrite.stack import PIPELINE
from tests.support.pipeline import read_topic, running_stack, wait_for
from topics import read_headers

pytestmark = pytest.mark.chaos

SOURCE_KILL_EVERY = 150  # scenario steps; the Finance source every second time
DELETES_AFTER_KILL = 2


@pytest.mark.timeout(1200)
def test_sigkill_each_process_repeatedly_and_end_state_is_exact(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    with running_stack(tmp_path) as stack:
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        scenario = Scenario(stack.dataverse(), stack.finance(), seed=11)
        kills: list[str] = []
        stop = threading.Event()

        def killer() -> None:
            # Every process is killed at least twice, in a random order, at random moments.
            victims = [*PIPELINE, *PIPELINE, *rng.sample(PIPELINE, 3)]
            rng.shuffle(victims)
            for name in victims:
                if stop.wait(rng.uniform(1.5, 4.0)):
                    return
                stack.sup.restart(name)
                kills.append(name)

        def synced_leaves() -> list[tuple[str, str]]:
            """Leaf tasks already in Finance: their source captured them (and kept images)."""
            in_finance = {(r["ProjectId"], r["Task"]) for r in scenario.fo.get_all(
                "ProjectTasks", {"cross-company": "true"})}
            return [t for t in scenario.leaves() if t in in_finance][:DELETES_AFTER_KILL]

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        changes = steps = 0
        deleted_before_kill: list[tuple[str, str, str]] = []
        deadline = time.monotonic() + 240
        while changes < 2000 and time.monotonic() < deadline:
            did = scenario.step()
            changes += 4 if did.startswith("project") else 1
            steps += 1
            if steps % SOURCE_KILL_EVERY == 0:
                # Tasks the source captured before it dies, deleted after it restarted. The
                # activity outruns the pipeline, so wait until some are in Finance (the wait
                # does not count against the activity's time).
                started = time.monotonic()
                older = wait_for(synced_leaves, 180, "tasks in Finance before a source kill",
                                 interval=1.0)
                deadline += time.monotonic() - started
                sources = ["source-dataverse"]
                if steps // SOURCE_KILL_EVERY % 2 == 0:
                    sources.append("source-finance")
                for source in sources:
                    stack.sup.restart(source)
                    kills.append(source)
                for project, wbs in older:
                    scenario.delete_task(project, wbs)
                    deleted_before_kill.append((scenario.company, project, wbs))
                changes += len(older)
        thread.join(timeout=120)
        stop.set()
        assert set(kills) == set(PIPELINE), kills
        assert changes >= 2000
        assert len(deleted_before_kill) >= 5, deleted_before_kill

        try:
            progress = wait_for(lambda: (p := scenario.progress()).done and p, 420,
                                "the pipeline to converge after the kills", interval=2.0)
        except AssertionError as exc:
            p = scenario.progress()  # say what is still off, not just "False"
            raise AssertionError(f"{exc}: projects {p.projects}, tasks {p.tasks}, customers "
                                 f"{p.customers} (expected, actual); first mismatches "
                                 f"{p.mismatches[:10]}") from None
        assert progress.projects[0] == progress.projects[1] > 0
        # Every record checked: each one created is there field by field (above), and each task
        # deleted is gone from Finance (unless its key was created again since).
        remaining = {(r["dataAreaId"], r["ProjectId"], r["Task"]) for r in scenario.fo.get_all(
            "ProjectTasks", {"cross-company": "true"})}
        gone = set(scenario.deleted_tasks) - scenario.expected.finance_tasks.keys()
        assert set(deleted_before_kill) <= set(scenario.deleted_tasks)
        assert not gone & remaining, sorted(gone & remaining)
        assert not [read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq")]
        assert not stack.sup.dead(), [c.name for c in stack.sup.dead()]
