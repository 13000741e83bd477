"""The material of a local broker's SASL_SSL listener (`dualwrite kafka up --secure`).

Everything lives in ``<data dir>/secure`` and is created once, on the first secure start:

- ``ca.p12`` / ``ca.pem``: a private certificate authority (its key never leaves ``ca.p12``);
  clients verify the broker with ``ca.pem``;
- ``broker.p12``: the broker's key and a certificate the CA signed for ``127.0.0.1`` and
  ``localhost`` (hostname verification stays on in every client);
- ``store-password``: the password of both PKCS12 stores;
- ``sasl-password``: the password of the SCRAM-SHA-512 user ``dualwrite``, created in the KRaft
  metadata when the storage is formatted (`scram_argfile`).

Secrets are files readable by their owner only (0600) and never appear on a command line:
keytool reads the store password with ``-storepass:file``, and the storage tool gets its
``--add-scram`` argument from a java ``@argfile`` that is deleted right after. The client side is
expressed as the `dualwrite.settings.KafkaSettings` every process reads, with the password
given as a file (`client_env`), so no secret is printed either. No ``cryptography`` package is
needed: the JDK that runs the broker has keytool.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

from dualwrite.settings import KafkaSettings

__all__ = ["MECHANISM", "USER", "SecureListener"]

USER = "dualwrite"
MECHANISM = "SCRAM-SHA-512"
SAN = "SAN=ip:127.0.0.1,dns:localhost"


class SecureListener:
    """The TLS and SCRAM material in ``<data dir>/secure``."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "secure"

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.dir / "broker.p12"

    @property
    def store_password_file(self) -> Path:
        return self.dir / "store-password"

    @property
    def sasl_password_file(self) -> Path:
        return self.dir / "sasl-password"

    def exists(self) -> bool:
        return self.keystore.is_file() and self.sasl_password_file.is_file()

    def ensure(self) -> None:
        """Create the CA, the broker certificate and the passwords unless they exist."""
        if self.exists():
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        _secret_file(self.store_password_file, secrets.token_urlsafe(24))
        _secret_file(self.sasl_password_file, secrets.token_urlsafe(24))
        ca, csr, signed = self.dir / "ca.p12", self.dir / "broker.csr", self.dir / "broker.pem"
        for leftover in (ca, self.keystore, csr, signed, self.ca_pem):
            leftover.unlink(missing_ok=True)
        self._keytool("-genkeypair", "-alias", "ca", "-keyalg", "RSA", "-keysize", "2048",
                      "-dname", "CN=dualwrite local CA", "-ext", "bc:c=ca:true",
                      "-ext", "ku:c=keyCertSign,cRLSign", "-validity", "3650", "-keystore", str(ca))
        self._keytool("-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca),
                      "-file", str(self.ca_pem))
        self._keytool("-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048",
                      "-dname", "CN=127.0.0.1", "-ext", SAN, "-validity", "825",
                      "-keystore", str(self.keystore))
        self._keytool("-certreq", "-alias", "broker", "-keystore", str(self.keystore),
                      "-file", str(csr))
        self._keytool("-gencert", "-alias", "ca", "-keystore", str(ca), "-infile", str(csr),
                      "-outfile", str(signed), "-rfc", "-validity", "825", "-ext", SAN,
                      "-ext", "ku:c=digitalSignature,keyEncipherment", "-ext", "eku=serverAuth")
        self._keytool("-importcert", "-noprompt", "-alias", "ca", "-file", str(self.ca_pem),
                      "-keystore", str(self.keystore))
        self._keytool("-importcert", "-noprompt", "-alias", "broker", "-file", str(signed),
                      "-keystore", str(self.keystore))
        csr.unlink()
        signed.unlink()

    def _keytool(self, *args: str) -> None:
        # `-storepass:file` and `-keypass:file` read the password from the file, not argv.
        cmd = ["keytool", *args, "-storetype", "PKCS12",
               "-storepass:file", str(self.store_password_file)]
        if args[0] == "-genkeypair":
            cmd += ["-keypass:file", str(self.store_password_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"keytool {args[0]} failed: {proc.stdout}{proc.stderr}")

    def _secret(self, path: Path) -> str:
        return path.read_text().strip()

    def server_properties(self, port: int, controller_port: int) -> list[str]:
        """The listener lines of ``server.properties`` (the file is 0600: it holds passwords).
        The controller listener stays PLAINTEXT on 127.0.0.1, as KRaft's own channel."""
        store = self._secret(self.store_password_file)
        sasl = self._secret(self.sasl_password_file)
        jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                f'username="{USER}" password="{sasl}";')
        return [
            f"listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=SASL_SSL",
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"sasl.mechanism.inter.broker.protocol={MECHANISM}",
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config={jaas}",
            f"ssl.keystore.location={self.keystore}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.password={store}",
            f"ssl.key.password={store}",
            f"ssl.truststore.location={self.ca_pem}",
            "ssl.truststore.type=PEM",
            "ssl.endpoint.identification.algorithm=https",
        ]

    def scram_argfile(self, tool: list[str]) -> Path:
        """A java ``@argfile`` with the storage tool's main class and arguments ``tool`` plus
        ``--add-scram`` for the user (0600; the caller deletes it once the storage is
        formatted). The launcher expands @argfiles only before the main class, so the main
        class is in the file too."""
        path = self.dir / "format.args"
        sasl = self._secret(self.sasl_password_file)
        words = [*tool, "--add-scram", f"{MECHANISM}=[name={USER},password={sasl}]"]
        _secret_file(path, "\n".join(f'"{w}"' for w in words) + "\n")
        return path

    def client_env(self, bootstrap: str) -> dict[str, str]:
        """The ``DUALWRITE_KAFKA__*`` variables of a client of this listener (no secret: the
        password is named by its file)."""
        return {
            "DUALWRITE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "DUALWRITE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "DUALWRITE_KAFKA__SASL_MECHANISM": MECHANISM,
            "DUALWRITE_KAFKA__SASL_USERNAME": USER,
            "DUALWRITE_KAFKA__SASL_PASSWORD_FILE": str(self.sasl_password_file),
            "DUALWRITE_KAFKA__SSL_CAFILE": str(self.ca_pem),
        }

    def settings(self, bootstrap: str) -> KafkaSettings:
        """The same, as settings (what the launcher's own readiness probe uses)."""
        return KafkaSettings(bootstrap_servers=bootstrap, security_protocol="SASL_SSL",
                             sasl_mechanism=MECHANISM, sasl_username=USER,
                             sasl_password_file=self.sasl_password_file, ssl_cafile=self.ca_pem)


def _secret_file(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read (created 0600, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
