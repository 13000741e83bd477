"""Start, inspect and stop a local KRaft broker or cluster on 127.0.0.1.

One node (the default) is one combined broker + controller. A cluster (``brokers=3``) is three
such nodes forming a 3-voter controller quorum: the smallest layout in which any one node can
die and both the metadata quorum (2 of 3 voters) and every partition (replication 3,
``min.insync.replicas`` 2, `topics.admin.default_replication`) keep serving, with three JVMs
rather than six on a small machine.

Everything lives in one data directory. A single node uses it directly (``server.properties``,
the formatted log dirs, the pid file and ``broker.log``); a cluster keeps one such directory per
node (``node-1`` ...) and its layout (ports, cluster id) in ``cluster.json``, so ``status``,
``down`` and a later ``up`` find every node without being told again. Client ports are ``port``
.. ``port + n - 1``, controller ports the next n (a single node: ``port + 1``, as before).
``up`` is idempotent and (re)starts any node that is not running, so a killed node comes back
with ``up``; ``down`` only stops the processes this directory started (it checks each pid's
command line, so a stale pid file never kills a stranger).

A data directory first started with ``secure=True`` has a SASL_SSL listener (SCRAM-SHA-512 and a
generated CA, `dualwrite.kafka.secure`) instead of PLAINTEXT, for good: every later start, the
status probe and `client_settings` use it. A secure cluster is not offered
(`UnsupportedLayout`): its nodes would need certificates and SCRAM users of their own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from dualwrite.kafka.classpath import CACHE_DIR, KAFKA_VERSION, require_tool, resolve_classpath
from dualwrite.kafka.secure import SecureListener
from dualwrite.settings import DEFAULT_BROKER_JVM_OPTIONS, KafkaSettings
from topics.admin import default_replication, min_insync

__all__ = ["BrokerStatus", "KafkaNode", "LocalKafka", "LocalKafkaError", "UnsupportedLayout"]

LOG4J = Path(__file__).with_name("log4j2.yaml")
LAYOUT = "cluster.json"


class LocalKafkaError(RuntimeError):
    """The local broker could not be started or stopped; the message says what to do."""


class UnsupportedLayout(LocalKafkaError):
    """A layout this launcher does not build (a secure cluster, or a data dir holding another
    number of brokers than asked for); a usage error, not a failure."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool  # at least one node of this data dir runs
    pid: int | None  # the first running node's
    bootstrap: str
    answering: bool  # metadata answers and names every node
    data_dir: Path
    secure: bool = False
    brokers: int = 1
    pids: tuple[int | None, ...] = ()  # per node, None where it is down

    @property
    def complete(self) -> bool:
        """Every node runs and the cluster answers with all of them."""
        return self.answering and all(p is not None for p in self.pids)

    def describe(self) -> str:
        if not self.running:
            return f"Kafka {KAFKA_VERSION}: not running (data dir {self.data_dir})"
        state = "ready" if self.answering else "starting or unresponsive"
        listener = " (SASL_SSL)" if self.secure else ""
        if self.brokers == 1:
            return f"Kafka {KAFKA_VERSION}: running, pid {self.pid}, {self.bootstrap}{listener}, {state}"
        nodes = ", ".join(f"node {i} pid {p}" if p else f"node {i} DOWN"
                          for i, p in enumerate(self.pids, start=1))
        up = sum(p is not None for p in self.pids)
        if self.answering and up < self.brokers:
            state = "serving, degraded"
        return (f"Kafka {KAFKA_VERSION}: cluster of {self.brokers} brokers, {up} running "
                f"({nodes}), {self.bootstrap}, {state}")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def registered_brokers(client: KafkaSettings, timeout: float = 2.0) -> int:
    """How many brokers the cluster's metadata names; 0 when it does not answer."""
    config: dict[str, Any] = {**client.client_config(), "log_level": 0, "logger": _quiet_logger()}
    admin = AdminClient(config)
    try:
        return len(admin.list_topics(timeout=timeout).brokers)
    except Exception:
        return 0


def metadata_answers(client: KafkaSettings, timeout: float = 2.0) -> bool:
    return registered_brokers(client, timeout) > 0


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


@dataclass(frozen=True)
class KafkaNode:
    """One JVM: a combined broker + controller with its own directory and two ports."""

    node_id: int
    port: int
    controller_port: int
    dir: Path

    @property
    def log_path(self) -> Path:
        return self.dir / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.dir / "broker.pid"

    @property
    def props_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def formatted(self) -> bool:
        return (self.dir / "logs" / "meta.properties").exists()

    @property
    def marker(self) -> str:
        """The JVM argument naming this node's directory: how its process is recognised."""
        return f"-Ddualwrite.data.dir={self.dir}"

    def pid(self) -> int | None:
        """The pid of the JVM this node's directory started, if that process is still alive."""
        try:
            pid = int(self.pid_path.read_text().strip())
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ours = b"kafka.Kafka" in args and self.marker.encode() in args
        return pid if ours else None

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log yet)"


