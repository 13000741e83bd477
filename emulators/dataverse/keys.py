"""Resource paths and key segments of the Web API: ``set(guid)``, ``set(pk=guid)`` and
alternate keys ``set(name='x',_lookup_value=guid)`` (lookups in keys use the ``_x_value`` form).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from emulators.common.errors import ODataError
from emulators.dataverse.schema import BY_SET, Table

API_PREFIX = "/api/data/v9.2/"
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?(?:/(.+))?$", re.DOTALL)
KeyValue = str | int | float | bool | None


@dataclass(frozen=True)
class ResourcePath:
    table: Table
    key: str | dict[str, KeyValue] | None  # None: the collection; str: a primary key guid
    action: str | None = None  # e.g. "Microsoft.Dynamics.CRM.msdyn_ConfirmInvoice"


def not_found_segment(path: str) -> ODataError:
    return ODataError(404, "0x80060888", f"Resource not found for the segment '{path}'.")


def parse_guid(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _literal(raw: str) -> KeyValue:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1].replace("''", "'")
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    guid = parse_guid(raw)
    if guid is not None:
        return guid
    try:
        return float(raw) if "." in raw else int(raw)
    except ValueError:
        raise ODataError(400, "0x80060888", f"Bad key literal '{raw}' in the request URI.") from None


def _split_pairs(text: str) -> list[str]:
    """Split on commas outside single-quoted strings (quotes escape as '')."""
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == "'":
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        raise ODataError(400, "0x80060888", f"Unterminated string in key segment '({text})'.")
    items.append("".join(current))
    return items


def parse_key(text: str) -> str | dict[str, KeyValue]:
    if "=" not in text:
        guid = parse_guid(text.strip())
        if guid is None:
            raise ODataError(400, "0x80060888", f"Bad key segment '({text})': not a GUID.")
        return guid
    pairs: dict[str, KeyValue] = {}
    for item in _split_pairs(text):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ODataError(400, "0x80060888", f"Bad key segment '({text})'.")
        pairs[name.strip()] = _literal(value)
    return pairs


def relative_path(url: str) -> str:
    """The part of a URL after ``/api/data/v9.2/`` (absolute, rooted or relative forms)."""
    path = unquote(urlsplit(url).path) if "://" in url else unquote(url.split("?", 1)[0])
    if API_PREFIX in path:
        path = path.split(API_PREFIX, 1)[1]
    return path.lstrip("/")


def parse_resource(path: str) -> ResourcePath:
    match = _SEGMENT.match(path)
    if match is None:
        raise not_found_segment(path)
    table = BY_SET.get(match.group(1))
    if table is None:
        raise not_found_segment(match.group(1))
    key = parse_key(match.group(2)) if match.group(2) is not None else None
    action = match.group(3)
    if action is not None and key is None:
        raise not_found_segment(path)
    return ResourcePath(table, key, action)


def invalid_key(table: Table) -> ODataError:
    return ODataError(
        400, "0x80060888",
        f"The key in the request URI is not valid for resource '{table.type_name}'. Ensure that "
        "the names and number of key properties match the declared or alternate key properties "
        f"for the resource '{table.type_name}'.")


def key_columns(table: Table, key: str | dict[str, KeyValue]) -> dict[str, KeyValue]:
    """A URL key as {SQL column: value}, checked against the table's primary and alternate keys."""
    if isinstance(key, str):
        return {table.primary_key: key}
    if set(key) == {table.primary_key}:
        guid = parse_guid(str(key[table.primary_key]))
        if guid is None:
            raise invalid_key(table)
        return {table.primary_key: guid}
    columns: dict[str, KeyValue] = {}
    for name, value in key.items():
        match = re.fullmatch(r"_(.+)_value", name)
        column = table.column(match.group(1) if match else name)
        # Lookups must be named _x_value in keys, plain columns by their own name.
        if column is None or (column.kind == "lookup") != bool(match):
            raise invalid_key(table)
        columns[column.name] = value
    if tuple(sorted(columns)) not in {tuple(sorted(k)) for k in table.alternate_keys}:
        raise invalid_key(table)
    return columns
