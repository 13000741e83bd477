from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dualwrite.commands.connectors import (
    dataverse_connection,
    finance_connection,
    kafka_config,
    sink_app,
    source_app,
)
from dualwrite.settings import Settings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("app", "command", "words"), [
    (source_app, "dataverse", "delta links"), (source_app, "finance", "change feed"),
    (sink_app, "dataverse", "sync.commands.dataverse"), (sink_app, "finance", "sync.commands.finance"),
])
def test_every_command_has_help(app: object, command: str, words: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"])  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    assert words in result.output


def test_configs_are_built_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUALWRITE_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("DUALWRITE_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DUALWRITE_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("DUALWRITE_KAFKA__SASL_USERNAME", "dw")
    monkeypatch.setenv("DUALWRITE_KAFKA__SASL_PASSWORD", "kafka-secret-123")
    monkeypatch.setenv("DUALWRITE_DATAVERSE__URL", "https://org.crm.dynamics.com")
    monkeypatch.setenv("DUALWRITE_DATAVERSE__CLIENT_SECRET", "dv-secret-123")
    monkeypatch.setenv("DUALWRITE_FINANCE__COMPANY", "demf")
    settings = Settings(_env_file=None)
    kafka = kafka_config(settings)
    assert kafka.bootstrap_servers == "k1:9092,k2:9092" and kafka.client["security.protocol"] == "SASL_SSL"
    assert "kafka-secret-123" not in repr(kafka) and kafka.base()["sasl.password"] == "kafka-secret-123"
    dv = dataverse_connection(settings)
    assert dv.api_url == "https://org.crm.dynamics.com/api/data/v9.2"
    assert dv.credentials().scope == "https://org.crm.dynamics.com/.default"
    assert dv.client_secret.get_secret_value() == "dv-secret-123" and "dv-secret-123" not in repr(dv)
    assert finance_connection(settings).company == "demf"
