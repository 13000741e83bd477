"""The topic catalog: every topic of the system declared once.

Names: ``<system>.cdc.<table>`` (captured changes), ``sync.commands.<target>``,
``sync.applied.<target>``, ``sync.dlq``, ``sync.control``, ``sync.source-offsets``. Faust adds
its own changelog topics, which are not declared here.

All keyed topics that the processor joins share one partition count, so a record's CDC events,
its commands and its acks are co-partitioned.

Which tables have a CDC topic is not kept here: the map registry derives it (every table some
map reads or writes, plus tables the settings add), and its caller passes them as
``cdc_tables`` (`dualwrite.capture.topic_catalog`), since this package imports nothing of the
project.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from topics.commands import Applied, Command
from topics.control import MapState, SourceOffset, SourceOffsetKey
from topics.envelope import ChangeEvent, ChangeKey, System

__all__ = [
    "Cleanup",
    "TopicSpec",
    "applied_topic",
    "catalog",
    "cdc_topic",
    "commands_topic",
]

Cleanup = Literal["delete", "compact", "compact,delete"]

DAY_MS = 24 * 3600 * 1000
_SYSTEMS: dict[str, System] = {"dataverse": "dataverse", "finance": "finance"}


@dataclass(frozen=True)
class TopicSpec:
    """One topic: name, layout, retention and the models of its key and value."""

    name: str
    partitions: int
    replication: int
    cleanup: Cleanup
    retention_ms: int | None
    key_model: type[BaseModel] | None
    value_model: type[BaseModel] | None
    description: str

    def configs(self) -> dict[str, str]:
        """Topic-level configs the broker must hold for this topic."""
        out: dict[str, str] = {"cleanup.policy": self.cleanup}
        if self.retention_ms is not None:
            out["retention.ms"] = str(self.retention_ms)
        return out


def cdc_topic(system: System, table: str) -> str:
    """``dataverse.cdc.msdyn_actuals``, ``finance.cdc.projectsv2``."""
    return f"{system}.cdc.{table.lower()}"


def commands_topic(target: System) -> str:
    return f"sync.commands.{target}"


def applied_topic(target: System) -> str:
    return f"sync.applied.{target}"


def catalog(
    partitions: int = 3,
    replication: int = 1,
    cdc_retention_days: int = 14,
    dlq_retention_days: int = 30,
    *,
    cdc_tables: Iterable[tuple[str, str]],
) -> list[TopicSpec]:
    """Every topic of the system, in a stable order: a CDC topic per (system, table) of
    ``cdc_tables`` (each once), then the command, ack, DLQ, control and checkpoint topics."""
    cdc_ms = cdc_retention_days * DAY_MS
    specs: list[TopicSpec] = []
    for system, table in dict.fromkeys(cdc_tables):
        known: System | None = _SYSTEMS.get(system)
        if known is None:
            raise ValueError(f"CDC table {table!r} of unknown system {system!r}")
        specs.append(TopicSpec(
            cdc_topic(known, table), partitions, replication, "delete", cdc_ms, ChangeKey,
            ChangeEvent, f"Changes captured from {system} {table} (Debezium-compatible JSON).",
        ))
    targets: tuple[System, ...] = ("finance", "dataverse")
    for target in targets:
        specs.append(TopicSpec(
            commands_topic(target), partitions, replication, "delete", cdc_ms, None, Command,
            f"Writes released by the processor for the {target} sink; key = target record key.",
        ))
        specs.append(TopicSpec(
            applied_topic(target), partitions, replication, "compact,delete", cdc_ms, None, Applied,
            f"Writes the {target} target acknowledged; feeds the gate and the echo filter.",
        ))
    specs.append(TopicSpec(
        "sync.dlq", partitions, replication, "delete", dlq_retention_days * DAY_MS, None, None,
        "Dead letters: the original record with dlq.* headers naming stage, map, error and origin.",
    ))
    specs.append(TopicSpec(
        "sync.control", 1, replication, "compact", None, None, MapState,
        "Map state (running/paused), keyed by map name.",
    ))
    specs.append(TopicSpec(
        "sync.source-offsets", 1, replication, "compact", None, SourceOffsetKey, SourceOffset,
        "Source connector checkpoints (delta links, feed watermarks), compacted.",
    ))
    return specs
