"""`dualwrite topics schema` and `dualwrite topics tail` as a user meets them without a broker or
an API: bad arguments refused before any call, in one line, exit 2."""

from __future__ import annotations

import orjson
import pytest
from typer.testing import CliRunner

from dualwrite.cli import app

pytestmark = pytest.mark.unit

runner = CliRunner()
# Nothing listens on port 1: a command that reached for Kafka or an API would fail differently.
NOWHERE = {"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "DUALWRITE_DATAVERSE__URL": "http://127.0.0.1:1",
           "DUALWRITE_DATAVERSE__TOKEN_URL": "http://127.0.0.1:1/token",
           "DUALWRITE_FINANCE__URL": "http://127.0.0.1:1",
           "DUALWRITE_FINANCE__TOKEN_URL": "http://127.0.0.1:1/token"}


def test_tail_help_lists_its_options() -> None:
    result = runner.invoke(app, ["topics", "tail", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("topic", "--from-beginning", "--max", "--key", "--idle", "--timeout"):
        assert option in result.output


def test_tail_of_a_topic_outside_the_catalog_names_the_known_patterns() -> None:
    result = runner.invoke(app, ["topics", "tail", "finance.cdc.nosuchtable"], env=NOWHERE)
    assert result.exit_code == 2
    assert "unknown topic 'finance.cdc.nosuchtable'" in result.stderr
    assert "dataverse.cdc.<entity set>" in result.stderr and "sync.dlq" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize(("args", "says"), [
    (["topics", "tail"], "Missing argument"),
    (["topics", "tail", "sync.dlq", "--max", "0"], "Invalid value for '--max'"),
    (["topics", "tail", "sync.dlq", "--max", "many"], "Invalid value for '--max'"),
    (["topics", "tail", "sync.dlq", "--idle", "0"], "Invalid value for '--idle'"),
])
def test_tail_refuses_bad_arguments_with_exit_2(args: list[str], says: str) -> None:
    result = runner.invoke(app, args, env=NOWHERE)
    assert result.exit_code == 2, result.output
    assert says in result.output and "No such command" not in result.output
    assert "Traceback" not in result.output


def test_tail_of_an_unreachable_cluster_is_one_line() -> None:
    result = runner.invoke(app, ["topics", "tail", "sync.dlq", "--timeout", "1"], env=NOWHERE)
    assert result.exit_code == 1
    assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr and "Traceback" not in result.output


def test_schema_of_an_unreachable_api_is_one_line_exit_2_offering_offline() -> None:
    result = runner.invoke(app, ["topics", "schema"], env=NOWHERE)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "--offline" in lines[0]
    assert result.stdout == ""


def test_schema_offline_asks_no_api_and_prints_the_envelope() -> None:
    result = runner.invoke(app, ["topics", "schema", "--offline"], env=NOWHERE)
    assert result.exit_code == 0, result.output
    schemas = orjson.loads(result.stdout)
    value = schemas["dataverse.cdc.msdyn_projects"]["value"]
    assert "Row" not in value["$defs"]  # no columns without the metadata
    assert schemas["sync.commands.finance"]["key"]["type"] == "string"


def test_schema_of_a_command_topic_needs_no_api() -> None:
    result = runner.invoke(app, ["topics", "schema", "sync.applied.finance"], env=NOWHERE)
    assert result.exit_code == 0, result.output
    assert list(orjson.loads(result.stdout)) == ["sync.applied.finance"]


def test_schema_of_an_unknown_topic_exits_2() -> None:
    result = runner.invoke(app, ["topics", "schema", "sync.nope"], env=NOWHERE)
    assert result.exit_code == 2 and "unknown topic 'sync.nope'" in result.stderr
