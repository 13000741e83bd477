"""The whole system as child processes on one machine: emulators, worker, sources and sinks.

`dualwrite demo` runs it for people; the integration and chaos tests run it to kill parts of it.
Every process is a real `dualwrite ...` command configured only through the environment, exactly
as a deployment would configure it.

Several workers (``StackConfig.workers``) join one consumer group, as replicas of a deployment
would: ``worker``, ``worker-2``, ... each with its own RocksDB state dir (RocksDB locks its
directory; Faust's web server is off, so there is no port to share).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
from pydantic import SecretStr

from dualwrite.apiclient import ApiSession
from dualwrite.ports import free_port
from dualwrite.supervisor import Supervisor
from emulators.common.config import CLIENT_SECRET_ENV

if TYPE_CHECKING:
    from dualwrite.reconcile import MapReport

__all__ = ["PIPELINE", "Stack", "StackConfig", "pipeline", "worker_names"]

TENANT = "local"
# Start order matters only for readiness: the sinks and the worker wait for their topics.
PIPELINE = ("worker", "sink-finance", "sink-dataverse", "source-dataverse", "source-finance")


def worker_names(workers: int) -> tuple[str, ...]:
    """``worker``, ``worker-2``, ...: the first keeps the name a single worker always had."""
    return ("worker", *(f"worker-{i}" for i in range(2, workers + 1)))


def pipeline(workers: int = 1) -> tuple[str, ...]:
    """The pipeline's process names with `workers` workers, in start order."""
    return (*worker_names(workers), *PIPELINE[1:])


@dataclass(frozen=True)
class StackConfig:
    workdir: Path
    kafka_bootstrap: str
    dataverse_port: int = 0
    finance_port: int = 0
    client_id: str = "dualwrite"
    source_client_id: str = "dualwrite-source"  # the sources' own identity and budget
    # The people working in both systems (scenarios, tests, reconcile): a user of their own, as
    # in a tenant, so their requests never spend the sinks' service-protection budget (shared,
    # a busy scenario used up the sinks' 6,000 requests in 40 s and stalled them for 4 minutes).
    user_client_id: str = "dualwrite-user"
    client_secret: SecretStr = field(default_factory=lambda: SecretStr("dualwrite-local-secret"))
    seed: bool = True
    workers: int = 1
    replication: int = 1  # of the topics the workers create (the cluster's: min(3, brokers))


class Stack:
    """Starts and supervises the emulators and the pipeline processes."""

    def __init__(self, cfg: StackConfig, extra_env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.dv_port = cfg.dataverse_port or free_port()
        self.fo_port = cfg.finance_port or free_port()
        secret = cfg.client_secret.get_secret_value()
        self.env = {
            "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": cfg.kafka_bootstrap,
            "DUALWRITE_DATAVERSE__URL": self.dv_url,
            "DUALWRITE_DATAVERSE__TOKEN_URL": f"{self.dv_url}/{TENANT}/oauth2/v2.0/token",
            "DUALWRITE_DATAVERSE__CLIENT_ID": cfg.client_id,
            "DUALWRITE_DATAVERSE__CLIENT_SECRET": secret,
            "DUALWRITE_DATAVERSE__SOURCE_CLIENT_ID": cfg.source_client_id,
            "DUALWRITE_FINANCE__URL": self.fo_url,
            "DUALWRITE_FINANCE__TOKEN_URL": f"{self.fo_url}/{TENANT}/oauth2/v2.0/token",
            "DUALWRITE_FINANCE__CLIENT_ID": cfg.client_id,
            "DUALWRITE_FINANCE__CLIENT_SECRET": secret,
            "DUALWRITE_FINANCE__SOURCE_CLIENT_ID": cfg.source_client_id,
            "DUALWRITE_STATE_DIR": str(cfg.workdir / "state"),
            "DUALWRITE_TOPICS__REPLICATION": str(cfg.replication),
            **(extra_env or {}),
        }
        self.sup = Supervisor(cfg.workdir / "logs", self.env)

    @property
    def dv_url(self) -> str:
        return f"http://127.0.0.1:{self.dv_port}"

    @property
    def fo_url(self) -> str:
        return f"http://127.0.0.1:{self.fo_port}"

    def _healthy(self, url: str) -> bool:
        return httpx.get(f"{url}/_admin/health", timeout=1.0).status_code == 200

    def start_emulators(self) -> None:
        # The secret goes through the child's environment, never its command line (ps shows that).
        secret = {CLIENT_SECRET_ENV: self.cfg.client_secret.get_secret_value()}
        seed = ["--seed"] if self.cfg.seed else []
        for name, port, url in (("dataverse", self.dv_port, self.dv_url),
                                ("finance", self.fo_port, self.fo_url)):
            self.sup.start(
                f"emulator-{name}",
                Supervisor.dualwrite("emulator", name, "--port", str(port), "--db",
                                     str(self.cfg.workdir / f"{name}.db"),
                                     "--client-id", self.cfg.client_id,
                                     "--client-id", self.cfg.source_client_id,
                                     "--client-id", self.cfg.user_client_id, *seed),
                env=secret, ready=functools.partial(self._healthy, url), timeout=60)

    @property
    def pipeline(self) -> tuple[str, ...]:
        return pipeline(self.cfg.workers)

    def argv(self, name: str) -> list[str]:
        if name == "worker" or name.startswith("worker-"):
            # Its name is its static group membership: restarted, it is back at once.
            return Supervisor.dualwrite("worker", "--data-dir", str(self.cfg.workdir / "state" / name),
                                        "--instance-id", name)
        kind, system = name.split("-", 1)
        return Supervisor.dualwrite(kind, system)

    def start_pipeline(self, names: tuple[str, ...] | None = None) -> None:
        """Start pipeline processes (default: all of them, with the configured workers); any
        that exits non-zero is restarted (the worker exits 75 on purpose when it must re-read
        its input)."""
        for name in names or self.pipeline:
            self.sup.start(name, self.argv(name), restart=True)
        self.sup.watch()

    def dataverse(self) -> ApiSession:
        """An API session of the people working in Dataverse (not the sinks' identity)."""
        return ApiSession(f"{self.dv_url}/api/data/v9.2", self.env["DUALWRITE_DATAVERSE__TOKEN_URL"],
                          self.cfg.user_client_id, self.cfg.client_secret)

    def finance(self) -> ApiSession:
        """An API session of the people working in Finance (not the sinks' identity)."""
        return ApiSession(f"{self.fo_url}/data", self.env["DUALWRITE_FINANCE__TOKEN_URL"],
                          self.cfg.user_client_id, self.cfg.client_secret)

    def reconcile(self, maps: Sequence[str] | None = None) -> list[MapReport]:
        """Both emulators compared map by map through their APIs, as `dualwrite reconcile` does
        (the maps this stack's processes run)."""
        from dualwrite.reconcile import ApiTables, reconcile
        from streams.maps import load_registry

        tables = ApiTables({"dataverse": self.dataverse(), "finance": self.finance()})
        try:
            return reconcile(load_registry(self.env.get("DUALWRITE_PROCESSOR__MAPS")), tables, maps)
        finally:
            tables.close()

    def stop(self) -> None:
        self.sup.stop_all()
