"""A re-driven command (`CommandSource.redriven`: `dualwrite replay --repair`, `dlq retry`) is
written again at the version the sink last applied: the target may have lost that write."""

from __future__ import annotations

import pytest

from connectors.common.sinkstate import AppliedState
from tests.unit.connectors.fakes import applied, command
from topics import Command

pytestmark = pytest.mark.unit


def redriven(cmd: Command) -> Command:
    return cmd.model_copy(update={"source": cmd.source.model_copy(update={"redriven": True})})


def test_a_redriven_command_at_the_applied_version_is_written_again() -> None:
    state = AppliedState()
    state.record(applied(command("A", 5)))
    assert state.skip_reason(command("A", 5)) == "applied_version"
    assert state.skip_reason(redriven(command("A", 5))) is None


def test_a_redriven_command_older_than_the_applied_version_is_still_skipped() -> None:
    state = AppliedState()
    state.record(applied(command("A", 5)))
    assert state.skip_reason(redriven(command("A", 4))) == "applied_version"
