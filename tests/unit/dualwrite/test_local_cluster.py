"""The local Kafka launcher's layout (no JVM started): a three-node cluster's properties, its
stored layout, what its clients are told, a refused secure cluster; and the durability every
replicated topic is created with."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dualwrite.cli import app
from dualwrite.kafka import ClasspathError, LocalKafka, UnsupportedLayout
from dualwrite.kafka.broker import BrokerStatus
from topics import catalog
from topics.admin import default_replication, min_insync, topic_configs

pytestmark = pytest.mark.unit


def props(kafka: LocalKafka, index: int) -> dict[str, str]:
    lines = kafka.server_properties(kafka.nodes[index])
    return dict(line.split("=", 1) for line in lines if line)


def test_a_cluster_is_three_voters_replicating_3_with_min_isr_2(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "k", port=40000, brokers=3)
    assert [(n.node_id, n.port, n.controller_port) for n in kafka.nodes] == [
        (1, 40000, 40003), (2, 40001, 40004), (3, 40002, 40005)]
    assert kafka.bootstrap == "127.0.0.1:40000,127.0.0.1:40001,127.0.0.1:40002"
    every = [props(kafka, i) for i in range(3)]
    assert {p["controller.quorum.voters"] for p in every} == {
        "1@127.0.0.1:40003,2@127.0.0.1:40004,3@127.0.0.1:40005"}
    assert [p["node.id"] for p in every] == ["1", "2", "3"]
    assert len({p["log.dirs"] for p in every}) == 3
    for p in every:
        assert p["process.roles"] == "broker,controller"
        assert p["default.replication.factor"] == p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["min.insync.replicas"] == p["transaction.state.log.min.isr"] == "2"
        assert p["unclean.leader.election.enable"] == "false"


def test_one_node_keeps_its_layout(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "k", port=40000)
    assert (kafka.brokers, kafka.replication, kafka.controller_port) == (1, 1, 40001)
    assert kafka.pid_path == kafka.data_dir / "broker.pid"  # data dirs of earlier versions
    assert props(kafka, 0)["controller.quorum.voters"] == "1@127.0.0.1:40001"
    assert props(kafka, 0)["offsets.topic.replication.factor"] == "1"
    assert kafka.client_env() == {"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:40000"}


def test_a_cluster_tells_its_clients_the_replication(tmp_path: Path) -> None:
    kafka = LocalKafka(tmp_path / "k", brokers=3, ports=[(41000, 41001), (42000, 42001),
                                                         (43000, 43001)])
    assert kafka.client_env() == {
        "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:41000,127.0.0.1:42000,127.0.0.1:43000",
        "DUALWRITE_TOPICS__REPLICATION": "3"}


def test_the_layout_is_stored_so_status_and_down_find_every_node(tmp_path: Path) -> None:
    first = LocalKafka(tmp_path / "k", port=40000, brokers=3)
    first.data_dir.mkdir(parents=True)
    first._store_layout()
    again = LocalKafka(tmp_path / "k", port=9092)  # `kafka status` without --brokers
    assert [(n.port, n.dir) for n in again.nodes] == [(n.port, n.dir) for n in first.nodes]
    assert again.cluster_id == first.cluster_id
    with pytest.raises(UnsupportedLayout, match="holds a Kafka of 3 broker"):
        LocalKafka(tmp_path / "k", brokers=1)


def test_a_single_broker_dir_does_not_become_a_cluster(tmp_path: Path) -> None:
    (tmp_path / "k" / "logs").mkdir(parents=True)
    with pytest.raises(UnsupportedLayout, match="holds a single broker"):
        LocalKafka(tmp_path / "k", brokers=3)


def test_a_secure_cluster_is_refused_in_one_line_with_exit_2(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedLayout, match="--secure runs a single broker"):
        LocalKafka(tmp_path / "k", brokers=3, secure=True)
    result = CliRunner().invoke(app, ["kafka", "up", "--secure", "--brokers", "3",
                                      "--data-dir", str(tmp_path / "k")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --secure runs a single broker; a secure cluster is not offered (drop --brokers "
        "or --secure)."]
    assert not (tmp_path / "k").exists()  # nothing half-made


def test_a_node_down_is_a_degraded_cluster_not_a_ready_one(tmp_path: Path) -> None:
    status = BrokerStatus(True, 11, "b", True, tmp_path, brokers=3, pids=(11, None, 13))
    assert not status.complete
    assert "2 running" in status.describe() and "node 2 DOWN" in status.describe()
    assert "degraded" in status.describe()
    assert BrokerStatus(True, 11, "b", True, tmp_path, brokers=3, pids=(11, 12, 13)).complete


def test_replicated_topics_need_all_but_one_replica_in_sync() -> None:
    assert [default_replication(n) for n in (1, 2, 3, 5)] == [1, 2, 3, 3]
    assert [min_insync(r) for r in (1, 2, 3)] == [1, 1, 2]
    for spec in catalog(replication=3, cdc_tables=[("dataverse", "msdyn_projects")]):
        assert topic_configs(spec)["min.insync.replicas"] == "2", spec.name
        assert topic_configs(spec)["cleanup.policy"] == spec.cleanup
    for spec in catalog(replication=1, cdc_tables=[("dataverse", "msdyn_projects")]):
        assert "min.insync.replicas" not in topic_configs(spec), spec.name


def test_fetch_resolves_the_jars_ahead_and_says_how_many(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dualwrite.commands.kafka.resolve_classpath", lambda: "/a.jar:/b.jar")
    result = CliRunner().invoke(app, ["kafka", "fetch"])
    assert result.exit_code == 0 and "2 jars ready" in result.output


def test_fetch_without_maven_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> str:
        raise ClasspathError("`mvn` was not found on PATH. Install Apache Maven 3.8+")
    monkeypatch.setattr("dualwrite.commands.kafka.resolve_classpath", missing)
    result = CliRunner().invoke(app, ["kafka", "fetch"])
    assert result.exit_code == 1 and "Install Apache Maven" in result.output
