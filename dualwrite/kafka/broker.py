"""Start, inspect and stop one local KRaft broker (combined broker + controller) on 127.0.0.1.

Everything lives in one data directory: ``server.properties``, the formatted log dirs, the pid
file and ``broker.log``. ``up`` is idempotent; ``down`` only stops the process this directory
started (it checks the pid's command line, so a stale pid file never kills a stranger).

A data directory first started with ``secure=True`` has a SASL_SSL listener (SCRAM-SHA-512 and a
generated CA, `dualwrite.kafka.secure`) instead of PLAINTEXT, for good: every later start, the
status probe and `client_settings` use it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from dualwrite.kafka.classpath import KAFKA_VERSION, require_tool, resolve_classpath
from dualwrite.kafka.secure import SecureListener
from dualwrite.settings import KafkaSettings

__all__ = ["BrokerStatus", "LocalKafka", "LocalKafkaError"]

LOG4J = Path(__file__).with_name("log4j2.yaml")


class LocalKafkaError(RuntimeError):
    """The local broker could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    answering: bool
    data_dir: Path
    secure: bool = False

    def describe(self) -> str:
        if not self.running:
            return f"Kafka {KAFKA_VERSION}: not running (data dir {self.data_dir})"
        state = "ready" if self.answering else "starting or unresponsive"
        listener = " (SASL_SSL)" if self.secure else ""
        return f"Kafka {KAFKA_VERSION}: running, pid {self.pid}, {self.bootstrap}{listener}, {state}"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def metadata_answers(client: KafkaSettings, timeout: float = 2.0) -> bool:
    config: dict[str, Any] = {**client.client_config(), "log_level": 0, "logger": _quiet_logger()}
    admin = AdminClient(config)
    try:
        admin.list_topics(timeout=timeout)
        return True
    except Exception:
        return False


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, base64url without padding (what random-uuid prints).

    It may start with "-", so callers pass it as ``--cluster-id=<id>``, never as a separate
    argument (one start in 64 failed with a usage error before)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _quiet_logger() -> object:
    import logging

    logger = logging.getLogger("dualwrite.kafka.probe")
    logger.propagate = False
    logger.addHandler(logging.NullHandler())
    return logger


class LocalKafka:
    """One broker in `data_dir`, listening on 127.0.0.1:`port` (controller on `controller_port`)."""

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int | None = None,
                 heap: str = "768m", cache_dir: Path | None = None, secure: bool = False) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.port = port
        self.controller_port = controller_port or port + 1
        self.heap = heap
        self.cache_dir = cache_dir or Path.home() / ".cache" / "dualwrite"
        self.listener = SecureListener(self.data_dir)
        self._secure = secure

    @property
    def secure(self) -> bool:
        """SASL_SSL: asked for, or this data dir was created secure."""
        return self._secure or self.listener.exists()

    def client_settings(self) -> KafkaSettings:
        """How a client reaches this broker (the settings every process reads)."""
        if self.secure:
            return self.listener.settings(self.bootstrap)
        return KafkaSettings(bootstrap_servers=self.bootstrap)

    def client_env(self) -> dict[str, str]:
        """The ``DUALWRITE_KAFKA__*`` variables of a client (no secret: the password is a file)."""
        if self.secure:
            return self.listener.client_env(self.bootstrap)
        return {"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "broker.pid"

    def _pid(self) -> int | None:
        """The pid of the broker this data dir started, if that process is still alive."""
        try:
            pid = int(self.pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            return None
        ours = b"kafka.Kafka" in cmdline and str(self.data_dir).encode() in cmdline
        return pid if ours else None

    def status(self) -> BrokerStatus:
        pid = self._pid()
        answering = pid is not None and metadata_answers(self.client_settings())
        return BrokerStatus(pid is not None, pid, self.bootstrap, answering, self.data_dir,
                            self.secure)

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log yet)"

    def _listeners(self) -> list[str]:
        if self.secure:
            return self.listener.server_properties(self.port, self.controller_port)
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ]

    def _write_properties(self) -> Path:
        props = self.data_dir / "server.properties"
        props.touch(mode=0o600)
        props.chmod(0o600)  # a secure listener's passwords are in it
        props.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            *self._listeners(),
            "controller.listener.names=CONTROLLER",
            f"log.dirs={self.data_dir / 'logs'}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.segment.bytes=67108864",
            "",
        ]))
        return props

    @property
    def _formatted(self) -> bool:
        return (self.data_dir / "logs" / "meta.properties").exists()

    def _format(self, classpath: str, props: Path) -> None:
        if self._formatted:
            return
        tool = ["kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}", "-c", str(props)]
        argfile = None
        if self.secure:
            # The SCRAM user is created with the metadata; its password goes through a java
            # @argfile (main class and arguments) so it never shows on a command line.
            argfile = self.listener.scram_argfile(tool)
            tool = [f"@{argfile}"]
        cmd = ["java", "-cp", classpath, f"-Dlog4j2.configurationFile={LOG4J}", *tool]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        finally:
            if argfile is not None:
                argfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise LocalKafkaError(f"Formatting the KRaft storage failed:\n{proc.stdout}{proc.stderr}")

    def up(self, timeout: float = 90.0) -> BrokerStatus:
        """Start the broker unless it already runs; return once metadata requests answer."""
        current = self.status()
        if current.running:
            if not current.answering and not self._wait_ready(timeout):
                raise LocalKafkaError(f"Kafka (pid {current.pid}) runs but does not answer on "
                                      f"{self.bootstrap}.\n{self.log_tail()}")
            return self.status()
        for port in (self.port, self.controller_port):
            if port_in_use(port):
                raise LocalKafkaError(
                    f"Port {port} on 127.0.0.1 is already taken by another process. "
                    f"Stop it or choose another port (dualwrite kafka up --port N)."
                )
        require_tool("java", "Install a JDK 17+ (Debian: `apt-get install openjdk-17-jdk-headless`).")
        classpath = resolve_classpath(self.cache_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.secure and not self.listener.exists():
            if self._formatted:
                raise LocalKafkaError(
                    f"{self.data_dir} holds a broker created without --secure (its storage has "
                    "no SCRAM user); start the secure broker in another --data-dir.")
            require_tool("keytool", "keytool comes with the JDK; put the JDK's bin on PATH.")
            self.listener.ensure()
        props = self._write_properties()
        self._format(classpath, props)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                ["java", f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC",
                 "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J}",
                 f"-Ddualwrite.data.dir={self.data_dir}", "-cp", classpath, "kafka.Kafka",
                 str(props)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI that started it
            )
        self.pid_path.write_text(str(proc.pid))
        if not self._wait_ready(timeout, proc):
            self._kill(proc.pid)
            raise LocalKafkaError(f"Kafka did not become ready on {self.bootstrap} within "
                                  f"{timeout:.0f}s. Last broker log lines:\n{self.log_tail()}")
        return self.status()

    def _wait_ready(self, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise LocalKafkaError(f"Kafka exited with code {proc.returncode} while starting. "
                                      f"Last broker log lines:\n{self.log_tail()}")
            if port_in_use(self.port) and metadata_answers(self.client_settings()):
                return True
            time.sleep(0.3)
        return False

    def _kill(self, pid: int, grace: float = 30.0) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
                if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                    break
            except (ProcessLookupError, OSError):
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(pid, os.WNOHANG)

    def down(self) -> bool:
        """Stop the broker this data dir started; False when none was running."""
        pid = self._pid()
        if pid is None:
            self.pid_path.unlink(missing_ok=True)
            return False
        self._kill(pid)
        self.pid_path.unlink(missing_ok=True)
        return True