class LocalKafka:
    """A node or a cluster in `data_dir`: node i (from 0) listens on 127.0.0.1:`port` + i for
    clients and on the controller port ``controller_port`` (one node) or `port` + n + i; tests
    pass free `ports` ((client, controller) per node) instead. ``brokers=None`` takes what the
    data dir holds (one node when it holds nothing yet)."""

    def __init__(self, data_dir: Path, port: int = 9092, controller_port: int | None = None,
                 heap: str = "768m", cache_dir: Path | None = None, secure: bool = False,
                 brokers: int | None = None,
                 ports: Sequence[tuple[int, int]] | None = None,
                 jvm_options: str = DEFAULT_BROKER_JVM_OPTIONS) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.heap = heap
        self.jvm_options = tuple(jvm_options.split())
        self.cache_dir = cache_dir or CACHE_DIR
        self.listener = SecureListener(self.data_dir)
        self._secure = secure
        self._cluster_id: str | None = None
        stored = self._stored_layout()
        if stored is not None:
            self.nodes = stored
        elif (brokers or 1) == 1:
            self.nodes = (KafkaNode(1, port, controller_port or port + 1, self.data_dir),)
        else:
            n = int(brokers or 1)
            pairs = list(ports) if ports is not None else [(port + i, port + n + i) for i in range(n)]
            if len(pairs) != n:
                raise UnsupportedLayout(f"{n} brokers need {n} port pairs, got {len(pairs)}")
            self.nodes = tuple(KafkaNode(i, p, c, self.data_dir / f"node-{i}")
                               for i, (p, c) in enumerate(pairs, start=1))
        if brokers is not None and brokers != len(self.nodes):
            raise UnsupportedLayout(
                f"{self.data_dir} holds a Kafka of {len(self.nodes)} broker(s), not {brokers}; "
                "use another --data-dir (or `dualwrite kafka down` and remove it).")
        if len(self.nodes) > 1 and stored is None and (self.data_dir / "logs").exists():
            raise UnsupportedLayout(
                f"{self.data_dir} holds a single broker; start the cluster in another --data-dir.")
        if self.secure and len(self.nodes) > 1:
            raise UnsupportedLayout("--secure runs a single broker; a secure cluster is not "
                                    "offered (drop --brokers or --secure).")

    def _stored_layout(self) -> tuple[KafkaNode, ...] | None:
        try:
            doc = json.loads((self.data_dir / LAYOUT).read_text())
        except (OSError, ValueError):
            return None
        self._cluster_id = str(doc["cluster_id"])
        return tuple(KafkaNode(int(n["id"]), int(n["port"]), int(n["controller_port"]),
                               self.data_dir / f"node-{n['id']}") for n in doc["nodes"])

    def _store_layout(self) -> None:
        if len(self.nodes) == 1 or (self.data_dir / LAYOUT).exists():
            return
        doc = {"cluster_id": self.cluster_id,
               "nodes": [{"id": n.node_id, "port": n.port, "controller_port": n.controller_port}
                         for n in self.nodes]}
        (self.data_dir / LAYOUT).write_text(json.dumps(doc, indent=2) + "\n")

    @property
    def cluster_id(self) -> str:
        if self._cluster_id is None:
            self._cluster_id = _cluster_id()
        return self._cluster_id

    @property
    def port(self) -> int:
        return self.nodes[0].port

    @property
    def controller_port(self) -> int:
        return self.nodes[0].controller_port

    @property
    def brokers(self) -> int:
        return len(self.nodes)

    @property
    def replication(self) -> int:
        """The replication factor of this cluster's topics (the broker default and what its
        clients are told to apply)."""
        return default_replication(self.brokers)

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
        """The ``DUALWRITE_*`` variables of a client (no secret: the password is a file); for a
        cluster also the replication factor `dualwrite topics apply` and the worker use."""
        if self.secure:
            return self.listener.client_env(self.bootstrap)
        env = {"DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap}
        if self.replication > 1:
            env["DUALWRITE_TOPICS__REPLICATION"] = str(self.replication)
        return env

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def log_path(self) -> Path:
        return self.nodes[0].log_path

    @property
    def pid_path(self) -> Path:
        return self.nodes[0].pid_path

    def _pid(self) -> int | None:
        return self.nodes[0].pid()

    def status(self) -> BrokerStatus:
        pids = tuple(n.pid() for n in self.nodes)
        alive = [p for p in pids if p is not None]
        answering = bool(alive) and registered_brokers(self.client_settings()) == self.brokers
        return BrokerStatus(bool(alive), alive[0] if alive else None, self.bootstrap, answering,
                            self.data_dir, self.secure, self.brokers, pids)

    def log_tail(self, lines: int = 25) -> str:
        if self.brokers == 1:
            return self.nodes[0].log_tail(lines)
        return "\n".join(f"--- node {n.node_id} ({n.log_path})\n{n.log_tail(lines)}"
                         for n in self.nodes)

    def _listeners(self, node: KafkaNode) -> list[str]:
        if self.secure:
            return self.listener.server_properties(node.port, node.controller_port)
        return [
            f"listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        ]

    def server_properties(self, node: KafkaNode) -> list[str]:
        """The lines of `node`'s ``server.properties``: its roles and listeners, the quorum of
        every node, and replication of the cluster (internal topics included)."""
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        rf, isr = self.replication, min_insync(self.replication)
        return [
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={voters}",
            *self._listeners(node),
            "controller.listener.names=CONTROLLER",
            f"log.dirs={node.dir / 'logs'}",
            "num.partitions=3",
            f"default.replication.factor={rf}",
            f"min.insync.replicas={isr}",
            f"offsets.topic.replication.factor={rf}",
            "offsets.topic.num.partitions=10",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={isr}",
            "unclean.leader.election.enable=false",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.segment.bytes=67108864",
            "",
        ]

    def _write_properties(self, node: KafkaNode | None = None) -> Path:
        node = node or self.nodes[0]
        node.dir.mkdir(parents=True, exist_ok=True)
        props = node.props_path
        props.touch(mode=0o600)
        props.chmod(0o600)  # a secure listener's passwords are in it
        props.write_text("\n".join(self.server_properties(node)))
        return props

    @property
    def _formatted(self) -> bool:
        return self.nodes[0].formatted

    def _format(self, classpath: str, props: Path, node: KafkaNode | None = None) -> None:
        """Format `node`'s storage once (every node of a cluster with the same cluster id)."""
        node = node or self.nodes[0]
        if node.formatted:
            return
        tool = ["kafka.tools.StorageTool", "format", f"--cluster-id={self.cluster_id}", "-c", str(props)]
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
        """Start every node that does not run; return once metadata names all of them."""
        current = self.status()
        if current.running and all(p is not None for p in current.pids):
            if not current.answering and not self._wait_ready(timeout, []):
                raise LocalKafkaError(f"Kafka (pid {current.pid}) runs but does not answer on "
                                      f"{self.bootstrap}.\n{self.log_tail()}")
            return self.status()
        down = [n for n, pid in zip(self.nodes, current.pids, strict=True) if pid is None]
        for node in down:
            for port in (node.port, node.controller_port):
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
        if self.brokers > 1 and not any(n.formatted for n in self.nodes):
            self._store_layout()
        started: list[subprocess.Popen[bytes]] = []
        for node in down:
            props = self._write_properties(node)
            self._format(classpath, props, node)
            started.append(self._start(classpath, node))
        if not self._wait_ready(timeout, started):
            for proc in started:
                self._kill(proc.pid)
            raise LocalKafkaError(f"Kafka did not become ready on {self.bootstrap} within "
                                  f"{timeout:.0f}s. Last broker log lines:\n{self.log_tail()}")
        return self.status()

    def _start(self, classpath: str, node: KafkaNode) -> subprocess.Popen[bytes]:
        with open(node.log_path, "ab") as log:
            proc = subprocess.Popen(
                ["java", f"-Xmx{self.heap}", f"-Xms{self.heap}", *self.jvm_options,
                 "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J}",
                 node.marker, "-cp", classpath, "kafka.Kafka", str(node.props_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI that started it
            )
        node.pid_path.write_text(str(proc.pid))
        return proc

    def _wait_ready(self, timeout: float, procs: list[subprocess.Popen[bytes]]) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in procs:
                if proc.poll() is not None:
                    raise LocalKafkaError(f"Kafka exited with code {proc.returncode} while "
                                          f"starting. Last broker log lines:\n{self.log_tail()}")
            # Every node listens (a restarted one too: metadata may still name a killed
            # node until the controller fences it) and the metadata names all of them.
            if (all(port_in_use(n.port) for n in self.nodes)
                    and registered_brokers(self.client_settings()) == self.brokers):
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
        """Stop every node this data dir started; False when none was running."""
        stopped = False
        for node in reversed(self.nodes):
            pid = node.pid()
            if pid is not None:
                self._kill(pid)
                stopped = True
            node.pid_path.unlink(missing_ok=True)
        return stopped
