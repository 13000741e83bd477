"""The one translation of the Kafka security settings: validated once, the same for every client
(librdkafka, Faust, aiokafka), secrets hidden until a client is built; and a bad environment
value is one line naming the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from connectors.common.kafka import KafkaConfig
from dualwrite.commands.connectors import kafka_config
from dualwrite.commands.worker import build_config
from dualwrite.settings import KafkaSettings, Settings, invalid_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
SECRET = "kafka-pass-8f3a"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("DUALWRITE_"):
            monkeypatch.delenv(name)
    return monkeypatch


def errors_for(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(f"DUALWRITE_{name}", value)
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None)
    return invalid_settings(info.value)


@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_without_mechanism_names_the_setting(clean_env: pytest.MonkeyPatch, protocol: str) -> None:
    lines = errors_for(clean_env, KAFKA__SECURITY_PROTOCOL=protocol, KAFKA__SASL_USERNAME="dw",
                       KAFKA__SASL_PASSWORD=SECRET)
    assert lines == [f"DUALWRITE_KAFKA__SASL_MECHANISM must be set when "
                     f"DUALWRITE_KAFKA__SECURITY_PROTOCOL is {protocol}"]


@pytest.mark.parametrize("mechanism", ["GSSAPI", "OAUTHBEARER"])
def test_unsupported_mechanisms_are_refused(clean_env: pytest.MonkeyPatch, mechanism: str) -> None:
    [line] = errors_for(clean_env, KAFKA__SECURITY_PROTOCOL="SASL_SSL", KAFKA__SASL_MECHANISM=mechanism)
    assert line.startswith(f"DUALWRITE_KAFKA__SASL_MECHANISM: {mechanism} is not supported")
    assert "SCRAM-SHA-512" in line


@pytest.mark.parametrize("missing", ["SASL_USERNAME", "SASL_PASSWORD"])
def test_user_and_password_are_required(clean_env: pytest.MonkeyPatch, missing: str) -> None:
    env = {"KAFKA__SECURITY_PROTOCOL": "SASL_SSL", "KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
           "KAFKA__SASL_USERNAME": "dw", "KAFKA__SASL_PASSWORD": SECRET}
    del env[f"KAFKA__{missing}"]
    assert errors_for(clean_env, **env) == [
        f"DUALWRITE_KAFKA__{missing} must be set when DUALWRITE_KAFKA__SECURITY_PROTOCOL is SASL_SSL"]


def test_sasl_settings_without_a_sasl_protocol_are_refused(clean_env: pytest.MonkeyPatch) -> None:
    [line] = errors_for(clean_env, KAFKA__SASL_MECHANISM="PLAIN")
    assert line.startswith("DUALWRITE_KAFKA__SASL_MECHANISM is set but "
                           "DUALWRITE_KAFKA__SECURITY_PROTOCOL is PLAINTEXT")


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_every_client_gets_the_same_security(protocol: str, mechanism: str, tmp_path: Path) -> None:
    kafka = KafkaSettings(security_protocol=protocol, sasl_mechanism=mechanism.lower(),
                          sasl_username="dw", sasl_password=SecretStr(SECRET))
    rdkafka = kafka_config(Settings(kafka=kafka)).base()
    streams = build_config(Settings(kafka=kafka, state_dir=tmp_path), app_id="t", data_dir=None)
    aio = streams.aiokafka_auth()
    assert rdkafka["security.protocol"] == aio["security_protocol"] == protocol
    assert rdkafka["sasl.mechanism"] == aio["sasl_mechanism"] == mechanism
    assert rdkafka["sasl.username"] == aio["sasl_plain_username"] == "dw"
    assert rdkafka["sasl.password"] == aio["sasl_plain_password"] == SECRET
    assert (aio["ssl_context"] is not None) == (protocol == "SASL_SSL")


def test_the_password_is_hidden_until_a_client_is_built(tmp_path: Path) -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
                          sasl_username="dw", sasl_password=SecretStr(SECRET))
    settings = Settings(kafka=kafka, state_dir=tmp_path)
    config = kafka_config(settings)
    shown = [repr(settings), repr(kafka), repr(config), str(config), config.model_dump_json(),
             repr(build_config(settings, app_id="t", data_dir=None))]
    assert not [text for text in shown if SECRET in text]
    assert config.base()["sasl.password"] == SECRET
    # A plain string given to KafkaConfig is hidden as well.
    assert SECRET not in repr(KafkaConfig(client={"sasl.password": SECRET}))


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "sasl-password"
    secret_file.write_text(SECRET + "\n")
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                          sasl_username="dw", sasl_password_file=secret_file)
    assert kafka.client_config()["sasl.password"] == SECRET and SECRET not in repr(kafka)


def test_tls_files_must_exist(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    [line] = errors_for(clean_env, KAFKA__SECURITY_PROTOCOL="SSL",
                        KAFKA__SSL_CAFILE=str(tmp_path / "nope.pem"))
    assert line == f"DUALWRITE_KAFKA__SSL_CAFILE: no such file {tmp_path / 'nope.pem'}"


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUALWRITE_")}
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


@pytest.mark.parametrize(("env", "line"), [
    ({"DUALWRITE_TOPICS__PARTITIONS": "abc"},
     "error: DUALWRITE_TOPICS__PARTITIONS: expected an integer, got 'abc'"),
    ({"DUALWRITE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"},
     "error: DUALWRITE_KAFKA__SASL_MECHANISM must be set when DUALWRITE_KAFKA__SECURITY_PROTOCOL "
     "is SASL_SSL"),
])
def test_a_bad_environment_value_is_one_line_and_exit_2(env: dict[str, str], line: str) -> None:
    result = run_cli(env, "topics", "schema", "sync.dlq")
    assert result.returncode == 2
    assert result.stderr.strip() == line


def test_a_secret_value_is_never_echoed(tmp_path: Path) -> None:
    result = run_cli({"DUALWRITE_KAFKA__SASL_PASSWORD": SECRET}, "topics", "schema", "sync.dlq")
    assert result.returncode == 2 and SECRET not in result.stderr + result.stdout
    assert "DUALWRITE_KAFKA__SASL_PASSWORD is set but" in result.stderr


def test_java_clients_get_a_jaas_line_and_pem_stores_with_secrets_hidden(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path, text in ((ca, "CA"), (cert, "-----BEGIN CERTIFICATE-----\nC\n"), (key, "-----BEGIN PRIVATE KEY-----\nK\n")):
        path.write_text(text)
    settings = KafkaSettings(bootstrap_servers="b:9093", security_protocol="SASL_SSL", sasl_mechanism="PLAIN",
                             sasl_username="dw", sasl_password=SecretStr('p"w\\d'), ssl_cafile=ca,
                             ssl_certfile=cert, ssl_keyfile=key)
    java = settings.java_client()
    assert {k: v for k, v in java.items() if not isinstance(v, SecretStr)} == {
        "bootstrap.servers": "b:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
        "ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca), "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": "-----BEGIN CERTIFICATE-----\nC\n"}
    jaas, client_key = java["sasl.jaas.config"], java["ssl.keystore.key"]
    assert isinstance(jaas, SecretStr) and isinstance(client_key, SecretStr)
    assert jaas.get_secret_value() == ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                                       'username="dw" password="p\\"w\\\\d";')
    assert client_key.get_secret_value() == "-----BEGIN PRIVATE KEY-----\nK\n"
    scram = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_username="dw",
                          sasl_password=SecretStr("x")).java_client()["sasl.jaas.config"]
    assert isinstance(scram, SecretStr) and scram.get_secret_value().startswith(
        "org.apache.kafka.common.security.scram.ScramLoginModule required ")
    assert KafkaSettings().java_client() == {"bootstrap.servers": "127.0.0.1:9092", "security.protocol": "PLAINTEXT"}
