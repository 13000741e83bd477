"""The whole pipeline as real processes on a real broker, against both emulators over HTTP.

The first run is also read by consumers outside the pipeline (`tests.support.consumers`): every
CDC record against its per-table schema, Kafka's console consumer, Flink SQL (`debezium-json`),
`dualwrite topics tail`."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from dualwrite.flink import sql_columns
from dualwrite.scenario import Scenario
from dualwrite.stack import Stack
from tests.support import consumers
from tests.support.pipeline import (
    admin,
    assert_reconciled,
    read_topic,
    replay_everything,
    running_stack,
    wait_for,
)
from topics import System, cdc_topic, decode_ack, decode_command, read_headers

pytestmark = pytest.mark.integration

DRAIN = 180.0


def drained(scenario: Scenario) -> object:
    progress = scenario.progress()
    return progress if progress.done else None


def dlq(bootstrap: str) -> list[dict[str, str]]:
    return [read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq")]


@pytest.fixture(scope="class")
def flowed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Projects, tasks and customers created, then a project renamed and a task deleted, drained."""
    with running_stack(tmp_path_factory.mktemp("flow")) as stack:
        scenario = Scenario(stack.dataverse(), stack.finance())
        first = scenario.create_project()
        second = scenario.create_project()
        for wbs in ("1", "2", "3"):
            scenario.create_task(first, wbs)
        scenario.create_task(second, "1")
        scenario.create_customer()
        scenario.create_customer()
        wait_for(lambda: drained(scenario), DRAIN, "first wave to arrive")

        scenario.rename_project(first, "Renamed after arrival")
        scenario.delete_task(first, "2")
        scenario.create_task(second, "2")
        wait_for(lambda: drained(scenario), DRAIN, "updates and deletes to arrive")
        yield stack


@pytest.fixture(scope="class")
def schemas(flowed: Stack) -> dict[str, Any]:
    return consumers.printed_schemas(flowed)


