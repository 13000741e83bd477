"""docker-compose.yml stays in step with the CLI: every service runs a real `dualwrite` command.

(`docker compose config -q` needs a Docker client with the compose plugin, which CI lacks; this
test checks what the project controls: structure, images, and that each command exists.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dualwrite.cli import app

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_kafka_is_the_official_kraft_image_on_localhost() -> None:
    kafka = compose()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:4.")
    assert "127.0.0.1:9092:9092" in kafka["ports"]
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "EXTERNAL://localhost:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]


def test_published_ports_answer_on_loopback_only() -> None:
    published = [(name, str(port)) for name, service in compose()["services"].items()
                 for port in service.get("ports", [])]
    assert published, "nothing published?"
    assert [(name, port) for name, port in published if not port.startswith("127.0.0.1:")] == []


def test_no_secret_is_on_a_command_line() -> None:
    commands = {name: " ".join(service.get("command", []))
                for name, service in compose()["services"].items()}
    assert {name: c for name, c in commands.items() if "SECRET" in c or "--client " in c} == {}


def test_every_dualwrite_service_runs_an_existing_command() -> None:
    runner = CliRunner()
    services = {name: s for name, s in compose()["services"].items() if name != "kafka"}
    assert {"topics", "dataverse", "finance", "worker"} <= set(services)
    for name, service in services.items():
        assert service.get("build") == ".", name
        command = [part for part in service["command"] if not part.startswith("--")][:2]
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, f"{name}: `dualwrite {' '.join(command)}` -> {result.output}"
