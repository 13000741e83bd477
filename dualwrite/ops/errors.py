"""Expected failures of the operations commands, each with what to do next."""

from __future__ import annotations

__all__ = ["KafkaRefused", "KafkaUnreachable", "OpsError", "TopicMissing", "TopicsMissing"]


class OpsError(Exception):
    """An expected failure: the command prints ``str(exc)`` and exits with ``exit_code``."""

    exit_code = 1


class KafkaUnreachable(OpsError):
    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(
            f"cannot reach Kafka at {bootstrap} ({detail}). Is the broker up? Start a local one "
            "with `dualwrite kafka up`, or point DUALWRITE_KAFKA__BOOTSTRAP_SERVERS at yours.")
        self.bootstrap = bootstrap


class KafkaRefused(OpsError):
    """The broker answered, but the connection's security failed: the credentials
    (``authentication``), the TLS handshake (``tls``) or the security protocol itself
    (``protocol``: e.g. a PLAINTEXT client on a SASL_SSL listener). Not "cannot reach": the
    broker is up, the client's settings are wrong."""

    MESSAGES = {
        "authentication": "authentication failed: Kafka at {bootstrap} refused the SASL "
                          "credentials ({detail}). Check DUALWRITE_KAFKA__SASL_USERNAME, "
                          "DUALWRITE_KAFKA__SASL_PASSWORD (or _PASSWORD_FILE) and "
                          "DUALWRITE_KAFKA__SASL_MECHANISM.",
        "tls": "TLS handshake with Kafka at {bootstrap} failed ({detail}). Check "
               "DUALWRITE_KAFKA__SSL_CAFILE (the CA that signed the broker's certificate) and "
               "DUALWRITE_KAFKA__SECURITY_PROTOCOL.",
        "protocol": "security protocol mismatch: Kafka at {bootstrap} closed the connection "
                    "during the handshake ({detail}); its listener expects another "
                    "DUALWRITE_KAFKA__SECURITY_PROTOCOL than {protocol}.",
    }

    def __init__(self, bootstrap: str, kind: str, detail: str, protocol: str = "") -> None:
        super().__init__(self.MESSAGES[kind].format(bootstrap=bootstrap, detail=detail,
                                                    protocol=protocol or "the one set"))
        self.bootstrap = bootstrap
        self.kind = kind


class TopicMissing(OpsError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} does not exist on this cluster. Create the catalog with "
                         "`dualwrite topics apply`.")
        self.topic = topic


class TopicsMissing(OpsError):
    """Topics a process needs were still not listed after it waited for them."""

    def __init__(self, topics: list[str], waited_s: float) -> None:
        super().__init__(f"{len(topics)} topic(s) do not exist on this cluster after {waited_s:.0f} s: "
                         f"{', '.join(topics)}. Create the catalog with `dualwrite topics apply`.")
        self.topics = topics
