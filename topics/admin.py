"""Provision the catalog on a cluster through the confluent-kafka AdminClient.

`apply` creates what is missing and reports drift it cannot fix silently: a topic with the
wrong partition count, replication factor, cleanup policy, retention or ``min.insync.replicas``
is named, never recreated.

Durability follows replication, decided here once: a topic replicated N > 1 times is created
with ``min.insync.replicas`` N - 1 (3 replicas: writes with ``acks=all``, which every producer
of the project uses, survive one broker down and are refused, not silently weakened, when two
are), and a cluster's default replication is ``min(3, brokers)`` (`default_replication`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)

from topics.catalog import TopicSpec

__all__ = ["ApplyReport", "Drift", "apply_topics", "default_replication", "min_insync", "topic_configs"]

MAX_REPLICATION = 3


@dataclass(frozen=True)
class Drift:
    topic: str
    what: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.what} is {self.actual}, expected {self.expected}"


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    drifts: list[Drift] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifts


def default_replication(brokers: int) -> int:
    """The replication factor of a cluster of `brokers`: 3 where there are 3 or more."""
    return max(1, min(MAX_REPLICATION, brokers))


def min_insync(replication: int) -> int:
    """In-sync replicas a write needs: all but one (at least one)."""
    return max(1, replication - 1)


def topic_configs(spec: TopicSpec) -> dict[str, str]:
    """What the broker must hold for `spec`: the catalog's configs plus, when replicated,
    ``min.insync.replicas`` (left to the broker's default for a single replica)."""
    configs = spec.configs()
    if spec.replication > 1:
        configs["min.insync.replicas"] = str(min_insync(spec.replication))
    return configs


def _admin(client_config: Mapping[str, str]) -> AdminClient:
    return AdminClient(dict(client_config))


def _existing(admin: AdminClient, timeout: float) -> dict[str, tuple[int, int]]:
    """Existing topics: name -> (partition count, smallest replica count of a partition)."""
    meta = admin.list_topics(timeout=timeout)
    return {name: (len(t.partitions), min((len(p.replicas) for p in t.partitions.values()),
                                          default=0))
            for name, t in meta.topics.items() if not t.error}


def _config_drifts(admin: AdminClient, specs: list[TopicSpec], timeout: float) -> list[Drift]:
    if not specs:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    futures = admin.describe_configs(resources, request_timeout=timeout)
    drifts: list[Drift] = []
    by_name = {s.name: s for s in specs}
    for resource, future in futures.items():
        spec = by_name[resource.name]
        entries = future.result(timeout=timeout)
        for key, expected in topic_configs(spec).items():
            actual = entries[key].value if key in entries else "<unset>"
            if actual != expected:
                drifts.append(Drift(spec.name, key, expected, str(actual)))
    return drifts


def apply_topics(
    client_config: Mapping[str, str],
    specs: Iterable[TopicSpec],
    *,
    check: bool = False,
    timeout: float = 30.0,
) -> ApplyReport:
    """Create missing topics (unless `check`) and report drift of existing ones.

    With ``check=True`` nothing is created and a missing topic is itself a drift.
    Raises ``KafkaException`` when the cluster cannot be reached.
    """
    admin = _admin(client_config)
    specs = list(specs)
    existing = _existing(admin, timeout)
    report = ApplyReport()
    missing = [s for s in specs if s.name not in existing]
    present = [s for s in specs if s.name in existing]
    for spec in present:
        report.present.append(spec.name)
        partitions, replicas = existing[spec.name]
        if partitions != spec.partitions:
            report.drifts.append(Drift(spec.name, "partition count", str(spec.partitions),
                                       str(partitions)))
        if replicas != spec.replication:
            report.drifts.append(Drift(spec.name, "replication factor", str(spec.replication),
                                       str(replicas)))
    if check:
        report.drifts.extend(Drift(s.name, "topic", "present", "missing") for s in missing)
    elif missing:
        new = [NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication,
                        config=topic_configs(s)) for s in missing]
        for name, future in admin.create_topics(new, request_timeout=timeout).items():
            try:
                future.result(timeout=timeout)
            except KafkaException as exc:
                # Another process creating the same topic at once is fine: it exists now.
                if exc.args and getattr(exc.args[0], "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                    report.present.append(name)
                    continue
                raise
            report.created.append(name)
    report.drifts.extend(_config_drifts(admin, present, timeout))
    return report
