"""Crash safety: SIGKILL every pipeline process at random points, several times, during a run of
1,600 changes or more (until every kill is done); after restarts both systems hold exactly the
state of a calm run.

The sources are also killed on a schedule, each kill followed by deletes of tasks created before
it: a restarted source has lost the images it kept, so those deletes reach the processor without
a before image and must still delete the right Finance rows (`tests.support.chaos`).

With two workers in one consumer group, a killed worker's partitions move to the other one (and
back when it returns); every kind of process is killed, both workers included.

Beside that activity (component 1: projects, tasks, customers), the demo's components 2 to 5
(`dualwrite.demo.components`) run on a project of their own (prefix ``FC``, so the random
activity never deletes its tasks): approved time and a resource, a billed contract, and
Finance's expense report and vendor invoice on the project. They are made before the kills
begin; Finance's rounds (its postings and periodic jobs, `tests.support.components`) run in a
thread beside the activity and the kills until everything is back; the end state then also
holds their records, an empty DLQ and reconcile in sync on every map."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dualwrite.demo.components import Components
from dualwrite.scenario import Scenario
from dualwrite.stack import pipeline
from tests.support.chaos import KillSchedule, assert_exact_end_state, play, process_kills
from tests.support.components import FinanceRounds
from tests.support.pipeline import running_stack

pytestmark = pytest.mark.chaos


def _sigkill_run(tmp_path: Path, workers: int, seed: int) -> None:
    rng = random.Random(seed)
    names = pipeline(workers)
    with running_stack(tmp_path, workers=workers) as stack:
        scenario = Scenario(stack.dataverse(), stack.finance(), seed=11)
        components = Components(Scenario(stack.dataverse(), stack.finance(), prefix="FC", seed=12))
        components.make()
        rounds = FinanceRounds(components, 600.0).start()
        kills: list[str] = []
        schedule = KillSchedule(rng, process_kills(stack, rng, names), done=kills).start()
        deleted_after_kill = play(stack, scenario, kills)
        schedule.finish(timeout=120)
        state = rounds.result()
        assert (state.invoices, state.procured) == ((1, 1), (2, 2))
        assert set(kills) == set(names), kills
        assert len(deleted_after_kill) >= 5, deleted_after_kill
        assert_exact_end_state(stack, scenario, deleted_after_kill)


@pytest.mark.timeout(1200)
def test_sigkill_each_process_repeatedly_and_end_state_is_exact(tmp_path: Path) -> None:
    _sigkill_run(tmp_path, workers=1, seed=20261125)


@pytest.mark.timeout(1200)
def test_sigkill_with_two_workers_each_process_and_end_state_is_exact(tmp_path: Path) -> None:
    _sigkill_run(tmp_path, workers=2, seed=20261201)
