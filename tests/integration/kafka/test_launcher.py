"""`dualwrite kafka up|status|down` against a real broker process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dualwrite.ports import free_port, free_run

pytestmark = pytest.mark.integration


def dw(*args: str, timeout: float = 180, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dualwrite", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, env=env)


def test_the_broker_jvm_options_are_a_setting(tmp_path: Path) -> None:
    """A broker that runs for long under heavy load gains from the C2 compiler: the options
    are the user's to set (here: without the C1-only flag, with one of their own)."""
    where = ["--port", str(free_port()), "--data-dir", str(tmp_path / "k")]
    env = {**os.environ, "DUALWRITE_LOCAL_KAFKA__JVM_OPTIONS": "-XX:+UseG1GC -XX:MaxGCPauseMillis=25"}
    try:
        up = dw("kafka", "up", *where, env=env)
        assert up.returncode == 0, up.stderr
        args = Path(f"/proc/{(tmp_path / 'k' / 'broker.pid').read_text().strip()}/cmdline").read_bytes().split(b"\0")
        assert b"-XX:MaxGCPauseMillis=25" in args and b"-XX:TieredStopAtLevel=1" not in args
    finally:
        dw("kafka", "down", *where)


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
        # The default JVM options (settings.DEFAULT_BROKER_JVM_OPTIONS): C1 only.
        assert b"-XX:TieredStopAtLevel=1" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")

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


def test_cluster_up_status_a_killed_node_comes_back_with_up_then_down(tmp_path: Path) -> None:
    """`--brokers 3`: three nodes on loopback; topics applied with the printed variables are
    replicated 3 times with min.insync.replicas 2; a SIGKILLed node is reported and `up`
    (idempotent) starts it again, and only it; `down` stops every node."""
    import signal

    from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]

    data = tmp_path / "k"
    where = ["--data-dir", str(data)]
    first = dw("kafka", "up", "--brokers", "3", "--port", str(free_run(6)), *where)
    try:
        assert first.returncode == 0, first.stderr
        env = dict(line.removeprefix("export ").split("=", 1) for line in first.stdout.splitlines())
        bootstrap = env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"]
        assert len(bootstrap.split(",")) == 3 and env["DUALWRITE_TOPICS__REPLICATION"] == "3"
        applied = subprocess.run([sys.executable, "-m", "dualwrite", "topics", "apply"],
                                 env={**os.environ, **env}, capture_output=True, text=True,
                                 timeout=120, check=False)
        assert applied.returncode == 0, applied.stderr
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = admin.list_topics(timeout=10).topics["sync.dlq"]
        assert {len(p.replicas) for p in topic.partitions.values()} == {3}
        resource = ConfigResource(ConfigResource.Type.TOPIC, "sync.dlq")
        assert admin.describe_configs([resource])[resource].result(30)["min.insync.replicas"].value == "2"

        pids = [(data / f"node-{i}" / "broker.pid").read_text().strip() for i in (1, 2, 3)]
        os.kill(int(pids[1]), signal.SIGKILL)
        degraded = dw("kafka", "status", *where)
        assert degraded.returncode == 1 and "node 2 DOWN" in degraded.stdout

        again = dw("kafka", "up", *where)  # the data dir's layout: no --brokers needed
        assert again.returncode == 0, again.stderr
        after = [(data / f"node-{i}" / "broker.pid").read_text().strip() for i in (1, 2, 3)]
        assert after[0] == pids[0] and after[2] == pids[2] and after[1] != pids[1]
        status = dw("kafka", "status", *where)
        assert status.returncode == 0 and "3 running" in status.stdout, status.stdout
    finally:
        down = dw("kafka", "down", *where)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert dw("kafka", "status", *where).returncode == 1
