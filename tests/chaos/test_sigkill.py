"""Crash safety: SIGKILL every pipeline process at random points, several times, during a run of
a few thousand changes; after restarts both systems hold exactly the state of a calm run."""

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


@pytest.mark.timeout(900)
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

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        changes = 0
        deadline = time.monotonic() + 240
        while changes < 2000 and time.monotonic() < deadline:
            did = scenario.step()
            changes += 4 if did.startswith("project") else 1
        thread.join(timeout=120)
        stop.set()
        assert set(kills) == set(PIPELINE), kills
        assert changes >= 2000

        try:
            progress = wait_for(lambda: (p := scenario.progress()).done and p, 420,
                                "the pipeline to converge after the kills", interval=2.0)
        except AssertionError as exc:
            p = scenario.progress()  # say what is still off, not just "False"
            raise AssertionError(f"{exc}: projects {p.projects}, tasks {p.tasks}, customers "
                                 f"{p.customers} (expected, actual); first mismatches "
                                 f"{p.mismatches[:10]}") from None
        assert progress.projects[0] == progress.projects[1] > 0
        assert not [read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq")]
        assert not stack.sup.dead(), [c.name for c in stack.sup.dead()]
