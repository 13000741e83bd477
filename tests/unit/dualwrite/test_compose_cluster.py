"""docker-compose.cluster.yml over docker-compose.yml: a three-broker KRaft cluster whose
clients apply replication 3, and a worker that scales (`--scale worker=N`).

Docker is not available to the tests: the files are read with yaml.safe_load and merged the way
compose merges an override file (mappings key by key, sequences appended)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
KAFKA_CLIENTS = ("topics", "worker", "source-dataverse", "source-finance", "sink-dataverse",
                 "sink-finance")


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / name).read_text())
    assert isinstance(doc, dict)
    return doc


def merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in override.items()}}
    if isinstance(base, list) and isinstance(override, list):
        return [*base, *override]
    return override


def cluster() -> dict[str, Any]:
    merged: dict[str, Any] = merge(load("docker-compose.yml"), load("docker-compose.cluster.yml"))
    return merged


def test_three_nodes_share_one_quorum_of_all_three() -> None:
    services = cluster()["services"]
    nodes = {name: services[name]["environment"] for name in ("kafka", "kafka-2", "kafka-3")}
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in nodes.values()}
    assert len(voters) == 1
    quorum = dict(v.split("@") for v in voters.pop().split(","))
    assert quorum == {str(env["KAFKA_NODE_ID"]): f"{name}:9093" for name, env in nodes.items()}
    for name, env in nodes.items():
        assert services[name]["image"].startswith("apache/kafka:4."), name
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3, name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2, name
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3, name
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2, name
        assert f"INTERNAL://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"], name


def test_each_node_is_published_on_loopback_at_the_port_it_advertises() -> None:
    services = cluster()["services"]
    for name in ("kafka", "kafka-2", "kafka-3"):
        advertised = services[name]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        external = next(a for a in advertised.split(",") if a.startswith("EXTERNAL://"))
        port = external.rsplit(":", 1)[1]
        assert f"127.0.0.1:{port}:{port}" in services[name]["ports"], name
    published = [str(p) for s in services.values() for p in s.get("ports", [])]
    assert [p for p in published if not p.startswith("127.0.0.1:")] == []


def test_every_kafka_client_reaches_all_nodes_and_applies_replication_3() -> None:
    services = cluster()["services"]
    for name in KAFKA_CLIENTS:
        env = services[name]["environment"]
        assert env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"].split(",") == [
            "kafka:19092", "kafka-2:19092", "kafka-3:19092"], name
        assert env["DUALWRITE_TOPICS__REPLICATION"] == "3", name
    depends = services["topics"]["depends_on"]
    assert {n: d["condition"] for n, d in depends.items()} == {
        "kafka": "service_healthy", "kafka-2": "service_healthy", "kafka-3": "service_healthy"}


def test_the_single_broker_file_alone_is_unchanged_by_the_cluster() -> None:
    env = load("docker-compose.yml")["services"]["kafka"]["environment"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "kafka-2" not in load("docker-compose.yml")["services"]


def test_the_worker_scales_each_replica_with_its_own_state_volume() -> None:
    # A shared named volume would put two RocksDB stores in one locked directory.
    worker = load("docker-compose.yml")["services"]["worker"]
    assert "volumes" not in worker
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "VOLUME /var/lib/dualwrite" in dockerfile
    assert "DUALWRITE_STATE_DIR=/var/lib/dualwrite" in dockerfile
    assert "container_name" not in worker  # a fixed name forbids --scale
