"""Duplicates, dead letters and echoes through a real broker and a real worker process."""

from __future__ import annotations

import pytest

from tests.integration.streams import scenario as s
from tests.integration.streams.harness import Reader, WorkerProcess
from topics import read_headers

pytestmark = pytest.mark.integration


def test_same_version_twice_produces_one_command(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row("Older"), 6)
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    finance_commands.drain(4)
    commands = finance_commands.commands()
    assert [c.command_id for c in commands] == [f"projects:{s.PROJECT_ID}:7"]


def test_malformed_record_goes_to_dlq_and_the_line_keeps_moving(
        worker, cdc, finance_commands, kafka_bootstrap, prefix, unique):
    s.seed_lookups(cdc)
    cdc.raw("dataverse.cdc.msdyn_projects", b'{"id": "broken"}', b"{not json")
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    dlq = Reader(kafka_bootstrap, prefix + "sync.dlq", f"dlq-{unique}")
    try:
        dlq.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
        assert len(dlq.records) == 1
        record = dlq.records[0]
        headers = read_headers(record.headers())
        assert headers["dlq.stage"] == "decode"
        assert headers["dlq.error.class"] == "DecodeError.not_json"
        assert headers["dlq.original.topic"] == prefix + "dataverse.cdc.msdyn_projects"
        assert "dlq.original.offset" in headers and "dlq.error.message" in headers
        assert record.value() == b"{not json"
    finally:
        dlq.close()
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=60, worker=worker)
    assert [c.entity for c in finance_commands.commands()] == ["ProjectsV2"]


def test_echo_from_finance_feed_produces_no_command(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    [project] = finance_commands.commands()
    s.ack(cdc, project)
    # Finance's own feed shows the row we wrote (its own date rendering, its own RecId).
    echoed = {**project.fields, "ProjectedStartDate": "2026-01-05T12:00:00Z", "RecId": 5637144576}
    cdc.change("finance", "ProjectsV2", "5637144576", echoed, 101, op="c")
    # A Dataverse change to a column no map carries must not sync either.
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID,
               {**s.project_row(), "modifiedon": "2026-02-01T00:00:00Z"}, 8)
    finance_commands.drain(5)
    assert len(finance_commands.commands()) == 1
    # A real change still flows (positive control).
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row("Renamed"), 9)
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
    commands = finance_commands.commands()
    assert len(commands) == 2 and commands[1].fields["ProjectName"] == "Renamed"


def test_task_released_by_the_finance_feed_showing_its_project(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c")
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c")
    finance_commands.poll_until(lambda r: len(r) >= 1, timeout=90, worker=worker)
    finance_commands.drain(2)
    assert [c.entity for c in finance_commands.commands()] == ["ProjectsV2"]
    project = finance_commands.commands()[0]
    cdc.change("finance", "ProjectsV2", "5637144576", {**project.fields, "RecId": 5637144576}, 5)
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=60, worker=worker)
    assert [c.entity for c in finance_commands.commands()] == ["ProjectsV2", "ProjectTasks"]


def test_source_transaction_is_released_together(worker, cdc, finance_commands):
    s.seed_lookups(cdc)
    cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 3, op="c",
               txid="tx-42", tx_total=2)
    cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c",
               txid="tx-42", tx_total=2)
    finance_commands.poll_until(lambda r: len(r) >= 2, timeout=90, worker=worker)
    commands = {c.entity: c for c in finance_commands.commands()}
    assert set(commands) == {"ProjectsV2", "ProjectTasks"}
    assert {c.tx_size for c in commands.values()} == {2}
    assert {c.source.txid for c in commands.values()} == {"tx-42"}


def test_a_transaction_completes_on_its_events_even_those_no_map_reads(
        kafka_bootstrap, prefix, unique, tmp_path, cdc, finance_commands):
    # The transaction also changed a company row, which no map turns into a command: its event
    # still counts, so the project and task go at once and not after the (here: ten-minute)
    # time-out for transactions whose events never all arrive.
    worker = WorkerProcess(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path / "state",
                           tmp_path / "worker.log")
    worker.env["DUALWRITE_PROCESSOR__TX_TIMEOUT_MS"] = "600000"
    worker.start()
    try:
        s.seed_lookups(cdc)
        cdc.change("dataverse", "msdyn_projecttasks", s.TASK_ID, s.task_row(), 9, op="c",
                   txid="tx-77", tx_total=3, tx_order=3)
        cdc.change("dataverse", "cdm_companies", s.COMPANY_ID, s.company_row(), 8,
                   txid="tx-77", tx_total=3, tx_order=2)
        cdc.change("dataverse", "msdyn_projects", s.PROJECT_ID, s.project_row(), 7, op="c",
                   txid="tx-77", tx_total=3, tx_order=1)
        finance_commands.poll_until(lambda r: len(r) >= 2, timeout=120, worker=worker)
        commands = {c.entity: c for c in finance_commands.commands()}
        assert set(commands) == {"ProjectsV2", "ProjectTasks"}, worker.tail()
        assert {c.tx_size for c in commands.values()} == {2}
        assert (commands["ProjectsV2"].tx_order, commands["ProjectTasks"].tx_order) == (1, 3)
    finally:
        worker.stop()
