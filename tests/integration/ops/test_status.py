"""`dualwrite status` as a real process against a real broker holding known records."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.support.pipeline import fresh_kafka
from topics import MapState, SourceOffset, SourceOffsetKey, dlq_headers, encode

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
HOUR_MS = 3600 * 1000


def run(bootstrap: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "COLUMNS": "200"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "dualwrite", "status", "--timeout", "5", *args],
                          env=env, cwd=REPO, capture_output=True, timeout=60)
    assert time.monotonic() - started < 30, "status must answer in seconds"
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    return proc


def run_status(bootstrap: str, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = run(bootstrap, "--json", *args)
    return proc.returncode, orjson.loads(proc.stdout), proc.stderr.decode()


def seed(bootstrap: str, now: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce("sync.control", key=b"project_tasks", value=encode(MapState(
        map="project_tasks", state="paused", reason="bad task data", ts_ms=now - 60_000)))
    producer.produce("sync.control", key=b"customers", value=encode(MapState(
        map="customers", state="running", ts_ms=now - 120_000)))
    producer.produce("sync.dlq", key=b'{"id":"x"}', value=b"not json", headers=dlq_headers(
        stage="decode", error_class="DecodeError", message="not_json",
        topic="dataverse.cdc.msdyn_projects", partition=0, offset=4, ts_ms=now - 3 * HOUR_MS))
    producer.produce("sync.dlq", key=b"k2", value=b"{}", headers=dlq_headers(
        stage="sink", map_name="projects", error_class="HTTPStatusError", message="400 Bad Request",
        topic="sync.commands.finance", partition=1, offset=9, http_status=400,
        ts_ms=now - 2 * HOUR_MS))
    for system, table, done in (("dataverse", "msdyn_projects", True),
                                ("finance", "ProjectsV2", False)):
        producer.produce("sync.source-offsets",
                         key=encode(SourceOffsetKey(system=system, table=table)),  # type: ignore[arg-type]
                         value=encode(SourceOffset(system=system, table=table, position="v42",  # type: ignore[arg-type]
                                                   snapshot_done=done, ts_ms=now - 30_000)))
    for i in range(5):
        producer.produce("sync.commands.finance", key=f"k{i}".encode(), value=b"{}", partition=0)
    for i in range(3):
        producer.produce("sync.applied.dataverse", key=f"a{i}".encode(), value=b"{}", partition=1)
    assert producer.flush(30) == 0
    # The Finance sink has committed 2 of the 5 commands.
    group = Consumer({"bootstrap.servers": bootstrap, "group.id": "dualwrite-sink-finance",
                      "enable.auto.commit": False})
    try:
        group.commit(offsets=[TopicPartition("sync.commands.finance", 0, 2)], asynchronous=False)
    finally:
        group.close()


def test_status_shows_every_section_and_exits_by_health(tmp_path: Path) -> None:
    with fresh_kafka(tmp_path) as broker:
        now = int(time.time() * 1000)
        seed(broker.bootstrap, now)

        code, doc, err = run_status(broker.bootstrap)
        assert code == 1, err
        assert doc["healthy"] is False and doc["bootstrap"] == broker.bootstrap
        maps = {m["map"]: m for m in doc["maps"]}
        assert maps["project_tasks"]["state"] == "paused"
        assert maps["project_tasks"]["reason"] == "bad task data"
        assert 55 <= maps["project_tasks"]["age_s"] < 120
        assert maps["projects"] == {"map": "projects", "state": "running", "reason": None,
                                    "ts_ms": None, "age_s": None}
        assert maps["customers"]["state"] == "running" and maps["customers"]["ts_ms"] == now - 120_000

        groups = {g["group"]: g for g in doc["groups"]}
        assert set(groups) == {"dualwrite-streams", "dualwrite-sink-finance", "dualwrite-sink-dataverse"}
        assert groups["dualwrite-streams"]["started"] is False
        assert groups["dualwrite-streams"]["condition"] == "not started"
        assert groups["dualwrite-streams"]["members"] == 0
        assert groups["dualwrite-streams"]["topics"] == []
        finance = groups["dualwrite-sink-finance"]
        assert finance["started"] is True and finance["lag"] == 3 and finance["members"] == 0
        assert finance["condition"] == "committing" and finance["state"] == "empty"
        assert finance["topics"] == [{"topic": "sync.commands.finance", "partitions": 1,
                                      "committed": 2, "end": 5, "lag": 3, "expired": 0}]
        dataverse = groups["dualwrite-sink-dataverse"]
        assert dataverse["started"] is False and dataverse["lag"] == 0
        assert [t["topic"] for t in dataverse["topics"]] == ["sync.commands.dataverse"]

        assert doc["parked_available"] is False and doc["parked"] == []

        dlq = doc["dlq"]
        assert dlq["total"] == 2 and dlq["recent"] == 2 and dlq["since_ms"] is None
        assert dlq["newest_ts_ms"] == now - 2 * HOUR_MS
        assert {(c["stage"], c["map"], c["error_class"], c["count"]) for c in dlq["counts"]} == {
            ("decode", "-", "DecodeError", 1), ("sink", "projects", "HTTPStatusError", 1)}

        assert [(s["system"], s["table"], s["snapshot_done"]) for s in doc["sources"]] == [
            ("dataverse", "msdyn_projects", True), ("finance", "ProjectsV2", False)]
        assert all(25 <= s["age_s"] < 120 for s in doc["sources"])

        assert doc["applied"] == [{"target": "finance", "published": 0, "retained": 0},
                                  {"target": "dataverse", "published": 3, "retained": 3}]
        assert "Prometheus" in doc["budget_note"]

        assert doc["problems"] == [
            "map project_tasks is paused: bad task data",
            "2 dead letter(s) on sync.dlq",
        ]
        assert "attention: map project_tasks is paused" in err

        # The same as tables for people.
        proc = run(broker.bootstrap)
        assert proc.returncode == 1
        text = proc.stdout.decode()
        for title in ("Map states", "Consumer lag", "Parked changes", "Dead letters",
                      "Source checkpoints", "Sink acks"):
            assert title in text
        assert "bad task data" in text and "HTTPStatusError" in text and "Prometheus" in text

        # The map resumes and the dead letters are older than --dlq-since: healthy.
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce("sync.control", key=b"project_tasks", value=encode(MapState(
            map="project_tasks", state="running", ts_ms=int(time.time() * 1000))))
        assert producer.flush(30) == 0
        code, doc, err = run_status(broker.bootstrap, "--dlq-since", "1h")
        assert code == 0, err
        assert doc["healthy"] is True and doc["problems"] == []
        assert doc["dlq"]["total"] == 2 and doc["dlq"]["recent"] == 0
        assert {m["map"]: m["state"] for m in doc["maps"]}["project_tasks"] == "running"

        # Retention deletes commands 0..3 while the Finance sink has read only 0 and 1: the two
        # it never read are named, and the lag counts from the new log start.
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        [deleted] = admin.delete_records([TopicPartition("sync.commands.finance", 0, 4)]).values()
        assert deleted.result(30).low_watermark == 4
        code, doc, err = run_status(broker.bootstrap, "--dlq-since", "1h")
        assert code == 1, err
        finance = {g["group"]: g for g in doc["groups"]}["dualwrite-sink-finance"]
        assert finance["topics"] == [{"topic": "sync.commands.finance", "partitions": 1,
                                      "committed": 2, "end": 5, "lag": 1, "expired": 2}]
        assert doc["problems"] == [
            "2 record(s) of sync.commands.finance were deleted by retention before group "
            "dualwrite-sink-finance (sink finance) read them: run `dualwrite reconcile`, then "
            "`dualwrite replay --repair` for what differs"]


def test_status_without_a_broker_exits_1_with_a_hint_and_no_trace() -> None:
    from dualwrite.ports import free_port

    bootstrap = f"127.0.0.1:{free_port()}"
    proc = run(bootstrap, "--timeout", "2")
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert f"cannot reach Kafka at {bootstrap}" in err and "dualwrite kafka status" in err
    proc = run(bootstrap, "--json", "--timeout", "2")
    assert proc.returncode == 1
    doc = orjson.loads(proc.stdout)
    assert doc["reachable"] is False and doc["healthy"] is False and doc["bootstrap"] == bootstrap
