"""`bench.decisions` runs the worker's real decisions (route, gatekeeper, handlers) on the P1
workload in one process: every project version becomes a command, with no broker."""

from __future__ import annotations

import pytest

from bench.decisions import decisions_rate

pytestmark = pytest.mark.unit


def test_every_project_version_of_the_workload_is_decided_into_a_command() -> None:
    decided = decisions_rate(20, 3)
    assert decided.changes == 1 + 20 * 3  # the legal entity, then three versions of each project
    assert decided.commands == 20 * 3
    # Each project change crosses the gate once at least, and its first version publishes the
    # key fact its later deletes wait for.
    assert decided.gate_records >= 20 * 3 + 20
    assert decided.changes_per_s > 0