class TestOneRunWithUpdatesAndDeletes:
    """One run, checked by reconcile and read by consumers outside the pipeline (issue 13): one
    stack for both."""

    def test_projects_tasks_and_customers_flow_with_updates_and_deletes(self, flowed: Stack) -> None:
        assert dlq(flowed.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]) == []
        assert_reconciled(flowed)  # every map, the seeded reference data included

    def test_every_cdc_record_validates_against_its_table_schema(
            self, flowed: Stack, schemas: dict[str, Any]) -> None:
        ops = consumers.validate_cdc_topics(flowed, schemas)
        # Not vacuous: snapshot reads, creates, updates, deletes and tombstones were all checked.
        assert {"r", "c", "u", "d", "tombstone"} <= set(ops), ops

    @pytest.mark.parametrize(("system", "table"), [("dataverse", "msdyn_projecttasks"),
                                                   ("finance", "ProjectTasks")])
    def test_the_console_consumer_materialises_the_emulators_table(
            self, flowed: Stack, schemas: dict[str, Any], system: System, table: str) -> None:
        topic = cdc_topic(system, table)
        bootstrap = flowed.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        key_fields = schemas[topic]["key"]["x-key-fields"]
        for _ in range(5):  # a write-back may still be landing: read again until caught up
            expected = consumers.emulator_table(flowed, system, table, key_fields)
            got, tombstones = consumers.materialise(consumers.console_consumer(bootstrap, topic))
            if got == expected:
                break
            time.sleep(3.0)
        assert tombstones > 0  # the run's delete is in this topic
        assert expected and got == expected

    @pytest.mark.parametrize(("system", "table", "kind"), [
        ("dataverse", "msdyn_projecttasks", "-D"), ("finance", "ProjectTasks", "-D"),
        ("dataverse", "msdyn_projects", "+U"), ("finance", "ProjectsV2", "+U")])
    def test_flink_sql_materialises_the_cdc_topic(
            self, flowed: Stack, schemas: dict[str, Any], system: System, table: str,
            kind: str) -> None:
        """Flink's own reading of the envelope (debezium-json), typed by the printed schema:
        ``kind`` is the change Flink must have applied (the run deleted a task, renamed a project)."""
        topic = cdc_topic(system, table)
        bootstrap = flowed.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        key_fields = schemas[topic]["key"]["x-key-fields"]
        columns = sql_columns(schemas[topic]["value"]["$defs"]["Row"])
        for _ in range(3):  # a write-back may still be landing: read again until caught up
            expected = {key: {name: row.get(name) for name, _ in columns} for key, row in
                        consumers.emulator_table(flowed, system, table, key_fields).items()}
            got, changes = consumers.flink_sql(bootstrap, topic, key_fields, columns)
            if got == expected:
                break
            time.sleep(3.0)
        assert changes[kind] > 0, changes
        assert expected and got == expected

    def test_topics_tail_prints_the_records_asked_for(self, flowed: Stack) -> None:
        topic = cdc_topic("dataverse", "msdyn_projecttasks")
        proc = consumers.cli(flowed, "topics", "tail", topic, "--from-beginning", "--max", "3")
        assert proc.returncode == 0, proc.stderr.decode()
        lines = [orjson.loads(line) for line in proc.stdout.splitlines()]
        assert len(lines) == 3
        for line in lines:
            assert set(line) == {"partition", "offset", "timestamp_ms", "key", "value", "headers"}
        task_id = lines[0]["key"]["id"]
        only = consumers.cli(flowed, "topics", "tail", topic, "--from-beginning", "--key", task_id,
                             "--idle", "2")
        assert only.returncode == 0, only.stderr.decode()
        keyed = [orjson.loads(line) for line in only.stdout.splitlines()]
        assert keyed and all(line["key"]["id"] == task_id for line in keyed)

    def test_topics_tail_ends_cleanly_on_ctrl_c(self, flowed: Stack) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dualwrite", "topics", "tail", "--from-beginning",
             cdc_topic("dataverse", "msdyn_projecttasks")],
            env={**os.environ, **flowed.env, "PYTHONFAULTHANDLER": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready and proc.stdout.readline(), "tail printed no record"  # it is consuming
            proc.send_signal(signal.SIGINT)
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)  # faulthandler prints where every thread is
                _, err = proc.communicate(timeout=10)
                raise AssertionError("tail still ran 30 s after Ctrl-C:\n" + err.decode()[-4000:]) from None
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err


def test_tasks_wait_for_their_project_and_parent_even_when_writes_fail_at_first(tmp_path: Path) -> None:
    with running_stack(tmp_path, pipeline=False) as stack:
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        stack.start_pipeline(("worker", "sink-dataverse", "source-dataverse", "source-finance"))
        scenario = Scenario(stack.dataverse(), stack.finance())
        project = scenario.create_project()
        for wbs in ("1", "2", "3"):
            scenario.create_task(project, wbs)
        for wbs in ("1.1", "1.2"):  # Finance refuses a child whose parent it does not hold
            scenario.create_task(project, wbs, parent="1")

        def commands() -> list[str]:
            return [decode_command(m.value()).entity for m in read_topic(bootstrap, "sync.commands.finance")]

        wait_for(lambda: "ProjectsV2" in commands(), 60, "the project's command")
        # The project is not in Finance yet, so its tasks stay parked in the processor.
        assert "ProjectTasks" not in commands()

        with admin(stack.fo_url) as fo_admin:
            fo_admin.put("/faults", json={"error_rate": 1.0, "error_statuses": [503]})
            stack.start_pipeline(("sink-finance",))
            wait_for(lambda: fo_admin.get("/requests").json()["writes"] >= 2, 60,
                     "the sink to try (and fail) the project write")
            assert "ProjectTasks" not in commands()
            fo_admin.put("/faults", json={"error_rate": 0.0})

        wait_for(lambda: drained(scenario), DRAIN, "project and tasks to land")
        feed = stack.finance().request("GET", "ChangeFeed", params={
            "since": "0", "entities": "ProjectsV2,ProjectTasks"}).json()["value"]
        project_version = min(c["version"] for c in feed if c["entity"] == "ProjectsV2")
        assert all(c["version"] > project_version for c in feed if c["entity"] == "ProjectTasks")
        created = {c["key"]["Task"]: c["version"] for c in feed
                   if c["entity"] == "ProjectTasks" and c["op"] == "c"}
        assert created["1"] < created["1.1"] and created["1"] < created["1.2"], created
        # Not by luck of the sink's order: the children's commands were produced only after
        # Finance acknowledged their parent (the processor learned it is present).
        parent_acked = min(m.timestamp()[1] for m in read_topic(bootstrap, "sync.applied.finance")
                           if decode_ack(m.value()).key.get("Task") == "1")
        children_sent = [m.timestamp()[1] for m in read_topic(bootstrap, "sync.commands.finance")
                         if decode_command(m.value()).key.get("Task") in ("1.1", "1.2")]
        assert len(children_sent) == 2 and min(children_sent) >= parent_acked
        assert dlq(bootstrap) == []


