"""`dualwrite kafka up|status|down` against a real broker process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import free_port

pytestmark = pytest.mark.integration


def dw(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_up_status_idempotent_up_down(tmp_path: Path) -> None:
    port = free_port()
    where = ["--port", str(port), "--data-dir", str(tmp_path / "k")]
    first = dw("kafka", "up", *where)
    try:
        assert first.returncode == 0, first.stderr
        assert first.stdout.strip() == f"127.0.0.1:{port}"
        status = dw("kafka", "status", *where)
        assert status.returncode == 0
        assert "running" in status.stdout and "ready" in status.stdout
        pid = (tmp_path / "k" / "broker.pid").read_text().strip()

        again = dw("kafka", "up", *where)
        assert again.returncode == 0, again.stderr
        assert (tmp_path / "k" / "broker.pid").read_text().strip() == pid  # same broker, not a new one
    finally:
        down = dw("kafka", "down", *where)
    assert down.returncode == 0 and "stopped" in down.stdout
    after = dw("kafka", "status", *where)
    assert after.returncode == 1 and "not running" in after.stdout
    assert dw("kafka", "down", *where).stdout.strip() == "Kafka was not running."


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = dw("kafka", "up", "--port", str(port), "--data-dir", str(tmp_path / "k"))
    assert result.returncode == 1
    assert f"Port {port}" in result.stderr and "already taken" in result.stderr
    assert not (tmp_path / "k" / "broker.pid").exists()


def test_stale_pid_file_never_kills_a_stranger(tmp_path: Path) -> None:
    data = tmp_path / "k"
    data.mkdir()
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (data / "broker.pid").write_text(str(stranger.pid))
        result = dw("kafka", "down", "--port", str(free_port()), "--data-dir", str(data))
        assert result.stdout.strip() == "Kafka was not running."
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def _minimal_path(tmp_path: Path, tools: list[str]) -> str:
    """A PATH holding only the named tools (and no others)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        found = shutil.which(tool)
        assert found is not None, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _minimal_path(tmp_path, [])}
    result = subprocess.run([sys.executable, "-m", "dualwrite", "kafka", "up", "--port",
                             str(free_port()), "--data-dir", str(tmp_path / "k")], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "`java` was not found" in result.stderr and "JDK 17" in result.stderr


def test_missing_maven_on_a_cold_cache_is_a_clear_error(tmp_path: Path) -> None:
    # A new HOME has no cached classpath, so the jars must be resolved, which needs Maven.
    env = {**os.environ, "PATH": _minimal_path(tmp_path, ["java"]), "HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-m", "dualwrite", "kafka", "up", "--port",
                             str(free_port()), "--data-dir", str(tmp_path / "k")], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "`mvn` was not found" in result.stderr and "Maven" in result.stderr


def test_storage_is_formatted_whatever_the_random_cluster_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Regression: a base64url cluster id starting with "-" was read as an option by the tool.
    from dualwrite.kafka import broker as broker_module
    from dualwrite.kafka.classpath import resolve_classpath

    monkeypatch.setattr(broker_module, "_cluster_id", lambda: "-" + "A" * 21)
    kafka = broker_module.LocalKafka(tmp_path / "k", port=free_port(), controller_port=free_port())
    kafka.data_dir.mkdir(parents=True)
    kafka._format(resolve_classpath(kafka.cache_dir), kafka._write_properties())
    assert (kafka.data_dir / "logs" / "meta.properties").read_text().count("cluster.id=-AAAA") == 1
