"""`dualwrite bench` runs end to end at tiny sizes and writes its one table as JSON.

A smoke test of the wiring only (its own brokers, the worker with the built-in maps and with the
bench registry, the peers, a worker killed and restarted over a few thousand filled keys): it
asserts that every figure is there and measured, never how fast. P3 and idle polling start the
whole stack and wait out the sources' back-off, so they are skipped here to stay within two
minutes; their rows must then say "not measured".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dualwrite.cli import app

pytestmark = pytest.mark.integration


def test_bench_runs_end_to_end_and_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, [
        "bench", "--records", "50", "--updates", "2", "--actuals", "50", "--actuals-updates", "2",
        "--burst-records", "5", "--burst-updates", "2", "--initial-sync-rows", "300",
        "--restart-keys", "3000",
        "--skip", "p3", "--skip", "idle",
        "--workdir", str(tmp_path / "work"), "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = {f["key"]: f for f in json.loads(out.read_text())["figures"]}
    for key in ("p1_vs_naive", "p1_vs_raw", "p1_vs_decisions", "p1b_vs_p1", "worker_records_per_change",
                "worker_records_per_change_p1b", "sink_requests_per_change", "replay_vs_raw",
                "initial_sync", "p6"):
        assert figures[key]["value"] is not None and figures[key]["value"] > 0, key
        assert figures[key]["peer"] is not None and figures[key]["peer"] > 0, key
    for key in ("p3", "idle"):
        assert figures[key]["value"] is None and figures[key]["note"], key
    assert "dualwrite bench" in result.output and "not measured" in result.output