def test_replaying_everything_writes_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        scenario = Scenario(stack.dataverse(), stack.finance())
        for _ in range(12):
            scenario.step()
        wait_for(lambda: drained(scenario), DRAIN, "the scenario to arrive")
        assert replay_everything(stack, DRAIN) == {"dataverse": 0, "finance": 0}
        assert drained(scenario), scenario.progress().mismatches


def test_malformed_cdc_records_go_to_the_dlq_and_the_line_keeps_going(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        topic = cdc_topic("dataverse", "msdyn_projects")
        producer = Producer({"bootstrap.servers": bootstrap})
        bad = [(b'{"id": "x1"}', b"{not json"),
               (b'{"id": "x2"}', orjson.dumps({"op": "z", "source": {}})),
               (b'{"id": "x3"}', orjson.dumps({"op": "c", "after": None, "ts_ms": 1})),
               (None, orjson.dumps({"op": "c"}))]
        for key, value in bad:
            producer.produce(topic, key=key, value=value)
        assert producer.flush(30) == 0

        scenario = Scenario(stack.dataverse(), stack.finance())
        project = scenario.create_project()
        scenario.create_task(project, "1")
        wait_for(lambda: drained(scenario), DRAIN, "good records after the bad ones")
        letters = wait_for(lambda: dlq(bootstrap) if len(dlq(bootstrap)) >= len(bad) else None, 60,
                           "dead letters")
        assert len(letters) == len(bad)
        for headers in letters:
            assert headers["dlq.stage"] == "decode"
            assert headers["dlq.original.topic"] == topic
            assert headers["dlq.error.class"] and headers["dlq.error.message"]
            assert "dlq.original.offset" in headers


def test_throttling_storm_and_server_errors_slow_but_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        bootstrap = stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        scenario = Scenario(stack.dataverse(), stack.finance())
        with admin(stack.fo_url) as fo_admin, admin(stack.dv_url) as dv_admin:
            # Finance answers everything 429 for a while: the projects wait, nothing is lost.
            fo_admin.put("/faults", json={"throttle_storm_seconds": 20, "throttle_retry_after_seconds": 2})
            for _ in range(4):
                project = scenario.create_project()
                for wbs in ("1", "2"):
                    scenario.create_task(project, wbs)
            assert fo_admin.get("/faults").json()["throttle_storm_remaining_seconds"] > 0
            wait_for(lambda: fo_admin.get("/requests").json()["total"] > 0, 30, "sink traffic in the storm")
            wait_for(lambda: fo_admin.get("/faults").json()["throttle_storm_remaining_seconds"] == 0,
                     60, "the storm to pass")
            # Then a burst of 5xx on both sides while people keep working.
            fo_admin.put("/faults", json={"error_rate": 0.3, "error_statuses": [500, 503]})
            dv_admin.put("/faults", json={"error_rate": 0.3, "error_statuses": [500, 503]})
            for _ in range(3):
                scenario.create_customer()
            scenario.rename_project(project, "Renamed during the 5xx burst")
            wait_for(lambda: fo_admin.get("/requests").json()["total"] > 20, 30, "traffic in the burst")
            fo_admin.put("/faults", json={"error_rate": 0.0})
            dv_admin.put("/faults", json={"error_rate": 0.0})
        wait_for(lambda: drained(scenario), DRAIN, "everything to arrive after the faults")
        assert dlq(bootstrap) == []
