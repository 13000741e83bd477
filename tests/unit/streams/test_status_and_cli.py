from collections.abc import Mapping

import pytest
from typer.testing import CliRunner

from dualwrite.commands import worker
from dualwrite.settings import KafkaSettings, Settings, TopicSettings
from streams import gate
from streams.status import parked_entries

pytestmark = pytest.mark.unit


def test_parked_entries_show_age_and_missing_key_oldest_first():
    parked = {
        "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf')": {"waiting": [
            {"id": "project_tasks:t2:3", "map": "project_tasks", "parked_ms": 9_000}]},
        "row:dataverse:cdm_companies:c1": {"waiting": [
            {"id": "projects:p1:7", "map": "projects", "parked_ms": 4_000}], "released": []},
    }
    entries = parked_entries(parked.items(), now_ms=10_000)
    assert [(e.change_id, e.age_s) for e in entries] == [("projects:p1:7", 6.0),
                                                         ("project_tasks:t2:3", 1.0)]
    assert entries[1].waits_for.startswith("present:ProjectsV2(")


class CountingTable(Mapping):
    """A parked table that records which keys were read (a worker's live table is RocksDB)."""

    def __init__(self):
        self.data: dict = {}
        self.read: list[str] = []

    def __getitem__(self, key):
        self.read.append(key)
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


def test_a_live_table_is_read_without_its_released_chunks():
    """The worker's gauge reads its parked table every few seconds on the event loop: the
    chunks kept for replay after a release (a 6,000-member transaction's) are never decoded."""
    table = CountingTable()

    def apply(writes):
        for key, value in writes:
            table.data.pop(key, None) if value is None else table.data.__setitem__(key, value)

    apply(gate.park("tx:big", [{"id": f"m{n}", "map": "actuals", "parked_ms": 1_000}
                               for n in range(250)], 1, table.get)[0])
    apply(gate.release("tx:big", 2, table.get)[0])
    apply(gate.park("key:projects:p1", [{"id": "t1", "map": "project_tasks", "parked_ms": 4_000}],
                    3, table.get)[0])
    table.read.clear()
    entries = parked_entries(table, now_ms=10_000)
    assert [(e.change_id, e.age_s) for e in entries] == [("t1", 6.0)]
    released_chunks = {gate.chunk_key("tx:big", n) for n in range(3)}
    assert released_chunks <= set(table), "the release keeps its chunks for replay"
    assert not released_chunks & set(table.read)


def test_worker_help_names_its_options():
    result = CliRunner().invoke(worker.app, ["--help"])
    assert result.exit_code == 0
    for option in ("--data-dir", "--app-id", "--log-level", "--session-timeout", "--instance-id"):
        assert option in result.output


def test_config_built_from_settings(tmp_path):
    settings = Settings(kafka=KafkaSettings(bootstrap_servers="b1:9092,b2:9092"),
                        topics=TopicSettings(partitions=6), state_dir=tmp_path)
    config = worker.build_config(settings, app_id="w1", data_dir=None)
    assert config.partitions == 6 and config.data_dir == tmp_path / "w1"
    assert config.broker_urls() == ["kafka://b1:9092", "kafka://b2:9092"]
    assert config.store == "rocksdb://"


def test_an_instance_id_makes_the_worker_a_static_group_member(tmp_path):
    from streams import create_app

    def app_of(**kwargs):
        config = worker.build_config(Settings(state_dir=tmp_path), app_id="w1", data_dir=tmp_path,
                                     **kwargs).model_copy(update={"store": "memory://"})
        return create_app(config)

    member = app_of(instance_id="worker-2").conf.consumer_group_instance_id
    assert member is not None and member.startswith("worker-2-")
    assert app_of(instance_id="worker-2").conf.consumer_group_instance_id == member  # restarts keep it
    assert app_of().conf.consumer_group_instance_id is None  # dynamic membership by default


def test_a_worker_that_reads_other_topics_joins_as_another_static_member():
    # Kafka hands a static member rejoining under its id the group's cached assignment, without
    # a rebalance: a worker restarted with a map added would never get the map's CDC topics.
    from streams.app import group_instance_id

    topics = ["dataverse.cdc.accounts", "sync.control"]
    assert group_instance_id("w", topics) == group_instance_id("w", list(reversed(topics)))
    assert group_instance_id("w", topics) != group_instance_id("w", [*topics, "dataverse.cdc.msdyn_ledgers"])
    assert group_instance_id(None, topics) is None


def test_sasl_and_tls_settings_reach_the_faust_app(tmp_path):
    import faust
    from pydantic import SecretStr

    from streams import create_app

    kafka = KafkaSettings(bootstrap_servers="b1:9093", security_protocol="SASL_PLAINTEXT",
                          sasl_mechanism="SCRAM-SHA-512", sasl_username="dw",
                          sasl_password=SecretStr("s3cret"))
    config = worker.build_config(Settings(kafka=kafka, state_dir=tmp_path), app_id="cred-test",
                                 data_dir=tmp_path).model_copy(update={"store": "memory://"})
    app = create_app(config)
    credentials = app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "dw" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert "s3cret" not in repr(config)
    assert [str(u) for u in app.conf.broker] == ["kafka://b1:9093"]
