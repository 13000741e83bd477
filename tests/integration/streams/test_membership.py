"""A static worker restarted with a map added reads the map's topics.

Kafka hands a static member (``--instance-id``, KIP-345) that rejoins under its id the group's
cached assignment, with no rebalance, even when it now subscribes to more topics: the added
map's CDC topic would be read by nobody, silently. The worker joins under its id plus a digest
of the topics it reads (`streams.app.group_instance_id`), so a changed subscription is a new
member and gets a fresh assignment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

from streams.maps import default_registry
from streams.maps.registry import MapRegistry
from tests.integration.streams.harness import Reader, WorkerProcess
from topics import read_headers

ADDED = "ledgers"  # the only map that reads dataverse msdyn_ledgers
WITHOUT_ADDED = MapRegistry(tuple(m for m in default_registry().maps if m.name != ADDED))
MAPS_ENV = "DUALWRITE_PROCESSOR__MAPS"


def _joined(proc: WorkerProcess, times: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while proc.log.read_text(errors="replace").count("Worker ready") < times:
        proc.check()
        assert time.monotonic() < deadline, proc.tail()
        time.sleep(0.5)


def test_a_static_worker_restarted_with_a_map_added_reads_the_added_map_s_topic(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    topic = f"{prefix}dataverse.cdc.msdyn_ledgers"
    assert ("dataverse", "msdyn_ledgers") not in WITHOUT_ADDED.cdc_tables()
    monkeypatch.setenv("STREAMS_TEST_LOGLEVEL", "info")
    proc = WorkerProcess(kafka_bootstrap, f"streams-{unique}", prefix, tmp_path / "state",
                         tmp_path / "worker.log")
    proc.args += ["--instance-id", "worker-a"]
    proc.env[MAPS_ENV] = f"{__name__}:WITHOUT_ADDED"
    dlq = Reader(kafka_bootstrap, f"{prefix}sync.dlq", f"dlq-{unique}")
    try:
        proc.start()
        _joined(proc, 1)
        proc.kill()  # no LeaveGroup: the static member stays in the group for its session
        del proc.env[MAPS_ENV]  # the default maps: ledgers added
        proc.start()
        _joined(proc, 2)
        # An undecodable record: ingest dead-letters it, naming its topic, once it reads the topic.
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(topic, key=b'{"id": "l-1"}', value=b"not json")
        producer.flush(30)
        records = dlq.poll_until(lambda rs: any(
            read_headers(r.headers()).get("dlq.original.topic") == topic for r in rs),
            timeout=120, worker=proc)
        assert any(read_headers(r.headers()).get("dlq.original.topic") == topic for r in records), \
            f"{topic} was never read after the restart:\n{proc.tail()}"
    finally:
        dlq.consumer.close()
        proc.stop()
