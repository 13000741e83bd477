"""The set of maps a worker runs, and the questions the agents ask of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.maps.model import TableMap
from streams.maps.setup import SETUP_MAPS

__all__ = ["MapRegistry", "default_registry"]


@dataclass(frozen=True)
class MapRegistry:
    """Maps by name, with the source tables to index for lookups."""

    maps: tuple[TableMap, ...]
    _by_name: dict[str, TableMap] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [m.name for m in self.maps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate map names in {names}")
        object.__setattr__(self, "_by_name", {m.name: m for m in self.maps})

    def __getitem__(self, name: str) -> TableMap:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def sourced_from(self, system: str, table: str) -> list[TableMap]:
        """Maps whose source is this table (its changes flow to the other system)."""
        return [m for m in self.maps if (m.source.system, m.source.table) == (system, table)]

    def targeting(self, system: str, table: str) -> list[TableMap]:
        """Maps that write into this table (its feed shows our echoes and target edits)."""
        return [m for m in self.maps if (m.target.system, m.target.table) == (system, table)]

    def indexed(self, system: str, table: str) -> tuple[str, ...]:
        """Columns of this source table that some lookup needs indexed (empty: not indexed)."""
        cols: list[str] = []
        for m in self.maps:
            for lk in (*m.lookups, *m.reverse_lookups):
                if lk.ref == "row" and (lk.system, lk.table) == (system, table):
                    cols.extend(c for c in lk.fields if c not in cols)
        return tuple(cols)

    def cdc_tables(self) -> list[tuple[str, str]]:
        """Every (system, table) whose CDC topic the worker must read."""
        out: list[tuple[str, str]] = []

        def add(items: Iterable[tuple[str, str]]) -> None:
            out.extend(i for i in items if i not in out)

        for m in self.maps:
            add([(m.source.system, m.source.table), (m.target.system, m.target.table)])
            add((lk.system, lk.table) for lk in (*m.lookups, *m.reverse_lookups)
                if lk.ref == "row")
        return out


def default_registry() -> MapRegistry:
    return MapRegistry(SETUP_MAPS)
