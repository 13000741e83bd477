"""Start an emulator as a real process (`python -m dualwrite emulator ...`) for tests.

Tests talk to it only over HTTP on loopback, exactly as a client would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from dualwrite.ports import free_port
from emulators.common.config import CLIENT_SECRET_ENV

CLIENT_ID = "dualwrite-test"
CLIENT_SECRET = "s3cret-for-tests"
TENANT = "contoso"


@dataclass
class RunningEmulator:
    kind: str
    port: int
    db_path: Path
    log_path: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    secret_in_env: bool = True  # False: the test passes --client-secret-file in args instead
    _log: object = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        suffix = "/api/data/v9.2" if self.kind == "dataverse" else "/data"
        return self.base_url + suffix

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/{TENANT}/oauth2/v2.0/token"

    def token(self) -> str:
        resp = httpx.post(
            self.token_url,
            data={"grant_type": "client_credentials", "client_id": self.client_id,
                  "client_secret": self.client_secret, "scope": f"{self.base_url}/.default"},
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def client(self) -> httpx.Client:
        """An httpx client with a fresh bearer token, rooted at the API."""
        return httpx.Client(base_url=self.api_url, timeout=30.0,
                            headers={"Authorization": f"Bearer {self.token()}"})

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url + "/_admin", timeout=30.0)

    def start(self, timeout: float = 90.0) -> RunningEmulator:  # a loaded machine imports slowly
        # The secret goes through the environment: a command line is visible to every local user.
        cmd = [sys.executable, "-m", "dualwrite", "emulator", self.kind, "--port", str(self.port),
               "--db", str(self.db_path), "--client-id", self.client_id, *self.args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        env = {k: v for k, v in os.environ.items() if k != CLIENT_SECRET_ENV}
        if self.secret_in_env:
            env[CLIENT_SECRET_ENV] = self.client_secret
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                        env={**env, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} emulator exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/_admin/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.kind} emulator did not answer: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None

    def restart(self) -> RunningEmulator:
        self.stop()
        return self.start()


def start_emulator(kind: str, workdir: Path, *args: str, port: int | None = None) -> RunningEmulator:
    """Start `kind` ("dataverse" | "finance") with its SQLite file in `workdir`."""
    emu = RunningEmulator(kind=kind, port=port or free_port(), db_path=workdir / f"{kind}.db",
                          log_path=workdir / f"{kind}.log", args=list(args))
    return emu.start()
