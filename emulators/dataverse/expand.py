"""``$expand`` of single-valued navigation properties (lookups), with a nested ``$select``:
``$expand=msdyn_owningcompany($select=cdm_companycode),msdyn_customer``.

Collection-valued navigations and nested options other than ``$select`` are refused with 400,
as is ``$expand`` together with change tracking (Dataverse refuses that too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emulators.common.errors import ODataError
from emulators.common.query import parse_query
from emulators.dataverse.records import Records, Row, to_json
from emulators.dataverse.schema import BY_SET, Column, Table

_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


@dataclass(frozen=True)
class Expansion:
    column: Column
    target: Table
    select: list[str] | None


def _top_level_split(text: str) -> list[str]:
    items, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += ch
    items.append(current)
    return [item for item in items if item.strip()]


def parse_expand(text: str, table: Table) -> list[Expansion]:
    expansions = []
    for item in _top_level_split(text):
        match = _ITEM.match(item)
        column = table.column(match.group(1)) if match else None
        if match is None or column is None or column.target is None:
            raise ODataError(400, "0x80060888", f"Could not find a property named "
                             f"'{item.strip()}' on type '{table.type_name}' to expand.")
        target = BY_SET[column.target]
        options: dict[str, str] = {}
        for option in (match.group(2) or "").split(";"):
            name, _, value = option.partition("=")
            if name.strip():
                options[name.strip()] = value.strip()
        if set(options) - {"$select"}:
            raise ODataError(400, "0x80060888", "Only $select is supported inside $expand.")
        select = parse_query(options, target.properties).select
        expansions.append(Expansion(column, target, select))
    return expansions


def expand(records: Records, row: Row, out: Row, expansions: list[Expansion]) -> Row:
    """Add each expanded lookup's target row (or null) to ``out`` under the navigation name."""
    for item in expansions:
        value = row[item.column.name]
        target = records.get(item.target, value) if value else None
        out[item.column.name] = to_json(item.target, target, item.select) if target else None
    return out
