"""Expected failures of the operations commands, each with what to do next."""

from __future__ import annotations

__all__ = ["KafkaUnreachable", "OpsError", "TopicMissing"]


class OpsError(Exception):
    """An expected failure: the command prints ``str(exc)`` and exits with ``exit_code``."""

    exit_code = 1


class KafkaUnreachable(OpsError):
    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(
            f"cannot reach Kafka at {bootstrap} ({detail}). Is the broker up? Start a local one "
            "with `dualwrite kafka up`, or point DUALWRITE_KAFKA__BOOTSTRAP_SERVERS at yours.")
        self.bootstrap = bootstrap


class TopicMissing(OpsError):
    def __init__(self, topic: str) -> None:
        super().__init__(f"topic {topic} does not exist on this cluster. Create the catalog with "
                         "`dualwrite topics apply`.")
        self.topic = topic
