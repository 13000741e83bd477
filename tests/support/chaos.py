"""The chaos tier's shared run: scenario activity while processes (or brokers) are killed, then
the exact end state.

`KillSchedule` kills at random moments from a background thread; `play` runs a few thousand
changes of scenario activity and, every `SOURCE_KILL_EVERY` steps, kills the sources and then
deletes tasks they had captured (a restarted source has lost the images it kept, so those deletes
reach the processor without a before image and must still delete the right Finance rows);
`assert_exact_end_state` waits for both systems to converge and checks every record, the deletes,
an empty DLQ, that no process was left dead and that `dualwrite reconcile` finds every map in
sync (the seeded reference data of every map included).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dualwrite.scenario import Scenario
from dualwrite.stack import Stack
from tests.support.pipeline import assert_reconciled, exit_reasons, read_topic, wait_for
from topics import read_headers

SOURCE_KILL_EVERY = 150  # scenario steps; the Finance source every second time
DELETES_AFTER_KILL = 2
AFTER_PLAN_PACE_S = 0.25  # one step per this, once the planned changes are made
SOURCES = ("source-dataverse", "source-finance")

Key = tuple[str, str, str]  # (company, project, task) of a Finance task


@dataclass
class KillSchedule:
    """Runs `actions` (name, what kills) one after another at random pauses in `pause`, in a
    daemon thread, and records the names of those it ran in `done`."""

    rng: random.Random
    actions: list[tuple[str, Callable[[], None]]]
    pause: tuple[float, float] = (1.5, 4.0)
    done: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self, when: Callable[[], bool] | None = None) -> KillSchedule:
        """Begin (the pauses included) once `when` holds, checked every 2 s."""

        def run() -> None:
            while when is not None and not when():
                if self._stop.wait(2.0):
                    return
            for name, action in self.actions:
                if self._stop.wait(self.rng.uniform(*self.pause)):
                    return
                action()
                self.done.append(name)

        self._thread = threading.Thread(target=run, name="chaos-kills", daemon=True)
        self._thread.start()
        return self

    def finish(self, timeout: float = 180.0) -> list[str]:
        """Let the remaining actions run (up to `timeout`), then stop; the names run."""
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._stop.set()
        return self.done


def process_kills(stack: Stack, rng: random.Random, names: tuple[str, ...],
                  extra: int = 3) -> list[tuple[str, Callable[[], None]]]:
    """Every process in `names` SIGKILLed (and restarted) twice, plus `extra` random ones, in a
    random order."""
    victims = [*names, *names, *rng.sample(names, extra)]
    rng.shuffle(victims)
    return [(name, lambda name=name: stack.sup.restart(name)) for name in victims]  # type: ignore[misc]


def play(stack: Stack, scenario: Scenario, kills: list[str], *, changes: int = 1600,
         seconds: float = 240.0, kill_sources: bool = True,
         until: Callable[[], bool] = lambda: True) -> list[Key]:
    """Scenario activity until `changes` changes and `until` holds (or `seconds` passed); with
    `kill_sources`, the source kills and the deletes that follow them (appended to `kills`).
    Returns the tasks deleted right after a source kill."""

    def synced_leaves() -> list[tuple[str, str]]:
        """Leaf tasks already in Finance: their source captured them (and kept images)."""
        in_finance = {(r["ProjectId"], r["Task"]) for r in scenario.fo.get_all(
            "ProjectTasks", {"cross-company": "true"})}
        return [t for t in scenario.leaves() if t in in_finance][:DELETES_AFTER_KILL]

    done = steps = 0
    deleted_after_kill: list[Key] = []
    deadline = time.monotonic() + seconds
    while (done < changes or not until()) and time.monotonic() < deadline:
        if done >= changes:
            # Past the planned changes, the activity only waits for `until` (kills in flight):
            # a person's pace, not a flood that spends the user's 6,000 requests per 5 minutes
            # and then waits out a multi-minute Retry-After.
            time.sleep(AFTER_PLAN_PACE_S)
        did = scenario.step()
        done += 4 if did.startswith("project") else 1
        steps += 1
        if kill_sources and steps % SOURCE_KILL_EVERY == 0:
            # Tasks the source captured before it dies, deleted after it restarted. The
            # activity outruns the pipeline, so wait until some are in Finance (the wait
            # does not count against the activity's time).
            started = time.monotonic()
            older = wait_for(synced_leaves, 180, "tasks in Finance before a source kill",
                             interval=1.0)
            deadline += time.monotonic() - started
            sources = list(SOURCES[:1] if steps // SOURCE_KILL_EVERY % 2 else SOURCES)
            for source in sources:
                stack.sup.restart(source)
                kills.append(source)
            for project, wbs in older:
                scenario.delete_task(project, wbs)
                deleted_after_kill.append((scenario.company, project, wbs))
            done += len(older)
    assert done >= changes, f"only {done} changes in {seconds:.0f}s"
    return deleted_after_kill


def assert_exact_end_state(stack: Stack, scenario: Scenario, deleted_after_kill: list[Key],
                           timeout: float = 420.0) -> None:
    """Both systems converge to the scenario's expected state, field by field; every task
    deleted is gone from Finance (unless its key was created again since); nothing was
    dead-lettered; no process is left dead."""
    bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
    try:
        progress = wait_for(lambda: (p := scenario.progress()).done and p, timeout,
                            "the pipeline to converge after the kills", interval=2.0)
    except AssertionError as exc:
        p = scenario.progress()  # say what is still off, not just "False"
        raise AssertionError(f"{exc}: projects {p.projects}, tasks {p.tasks}, customers "
                             f"{p.customers} (expected, actual); first mismatches "
                             f"{p.mismatches[:10]}") from None
    assert progress.projects[0] == progress.projects[1] > 0
    remaining = {(r["dataAreaId"], r["ProjectId"], r["Task"]) for r in scenario.fo.get_all(
        "ProjectTasks", {"cross-company": "true"})}
    gone = set(scenario.deleted_tasks) - scenario.expected.finance_tasks.keys()
    assert set(deleted_after_kill) <= set(scenario.deleted_tasks)
    assert not gone & remaining, sorted(gone & remaining)
    assert not [read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq")]
    assert not stack.sup.dead(), ([c.name for c in stack.sup.dead()], exit_reasons(stack))
    # And every map, the seeded reference data included, as `dualwrite reconcile` sees it.
    assert_reconciled(stack)
