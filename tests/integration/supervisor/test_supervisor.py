"""The process supervisor behind `dualwrite demo` and the pipeline tests restarts what fails."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from dualwrite.supervisor import Supervisor
from tests.support.pipeline import wait_for

pytestmark = pytest.mark.integration

# Exits 75 on its first run (as the worker does when it must re-read its input), then stays up.
FLAKY = """
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
if not marker.exists():
    marker.write_text("ran")
    sys.exit(75)
time.sleep(60)
"""


def test_failed_children_are_restarted_but_stopped_and_finished_ones_are_not(tmp_path: Path) -> None:
    sup = Supervisor(tmp_path / "logs")
    try:
        flaky = sup.start("flaky", [sys.executable, "-c", FLAKY, str(tmp_path / "marker")], restart=True)
        done = sup.start("done", [sys.executable, "-c", "pass"], restart=True)
        sup.watch(interval=0.1)
        wait_for(lambda: flaky.starts == 2 and flaky.alive, 20, "the flaky child to be restarted")
        time.sleep(0.5)
        assert done.starts == 1 and not done.alive  # exit 0 means finished, not failed
        assert sup.dead() == [done]

        sup.kill("flaky")
        time.sleep(0.5)
        assert flaky.starts == 2 and not flaky.alive  # stopped on purpose stays stopped
        sup.restart("flaky")
        assert flaky.starts == 3 and flaky.alive
    finally:
        sup.stop_all(grace=5)
    assert not flaky.alive
