"""What the sources capture and which CDC topics exist, derived from the map registry.

The registry (`streams.maps`, chosen by ``DUALWRITE_PROCESSOR__MAPS``) is the one place that
says which tables the maps read and write, with each table's primary key and company column.
This module joins it with the settings for the processes that cannot import `streams`
themselves (the connectors and the topic catalog meet it only here): a source captures exactly
the registry's tables of its system plus ``DUALWRITE_<SYSTEM>__EXTRA_TABLES``, and the catalog
holds one CDC topic per such table. A table no map reads is neither polled nor provisioned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.common.source import CaptureTable
from dualwrite.settings import Settings
from topics import System, TopicSpec, catalog

if TYPE_CHECKING:
    from streams.maps import MapRegistry

__all__ = ["capture_tables", "cdc_tables", "map_registry", "topic_catalog"]

SYSTEMS: tuple[System, ...] = ("dataverse", "finance")


def map_registry(settings: Settings) -> MapRegistry:
    """The maps every process of this deployment runs (`Settings.processor.maps`)."""
    from streams.maps import load_registry

    return load_registry(settings.processor.maps)


def capture_tables(settings: Settings, system: System,
                   maps: MapRegistry | None = None) -> tuple[CaptureTable, ...]:
    """The tables ``system``'s source captures, each with its declared key and company column."""
    registry = maps or map_registry(settings)
    out = [CaptureTable(name=ep.table, primary_key=ep.primary_key, company=ep.company,
                        company_lookup=ep.company_lookup) for ep in registry.captured(system)]
    api = settings.dataverse if system == "dataverse" else settings.finance
    known = {t.name for t in out}
    for name, key in api.extra():
        if name not in known:
            known.add(name)
            out.append(CaptureTable(name=name, primary_key=key))
    return tuple(out)


def cdc_tables(settings: Settings, maps: MapRegistry | None = None) -> list[tuple[System, str]]:
    """Every (system, table) with a CDC topic: what the sources capture."""
    registry = maps or map_registry(settings)
    return [(system, t.name) for system in SYSTEMS for t in capture_tables(settings, system, registry)]


def topic_catalog(settings: Settings, maps: MapRegistry | None = None) -> list[TopicSpec]:
    """The topic catalog of this deployment: layout from the settings, CDC topics from the maps."""
    t = settings.topics
    return catalog(partitions=t.partitions, replication=t.replication,
                   cdc_retention_days=t.cdc_retention_days, dlq_retention_days=t.dlq_retention_days,
                   cdc_tables=cdc_tables(settings, maps))
