"""Topic provisioning and the envelope on a real broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streams.maps import default_registry
from tests.support.kafka import wait_for_leaders
from topics import (
    ChangeEvent,
    apply_topics,
    catalog,
    decode_event,
    decode_key,
    encode,
    encode_key,
)
from topics.catalog import TopicSpec

pytestmark = pytest.mark.integration


def prefixed(specs: list[TopicSpec], prefix: str) -> list[TopicSpec]:
    return [TopicSpec(f"{prefix}.{s.name}", s.partitions, s.replication, s.cleanup, s.retention_ms,
                      s.key_model, s.value_model, s.description) for s in specs]


def test_apply_creates_then_is_a_noop_then_check_passes(kafka_bootstrap: str, unique: str) -> None:
    specs = prefixed(catalog(partitions=2, cdc_tables=default_registry().cdc_tables()), f"t{unique}")
    cfg = {"bootstrap.servers": kafka_bootstrap}
    first = apply_topics(cfg, specs)
    assert sorted(first.created) == sorted(s.name for s in specs) and first.ok
    second = apply_topics(cfg, specs)
    assert second.created == [] and len(second.present) == len(specs) and second.ok
    assert apply_topics(cfg, specs, check=True).ok


def test_check_names_each_drift(kafka_bootstrap: str, unique: str) -> None:
    specs = prefixed(catalog(partitions=3, cdc_tables=default_registry().cdc_tables()), f"d{unique}")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    wrong_parts, wrong_cleanup, missing = specs[0], specs[1], specs[2]
    futures = admin.create_topics([
        NewTopic(wrong_parts.name, num_partitions=1, replication_factor=1, config=wrong_parts.configs()),
        NewTopic(wrong_cleanup.name, num_partitions=3, replication_factor=1,
                 config={"cleanup.policy": "compact"}),
    ])
    for f in futures.values():
        f.result(30)
    deadline = time.monotonic() + 30  # creation is acknowledged before metadata shows it
    while not {wrong_parts.name, wrong_cleanup.name} <= set(admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    report = apply_topics({"bootstrap.servers": kafka_bootstrap}, specs[:3], check=True)
    found = {(d.topic, d.what) for d in report.drifts}
    assert (wrong_parts.name, "partition count") in found
    assert (wrong_cleanup.name, "cleanup.policy") in found
    assert (missing.name, "topic") in found
    assert not report.ok


def test_check_names_a_replication_factor_below_the_catalogs(kafka_bootstrap: str, unique: str) -> None:
    """A cluster's catalog (replication 3 on a cluster of three) against topics made with one
    replica, as a `topics apply` that forgot DUALWRITE_TOPICS__REPLICATION would leave them."""
    single = prefixed(catalog(partitions=3, cdc_tables=[("dataverse", "msdyn_projects")]),
                      f"r{unique}")[:2]
    first = apply_topics({"bootstrap.servers": kafka_bootstrap}, single)
    assert first.ok and len(first.created) == 2
    wait_for_leaders(AdminClient({"bootstrap.servers": kafka_bootstrap}), [s.name for s in single])
    replicated = [replace(s, replication=3) for s in single]
    report = apply_topics({"bootstrap.servers": kafka_bootstrap}, replicated, check=True)
    assert {(d.topic, d.what, d.expected, d.actual) for d in report.drifts} >= {
        (s.name, "replication factor", "3", "1") for s in single}
    # and the durability a replicated topic must have, named too
    assert {(d.topic, d.what) for d in report.drifts} >= {
        (s.name, "min.insync.replicas") for s in single}


def test_cli_apply_and_check(kafka_bootstrap: str) -> None:
    env = {**os.environ, "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap}
    run = [sys.executable, "-m", "dualwrite", "topics", "apply"]
    applied = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert applied.returncode == 0, applied.stderr
    checked = subprocess.run([*run, "--check"], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "0 drift(s)" in checked.stderr


def test_cli_check_exits_nonzero_when_broker_unreachable() -> None:
    env = {**os.environ, "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = subprocess.run([sys.executable, "-m", "dualwrite", "topics", "apply", "--check",
                             "--timeout", "3"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "cannot reach Kafka" in result.stderr


def test_envelope_round_trip_with_tombstone(kafka_bootstrap: str, unique: str) -> None:
    topic = f"rt{unique}.dataverse.cdc.msdyn_projects"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    wait_for_leaders(admin, [topic])
    pid = "6f1c2a9e-0000-4000-8000-000000000001"
    source = {"system": "dataverse", "table": "msdyn_projects", "version": "41", "ts_ms": 1700000000000,
              "company": "usmf", "txid": "tx-1", "origin": "alice"}
    created = ChangeEvent.model_validate({"after": {"msdyn_projectid": pid, "msdyn_subject": "Ærø"},
                                          "op": "c", "ts_ms": 1700000000001, "source": source})
    deleted = ChangeEvent.model_validate({"before": {"msdyn_projectid": pid}, "op": "d",
                                          "ts_ms": 1700000000002,
                                          "source": {**source, "version": "42"}})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for value in (encode(created), encode(deleted), None):
        producer.produce(topic, key=encode_key(pid), value=value)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"g{unique}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got: list[tuple[str, ChangeEvent | None]] = []
    deadline = time.monotonic() + 30
    while len(got) < 3 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append((decode_key(msg.key()).id, decode_event(msg.value())))
    consumer.close()
    assert got == [(pid, created), (pid, deleted), (pid, None)]
