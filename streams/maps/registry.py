"""The set of maps a worker runs, and the questions the agents and the sources ask of it.

The registry is the one place that says which tables are captured: every table a map reads
(source, row lookups) or writes (the target's own feed: presence and echoes) is in
`cdc_tables`; `captured` gives one system's tables with their merged `Endpoint` declarations
(primary key, company column), from which the CLI configures the sources and the topic
catalog. `load_registry` resolves a ``module:attr`` name (setting ``DUALWRITE_PROCESSOR__MAPS``)
so a deployment or a test can run another set of maps without editing any other file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from streams.maps.actuals import ACTUAL_MAPS
from streams.maps.contracts import CONTRACT_MAPS
from streams.maps.estimates import ESTIMATE_MAPS
from streams.maps.expenses import EXPENSE_MAPS
from streams.maps.invoices import INVOICE_MAPS
from streams.maps.model import Endpoint, TableMap
from streams.maps.prerequisites import PREREQUISITE_MAPS
from streams.maps.roles import ROLE_MAPS
from streams.maps.setup import SETUP_MAPS
from streams.maps.vendor_invoices import VENDOR_INVOICE_MAPS

__all__ = ["MapRegistry", "RegistryError", "default_registry", "load_registry"]

_DECLARED = ("primary_key", "company", "company_lookup")
T = TypeVar("T")


class RegistryError(ValueError):
    """A registry that cannot be loaded, or whose table declarations are missing or disagree."""


@dataclass(frozen=True)
class MapRegistry:
    """Maps by name, with the source tables to index for lookups."""

    maps: tuple[TableMap, ...]
    _by_name: dict[str, TableMap] = field(init=False, repr=False, compare=False)
    _answers: dict[tuple[str, str, str], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [m.name for m in self.maps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate map names in {names}")
        object.__setattr__(self, "_by_name", {m.name: m for m in self.maps})
        object.__setattr__(self, "_answers", {})
        for system, table in self.cdc_tables():
            self.endpoint(system, table)  # two maps declaring one table differently: refused now

    def _asked(self, question: str, system: str, table: str, answer: Callable[[str, str], T]) -> T:
        """A question about one table, answered once: the maps never change, and the agents
        ask these for every change they route (3% of the worker's time when computed each
        time). A list answer is copied, so no caller can change the remembered one."""
        key = (question, system, table)
        try:
            found = self._answers[key]
        except KeyError:
            found = self._answers[key] = answer(system, table)
        return list(found) if isinstance(found, list) else found  # type: ignore[return-value]

    def __getitem__(self, name: str) -> TableMap:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def sourced_from(self, system: str, table: str) -> list[TableMap]:
        """Maps whose source is this table (its changes flow to the other system)."""
        return self._asked("sourced_from", system, table, self._sourced_from)

    def _sourced_from(self, system: str, table: str) -> list[TableMap]:
        return [m for m in self.maps if (m.source.system, m.source.table) == (system, table)]

    def fanned_over(self, system: str, table: str) -> list[TableMap]:
        """Fan-out maps whose members are the rows of this table (`FanOut`)."""
        return self._asked("fanned_over", system, table, self._fanned_over)

    def _fanned_over(self, system: str, table: str) -> list[TableMap]:
        return [m for m in self.maps if m.fan_out is not None
                and (m.fan_out.system, m.fan_out.table) == (system, table)]

    def presence_keys(self, system: str, table: str) -> list[tuple[str, ...]]:
        """Key fields of the rows of this table that some map's `Dependency` waits for, when no
        map writes the table (its rows' presence then comes from its own CDC topic, not from
        acks and echoes): a contract header waits for its customer in Finance, which the
        customers map reads but never writes there."""
        return self._asked("presence_keys", system, table, self._presence_keys)

    def _presence_keys(self, system: str, table: str) -> list[tuple[str, ...]]:
        if self.targeting(system, table):
            return []
        out: list[tuple[str, ...]] = []
        for m in self.maps:
            for dep in m.depends:
                fields = tuple(sorted(target for target, _lookup, _field in dep.key))
                if (m.target.system, dep.entity) == (system, table) and fields not in out:
                    out.append(fields)
            # A `present` lookup of such a table (a Finance expense names its Dataverse project)
            # learns the row's GUID the same way.
            for lk in m.lookups:
                if lk.ref == "present" and (lk.system, lk.table) == (system, table) \
                        and lk.present_fields not in out:
                    out.append(lk.present_fields)
        return out

    def targeting(self, system: str, table: str) -> list[TableMap]:
        """Maps that write into this table (its feed shows our echoes and target edits)."""
        return self._asked("targeting", system, table, self._targeting)

    def _targeting(self, system: str, table: str) -> list[TableMap]:
        return [m for m in self.maps if (m.target.system, m.target.table) == (system, table)]

    def indexed(self, system: str, table: str) -> tuple[str, ...]:
        """Columns of this source table that some lookup needs indexed (empty: not indexed)."""
        return self._asked("indexed", system, table, self._indexed)

    def _indexed(self, system: str, table: str) -> tuple[str, ...]:
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
            if m.fan_out is not None:
                add([(m.fan_out.system, m.fan_out.table)])
            add((m.target.system, dep.entity) for dep in m.depends)
            add((lk.system, lk.table) for lk in m.lookups if lk.ref == "present")
        return out

    def endpoint(self, system: str, table: str) -> Endpoint:
        """Every map's declaration of this table merged into one (`RegistryError` when two
        declare a field differently)."""
        merged: dict[str, str] = {}
        for m in self.maps:
            for ep in (m.source, m.target, *m.reads):
                if (ep.system, ep.table) != (system, table):
                    continue
                for name in _DECLARED:
                    value = getattr(ep, name)
                    if value is None:
                        continue
                    if merged.setdefault(name, value) != value:
                        raise RegistryError(f"{system} {table}: {name} declared as both "
                                            f"{merged[name]!r} and {value!r}")
        if merged.get("company") and merged.get("company_lookup"):
            raise RegistryError(f"{system} {table}: declared with both company and company_lookup")
        return Endpoint(system=system, table=table, **merged)

    def captured(self, system: str) -> tuple[Endpoint, ...]:
        """The tables of ``system`` whose changes the maps need, with their declarations. A
        Dataverse table without a declared primary key is a `RegistryError`: its source could
        not name its rows."""
        out = tuple(self.endpoint(s, t) for s, t in self.cdc_tables() if s == system)
        undeclared = [ep.table for ep in out if system == "dataverse" and not ep.primary_key]
        if undeclared:
            raise RegistryError(f"dataverse tables {undeclared} are read by a map but no map "
                                "declares their primary_key (on its Endpoint, or in `reads`)")
        return out


def default_registry() -> MapRegistry:
    """Every built-in map: component 1's setup and configuration data (the roles map first, as
    dual-write runs it), then estimates, expense categories and lines and vendor invoices from
    Finance, actuals and their links, and invoices (domain.md 1.7 levels 5-8)."""
    return MapRegistry((*ROLE_MAPS, *SETUP_MAPS, *PREREQUISITE_MAPS, *CONTRACT_MAPS,
                        *ESTIMATE_MAPS, *EXPENSE_MAPS, *VENDOR_INVOICE_MAPS, *ACTUAL_MAPS,
                        *INVOICE_MAPS))


def load_registry(spec: str | None) -> MapRegistry:
    """The registry named ``module:attr`` (a `MapRegistry`, a sequence of `TableMap`, or a
    callable returning either); the default registry for None or an empty name."""
    if not spec:
        return default_registry()
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise RegistryError(f"maps registry {spec!r}: expected module:attribute")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise RegistryError(f"maps registry {spec!r}: {exc}") from None
    if callable(found) and not isinstance(found, MapRegistry):
        found = found()
    if isinstance(found, MapRegistry):
        return found
    if isinstance(found, tuple | list) and all(isinstance(m, TableMap) for m in found):
        return MapRegistry(tuple(found))
    raise RegistryError(f"maps registry {spec!r} is a {type(found).__name__}, "
                        "not a MapRegistry or a sequence of TableMap")
