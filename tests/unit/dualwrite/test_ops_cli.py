"""`dualwrite maps` and `dualwrite dlq` as a user meets them, without a broker: help on every
command, and bad input refused before any Kafka call with what to do next."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dualwrite.cli import app
from dualwrite.commands.opscli import when

pytestmark = pytest.mark.unit

runner = CliRunner()
NO_BROKER = {"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}

COMMANDS = {
    ("maps", "list"): ["--json", "--timeout"],
    ("maps", "pause"): ["NAME", "--reason", "--json"],
    ("maps", "resume"): ["NAME", "--json"],
    ("dlq", "list"): ["--stage", "--map", "--limit", "--json"],
    ("dlq", "show"): ["PARTITION:OFFSET", "--json"],
    ("dlq", "retry"): ["--stage", "--map", "--offset", "--yes"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_and_option_has_help(command):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for option in COMMANDS[command]:
        assert option in result.output
    assert "--topic-prefix" not in result.output  # for isolated test runs only


@pytest.mark.parametrize("group", ["maps", "dlq"])
def test_groups_list_their_commands(group):
    result = runner.invoke(app, [group, "--help"])
    assert result.exit_code == 0
    for sub, name in COMMANDS:
        if sub == group:
            assert name in result.output


@pytest.mark.parametrize("args", [
    ["maps", "pause", "projets"],
    ["maps", "resume", "nope", "--json"],
    ["dlq", "list", "--map", "projets"],
    ["dlq", "retry", "--map", "projets", "--yes"],
])
def test_unknown_map_exits_2_naming_the_maps(args):
    result = runner.invoke(app, args, env=NO_BROKER)
    assert result.exit_code == 2
    assert "unknown map" in result.stderr and "project_tasks" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("args", "says"), [
    (["dlq", "list", "--stage", "sinks"], "Stages: decode"),
    (["dlq", "show", "12"], "PARTITION:OFFSET"),
    (["dlq", "retry", "--offset", "x:1", "--yes"], "PARTITION:OFFSET"),
])
def test_bad_selection_exits_2_before_reaching_kafka(args, says):
    result = runner.invoke(app, args, env=NO_BROKER)
    assert result.exit_code == 2 and says in result.stderr


def test_when_shows_utc_time_and_age():
    assert when(None) == ""
    assert when(1_700_000_000_000, now_ms=1_700_000_000_000 + 125_000) == "2023-11-14 22:13:20Z (2m ago)"
    assert when(0, now_ms=2 * 86_400_000 + 3_600_000).endswith("(2d1h ago)")
