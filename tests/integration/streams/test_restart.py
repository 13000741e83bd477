"""SIGKILL the worker mid-stream: after a restart no command is lost, duplicates are identical."""

from __future__ import annotations

import httpx
import pytest

from dualwrite.ports import free_port
from tests.integration.streams import scenario as s

pytestmark = pytest.mark.integration

N = 40


def project(i: int) -> tuple[str, dict]:
    guid = f"p{i:07d}-0000-0000-0000-000000000000"
    return guid, {**s.project_row(f"Project {i}"), "msdyn_projectid": guid,
                  "msdyn_projectnumber": f"PRJ-{i:04d}"}


def test_no_command_lost_across_sigkill(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    for i in range(N):
        guid, row = project(i)
        cdc.change("dataverse", "msdyn_projects", guid, row, 10 + i, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 5, timeout=90, worker=worker)
    worker.kill()
    for i in range(N, 2 * N):
        guid, row = project(i)
        cdc.change("dataverse", "msdyn_projects", guid, row, 10 + i, op="c")
    worker.start()
    expected = {f"projects:{project(i)[0]}:{10 + i}" for i in range(2 * N)}
    finance_commands.poll_until(
        lambda r: {c.command_id for c in finance_commands.commands()} >= expected,
        timeout=120, worker=worker)
    commands = finance_commands.commands()
    assert {c.command_id for c in commands} == expected, worker.tail()
    by_id: dict[str, object] = {}
    for c in commands:  # a duplicate is acceptable only if identical
        first = by_id.setdefault(c.command_id, c)
        assert first == c, (first.model_dump(), c.model_dump())  # type: ignore[attr-defined]


def _lookups_answered(port: int, where: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    line = f'dualwrite_streams_lookups_total{{where="{where}"}} '
    return sum(float(x[len(line):]) for x in text.splitlines() if x.startswith(line))


def test_after_a_restart_the_facts_already_learned_are_answered_at_ingest(worker, cdc, finance_commands):
    """The fact view is warmed from the gate's table when the worker recovers it: a project
    whose company and customer were learned before the restart needs no hop for them."""
    s.seed_lookups(cdc)
    guid, row = project(0)
    cdc.change("dataverse", "msdyn_projects", guid, row, 10, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    worker.kill()
    port = free_port()
    worker.env["DUALWRITE_METRICS_PORT"] = str(port)
    worker.start()
    guid, row = project(1)
    cdc.change("dataverse", "msdyn_projects", guid, row, 11, op="c")
    finance_commands.poll_until(lambda r: len({c.command_id for c in finance_commands.commands()}) >= 2,
                                timeout=120, worker=worker)
    assert _lookups_answered(port, "local") >= 2, worker.tail()  # the company and the customer
    assert _lookups_answered(port, "gate") == 0, worker.tail()
