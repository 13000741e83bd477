"""Several workers in one stack (and in `dualwrite demo --workers N`): one consumer group, a state
dir each, and topics replicated as the cluster says."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dualwrite.cli import app
from dualwrite.demo import run as demo_run
from dualwrite.stack import PIPELINE, Stack, StackConfig, pipeline

pytestmark = pytest.mark.unit


def test_two_workers_are_two_processes_with_a_state_dir_each(tmp_path: Path) -> None:
    stack = Stack(StackConfig(workdir=tmp_path, kafka_bootstrap="b1,b2,b3", workers=2,
                              replication=3))
    assert stack.pipeline == ("worker", "worker-2", *PIPELINE[1:])
    argvs = {name: stack.argv(name) for name in stack.pipeline if name.startswith("worker")}
    dirs = {name: argv[argv.index("--data-dir") + 1] for name, argv in argvs.items()}
    assert dirs == {"worker": str(tmp_path / "state" / "worker"),
                    "worker-2": str(tmp_path / "state" / "worker-2")}
    for argv in argvs.values():
        assert "--app-id" not in argv  # one consumer group: the default app id
        assert argv[argv.index("dualwrite") + 1] == "worker"
    assert stack.env["DUALWRITE_TOPICS__REPLICATION"] == "3"
    assert stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"] == "b1,b2,b3"


def test_one_worker_is_the_pipeline_as_before() -> None:
    assert pipeline() == PIPELINE
    assert pipeline(3)[:3] == ("worker", "worker-2", "worker-3")


def test_demo_passes_workers_and_brokers_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[demo_run.DemoOptions] = []

    def fake_run(opts: demo_run.DemoOptions) -> int:
        seen.append(opts)
        return 0

    monkeypatch.setattr(demo_run, "run_demo", fake_run)
    result = CliRunner().invoke(app, ["demo", "--workers", "2", "--brokers", "3",
                                      "--workdir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert (seen[0].workers, seen[0].brokers) == (2, 3)
    refused = CliRunner().invoke(app, ["demo", "--workers", "0", "--workdir", str(tmp_path / "d")])
    assert refused.exit_code == 2
