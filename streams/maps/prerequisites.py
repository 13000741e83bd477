"""Prerequisite (platform) maps, Finance-mastered and flowing to Dataverse (domain.md 1.1, 2).

Filled in by issue 10: CDS exchange rates, ledger, vendors V2, workers, units and released
products. Legal entities and customers live in `streams.maps.setup`.
"""

from __future__ import annotations

from streams.maps.model import TableMap

__all__ = ["PREREQUISITE_MAPS"]

PREREQUISITE_MAPS: tuple[TableMap, ...] = ()
