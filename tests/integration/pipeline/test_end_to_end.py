"""The whole pipeline as real processes on a real broker, against both emulators over HTTP."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from dualwrite.scenario import Scenario
from tests.support.pipeline import (
    admin,
    assert_reconciled,
    read_topic,
    replay_everything,
    running_stack,
    wait_for,
)
from topics import cdc_topic, decode_ack, decode_command, read_headers

pytestmark = pytest.mark.integration

DRAIN = 180.0


def drained(scenario: Scenario) -> object:
    progress = scenario.progress()
    return progress if progress.done else None


def dlq(bootstrap: str) -> list[dict[str, str]]:
    return [read_headers(m.headers()) for m in read_topic(bootstrap, "sync.dlq")]


def test_projects_tasks_and_customers_flow_with_updates_and_deletes(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
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
        assert dlq(stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]) == []
        assert_reconciled(stack)  # every map, the seeded reference data included


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
