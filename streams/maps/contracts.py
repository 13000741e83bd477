"""Project Operations setup maps born in Dataverse and flowing to Finance (domain.md 1.1, 2).

Filled in by issue 10: transaction categories, contract headers, contract lines, funding
sources, contract line milestones and worker resource import.
"""

from __future__ import annotations

from streams.maps.model import TableMap

__all__ = ["CONTRACT_MAPS"]

CONTRACT_MAPS: tuple[TableMap, ...] = ()
