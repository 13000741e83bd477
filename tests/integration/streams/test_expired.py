"""Records retention deleted before the worker read them are reported, not passed over in silence.

A worker stopped for longer than a CDC topic's retention finds its committed offset below the
log start: the consumer resets to the log start and reads on, and what was deleted is gone. The
worker says which offsets, and counts them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.integration.streams.harness import Reader, WorkerProcess
from topics import read_headers

pytestmark = pytest.mark.integration


def test_offsets_deleted_before_the_worker_read_them_are_logged_and_the_rest_is_read(
        kafka_bootstrap: str, prefix: str, unique: str, tmp_path: Path) -> None:
    topic = f"{prefix}dataverse.cdc.msdyn_ledgers"
    app_id = f"streams-{unique}"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(6):  # undecodable: each one read is a dead letter naming its offset
        producer.produce(topic, key=b'{"id": "l-%d"}' % n, value=b"not json", partition=0)
    assert producer.flush(30) == 0
    group = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": app_id, "enable.auto.commit": False})
    try:  # the worker's group read offset 0 before it stopped
        group.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    finally:
        group.close()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    [deleted] = admin.delete_records([TopicPartition(topic, 0, 4)]).values()  # retention, in effect
    assert deleted.result(30).low_watermark == 4

    proc = WorkerProcess(kafka_bootstrap, app_id, prefix, tmp_path / "state", tmp_path / "w.log")
    dlq = Reader(kafka_bootstrap, f"{prefix}sync.dlq", f"dlq-{unique}")
    proc.start()
    try:
        def read(records: list) -> list[str]:
            return sorted(read_headers(r.headers()).get("dlq.original.offset", "") for r in records
                          if read_headers(r.headers()).get("dlq.original.topic") == topic)
        records = dlq.poll_until(lambda rs: len(read(rs)) >= 2, timeout=120, worker=proc)
        assert read(records) == ["4", "5"], proc.tail()
        deadline = time.monotonic() + 30
        while "were deleted by retention" not in proc.tail() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert (f"3 record(s) of {topic}[0] (offsets 1 to 3) were deleted by retention before this "
                "worker read them") in proc.tail()
        assert "run `dualwrite reconcile`" in proc.tail()
    finally:
        dlq.consumer.close()
        proc.stop()
