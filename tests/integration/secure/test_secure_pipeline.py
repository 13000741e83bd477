"""The pipeline through a SASL_SSL broker (`dualwrite kafka up --secure`: SCRAM-SHA-512, a
generated CA): every client authenticates with the one translation of the settings, a wrong
password or a PLAINTEXT client fails saying why, and no secret shows on a command line or in
an output."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from connectors.common.kafka import read_records
from dualwrite.commands.connectors import kafka_config
from dualwrite.commands.worker import build_config
from dualwrite.flink import materialise_command
from dualwrite.kafka import CONSOLE_CONSUMER, LocalKafka, tool_command
from dualwrite.ports import free_port
from dualwrite.scenario import Scenario
from dualwrite.settings import Settings
from dualwrite.stack import Stack, StackConfig
from streams.maps import default_registry
from tests.support.kafka import wait_for_leaders
from tests.support.pipeline import wait_for
from topics import ChangeEvent, Source, TopicSpec, apply_topics, catalog, encode, encode_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    kafka = LocalKafka(tmp_path_factory.mktemp("secure") / "kafka", port=free_port(),
                       controller_port=free_port(), heap="512m", secure=True)
    kafka.up(timeout=180)
    try:
        yield kafka
    finally:
        kafka.down()


@pytest.fixture(scope="module")
def settings(broker: LocalKafka) -> Settings:
    return Settings(kafka=broker.client_settings())


@pytest.fixture(scope="module")
def password(broker: LocalKafka) -> str:
    return broker.listener.sasl_password_file.read_text().strip()


def dualwrite(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUALWRITE_")}
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


def test_kafka_up_secure_prints_the_settings_and_keeps_secrets_in_owner_only_files(
        broker: LocalKafka, password: str) -> None:
    # Up again on the running broker's data dir: idempotent, and it tells how to connect.
    result = dualwrite({}, "kafka", "up", "--secure", "--port", str(broker.port),
                       "--data-dir", str(broker.data_dir))
    assert result.returncode == 0, result.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines())
    assert exports == broker.client_env()
    assert exports["DUALWRITE_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert exports["DUALWRITE_KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert password not in result.stdout + result.stderr
    for path in (broker.listener.sasl_password_file, broker.listener.store_password_file,
                 broker.data_dir / "server.properties"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not list(broker.listener.dir.glob("*.args"))  # the format @argfile is gone
    pid = int(broker.pid_path.read_text())
    assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()


def test_topics_are_provisioned_through_sasl_ssl(broker: LocalKafka, password: str) -> None:
    result = dualwrite(broker.client_env(), "topics", "apply", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    assert "drift(s)" in result.stderr and password not in result.stderr + result.stdout
    again = dualwrite(broker.client_env(), "topics", "apply", "--check", "--timeout", "60")
    assert again.returncode == 0 and "0 created" in again.stderr, again.stderr


def test_confluent_kafka_and_aiokafka_clients_authenticate(settings: Settings, tmp_path: Path) -> None:
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    admin_config: dict[str, str | int | float | bool] = {**settings.kafka.client_config()}
    assert AdminClient(admin_config).list_topics(timeout=30).topics is not None
    streams = build_config(settings.model_copy(update={"state_dir": tmp_path}), app_id="probe",
                           data_dir=None)

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=streams.bootstrap_servers,
                                    **streams.aiokafka_auth())
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"from aiokafka", key=b"k")
        finally:
            await producer.stop()

    asyncio.run(send())  # aiokafka (Faust's driver mapping) authenticates and writes
    [record] = read_records(kafka_config(settings), topic, timeout=30)  # confluent-kafka reads
    assert (record.key, record.value) == (b"k", b"from aiokafka")


def test_a_wrong_password_is_an_authentication_error(broker: LocalKafka, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-password"
    wrong.write_text("not-the-password")
    env = {**broker.client_env(), "DUALWRITE_KAFKA__SASL_PASSWORD_FILE": str(wrong)}
    for args in (["dlq", "list", "--timeout", "5"], ["topics", "apply", "--timeout", "5"]):
        result = dualwrite(env, *args)
        assert result.returncode in (1, 2), result.stderr
        assert "authentication failed" in result.stderr and "refused the SASL credentials" in result.stderr
        assert "cannot reach" not in result.stderr


def test_a_plaintext_client_on_the_sasl_ssl_port_is_told_so(broker: LocalKafka) -> None:
    env = {"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap}
    result = dualwrite(env, "dlq", "list", "--timeout", "5")
    assert result.returncode == 1
    assert "security protocol mismatch" in result.stderr and "PLAINTEXT" in result.stderr
    assert "cannot reach" not in result.stderr


def test_the_pipeline_runs_through_sasl_ssl(broker: LocalKafka, settings: Settings, password: str,
                                           tmp_path: Path) -> None:
    specs = catalog(partitions=3, cdc_tables=default_registry().cdc_tables())
    assert apply_topics(settings.kafka.client_config(), specs).ok
    admin_config: dict[str, str | int | float | bool] = {**settings.kafka.client_config()}
    wait_for_leaders(AdminClient(admin_config), [s.name for s in specs])
    stack = Stack(StackConfig(workdir=tmp_path, kafka_bootstrap=broker.bootstrap),
                  broker.client_env())
    try:
        stack.start_emulators()
        stack.start_pipeline()  # sources, sinks and the worker: confluent-kafka (its topic checks: aiokafka)
        scenario = Scenario(stack.dataverse(), stack.finance())
        project = scenario.create_project()
        scenario.create_task(project, "1")
        scenario.create_customer()
        wait_for(lambda: scenario.progress().done, 240, "the round trip through SASL_SSL")
        assert read_records(kafka_config(settings), "sync.dlq", timeout=30) == []
        status = dualwrite(broker.client_env(), "status", "--json", "--timeout", "20")
        assert '"bootstrap"' in status.stdout and password not in status.stdout + status.stderr
    finally:
        stack.stop()
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log"))
    assert logs and password not in logs


def test_analytics_tools_read_the_topics_through_sasl_ssl(broker: LocalKafka, settings: Settings,
                                                          tmp_path: Path) -> None:
    """An analytics user of a SASL_SSL cluster: `topics client-properties` writes the Java
    client settings, with which Kafka's console consumer and Flink SQL (`debezium-json`) read a
    CDC topic. The user's password holds quotes, a backslash, the properties format's own
    characters and letters beyond Latin-1: it survives the JAAS and the properties escaping,
    and is on no command line and in no output."""
    user, secret = "analyst", 'q"u\\o=t:e# Łódź 😀'
    admin = AdminClient({**settings.kafka.client_config()})
    futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), secret.encode())])
    for future in futures.values():
        future.result(timeout=30)
    topic = f"analytics-{uuid.uuid4().hex[:8]}"
    assert apply_topics(settings.kafka.client_config(),
                        [TopicSpec(topic, 3, 1, "delete", None, None, None, "analytics")]).ok
    wait_for_leaders(admin, [topic])
    source = Source(system="dataverse", table="msdyn_projects", version="1", ts_ms=1)
    a1, a2, b = {"id": "A", "name": "first", "n": 1}, {"id": "A", "name": "renamed", "n": 2}, {"id": "B", "name": "gone", "n": 3}
    events = [("A", ChangeEvent(after=a1, op="c", ts_ms=1, source=source)),
              ("B", ChangeEvent(after=b, op="c", ts_ms=1, source=source)),
              ("A", ChangeEvent(before=a1, after=a2, op="u", ts_ms=2, source=source)),
              ("B", ChangeEvent(before=b, op="d", ts_ms=3, source=source)),
              ("C", ChangeEvent(after={"id": "C", "name": "read", "n": 4}, op="r", ts_ms=4, source=source))]
    producer = Producer(settings.kafka.client_config())
    for key, event in events:
        producer.produce(topic, key=encode_key(key), value=encode(event))
        if event.op == "d":
            producer.produce(topic, key=encode_key(key), value=None)  # its tombstone
    assert producer.flush(30) == 0

    password_file = tmp_path / "analyst-password"
    password_file.write_text(secret)
    env = {**broker.client_env(), "DUALWRITE_KAFKA__SASL_USERNAME": user,
           "DUALWRITE_KAFKA__SASL_PASSWORD_FILE": str(password_file)}
    properties = tmp_path / "client.properties"
    written = dualwrite(env, "topics", "client-properties", "--out", str(properties))
    assert written.returncode == 0, written.stderr
    assert "--consumer.config" in written.stderr and secret not in written.stdout + written.stderr
    assert stat.S_IMODE(properties.stat().st_mode) == 0o600

    console = tool_command(CONSOLE_CONSUMER, "--bootstrap-server", broker.bootstrap, "--consumer.config",
                           str(properties), "--topic", topic, "--from-beginning", "--max-messages", "6",
                           "--timeout-ms", "60000", "--property", "print.key=true")
    read = subprocess.run(console, capture_output=True, text=True, timeout=180, check=False)
    assert read.returncode == 0, read.stderr[-2000:]
    assert len(read.stdout.splitlines()) == 6, read.stderr[-2000:]

    flink = materialise_command(broker.bootstrap, topic, ["id"], [("id", "STRING"), ("name", "STRING"), ("n", "INT")],
                                properties=properties)
    assert not any(secret in word for word in console + flink)
    job = subprocess.run(flink, capture_output=True, timeout=300, check=False)
    assert job.returncode == 0, job.stderr.decode()[-3000:]
    *rows, summary = [orjson.loads(line) for line in job.stdout.splitlines()]
    assert [r["row"] for r in rows] == [a2, {"id": "C", "name": "read", "n": 4}]
    assert summary["changes"] == {"+I": 3, "-U": 1, "+U": 1, "-D": 1}
