"""Kafka's command-line tools on the broker's own classpath: pinned in the POM at the broker's
version, run through `tool_command` from the cached resolution (no second Maven run)."""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from dualwrite.kafka import CONSOLE_CONSUMER, tool_command
from dualwrite.kafka import classpath as cp

pytestmark = pytest.mark.unit

NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def test_the_pom_pins_kafka_tools_at_the_brokers_version() -> None:
    pom = ET.parse(cp.POM).getroot()
    assert pom.findtext("m:properties/m:kafka.version", namespaces=NS) == cp.KAFKA_VERSION
    versions = {d.findtext("m:artifactId", namespaces=NS): d.findtext("m:version", namespaces=NS)
                for d in pom.findall("m:dependencies/m:dependency", NS)}
    assert versions["kafka-tools"] == versions["kafka_2.13"] == "${kafka.version}"


def test_tool_command_runs_the_tool_on_the_cached_broker_classpath(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jar = tmp_path / "kafka-tools.jar"
    jar.touch()
    digest = hashlib.sha256(cp.POM.read_bytes()).hexdigest()[:16]
    (tmp_path / f"classpath-{digest}.txt").write_text(str(jar))
    monkeypatch.setattr("shutil.which", lambda name: f"/opt/bin/{name}")  # the cache spares Maven
    cmd = tool_command(CONSOLE_CONSUMER, "--topic", "t", cache_dir=tmp_path)
    assert cmd[0] == "/opt/bin/java"
    assert f"-Dlog4j2.configurationFile={cp.TOOLS_LOG4J}" in cmd
    assert cmd[cmd.index("-cp") + 1] == str(jar)
    assert cmd[-3:] == ["org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", "t"]


def test_the_tools_log_to_stderr_only_since_their_stdout_is_data() -> None:
    config = yaml.safe_load(cp.TOOLS_LOG4J.read_text())["Configuration"]
    assert config["Appenders"]["Console"]["target"] == "SYSTEM_ERR"
    assert config["Loggers"]["Root"]["level"] == "WARN"
