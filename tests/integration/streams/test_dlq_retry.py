"""`dualwrite dlq retry` against a real worker: re-driven records are processed again."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from dualwrite.cli import app
from tests.integration.streams import scenario as s
from tests.integration.streams.harness import Reader

pytestmark = pytest.mark.integration


def test_retried_dead_letters_are_processed_again_and_fail_again(
        worker, cdc, finance_commands, kafka_bootstrap, prefix, unique):
    s.seed_lookups(cdc)
    cdc.raw("dataverse.cdc.msdyn_projects", b'{"id": "broken"}', b"{not json")  # decode stage
    # statecode 5 has no value map entry: the gate's transform rejects the project.
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(statecode=5), 7, op="c")
    dlq = Reader(kafka_bootstrap, prefix + "sync.dlq", f"dlq-{unique}")
    env = {"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap}
    runner = CliRunner()
    try:
        dlq.poll_until(lambda r: len(r) >= 2, timeout=90, worker=worker)
        listed = runner.invoke(app, ["dlq", "list", "--json", "--topic-prefix", prefix], env=env)
        assert listed.exit_code == 0, listed.output
        summary = json.loads(listed.stdout)["summary"]
        assert summary["by_stage"] == {"decode": 1, "transform": 1}
        assert summary["by_map"] == {"-": 1, "projects": 1}

        retried = runner.invoke(app, ["dlq", "retry", "--yes", "--topic-prefix", prefix,
                                      "--app-id", f"streams-{unique}"], env=env)
        assert retried.exit_code == 0, retried.output
        assert "re-drove 2 record(s)" in retried.stderr
        # Nothing was fixed: both fail again, so each is counted twice. Without the retry
        # header's pass through dedupe and the gate message re-wrapping, neither would return.
        dlq.poll_until(lambda r: len(r) >= 4, timeout=60, worker=worker)
        listed = runner.invoke(app, ["dlq", "list", "--json", "--topic-prefix", prefix], env=env)
        again = json.loads(listed.stdout)
        summary = again["summary"]
        assert summary["by_stage"] == {"decode": 2, "transform": 2}
        # The worker marks a dead letter that was a retry (Faust's own header shape).
        assert [d["retried"] for d in again["dead_letters"] if d["stage"] == "decode"] == [False, True]
        assert summary["by_error_class"]["TransformError"] == 2
    finally:
        dlq.close()
    assert finance_commands.drain(1) == []
