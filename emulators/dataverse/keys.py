"""Resource paths and key segments of the Web API: ``set(guid)``, ``set(pk=guid)`` and
alternate keys ``set(name='x',_lookup_value=guid)`` (lookups in keys use the ``_x_value`` form).

Paths arrive as decoded segments (:mod:`emulators.common.target`, one parser for plain requests,
``$batch`` parts and ``@odata.bind`` values). Alternate key string values follow Dataverse's
documented limit ("Define alternate keys using Power Apps"): GET and PATCH by an alternate key do
not work when its value holds ``/ # < > * % & : \\ ? +``, so such values are refused (400) even
percent-encoded; clients find those rows with ``$filter`` and address them by id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from emulators.common.errors import ODataError
from emulators.common.target import BadTarget, parse_target
from emulators.dataverse.messages import API_ROOT, bad_target
from emulators.dataverse.schema import BY_SET, Table

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?", re.DOTALL)
# Documented in "Define alternate keys using Power Apps" (Power Apps maker docs, Dataverse):
# when an alternate key column's data holds one of these characters, GET and PATCH by that key
# do not work. The emulator refuses such key values in every URL (even percent-encoded).
UNSUPPORTED_KEY_CHARACTERS = frozenset("/#<>*%&:\\?+")
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


def _string_key(value: str) -> str:
    refused = sorted(UNSUPPORTED_KEY_CHARACTERS.intersection(value))
    if refused:
        raise ODataError(400, "0x80060888", f"The alternate key value '{value}' holds "
                         f"{' '.join(refused)}: Dataverse does not support / # < > * % & : \\ ? + "
                         "in alternate key values in a URL, even percent-encoded. Find the row "
                         "with $filter and address it by its id.")
    return value


def _literal(raw: str) -> KeyValue:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return _string_key(raw[1:-1].replace("''", "'"))
    if raw in ("true", "false"):
        return raw == "true"
    if raw == "null":
        return None
    guid = parse_guid(raw)
    if guid is not None:
        return guid
    try:
        number = float(raw) if "." in raw else int(raw)
    except ValueError:
        raise ODataError(400, "0x80060888", f"Bad key literal '{raw}' in the request URI.") from None
    if isinstance(number, int) and not -(2**63) <= number < 2**63:  # Edm.Int64 at most
        raise ODataError(400, "0x80060888", f"The key literal {raw} is outside the range of Int64.")
    return number


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


def resolve_content_id(segments: tuple[str, ...],
                       content_ids: Mapping[str, str]) -> tuple[str, ...]:
    """``$1/rest`` inside a ``$batch`` change set: the row Content-ID 1 created, then ``rest``."""
    if segments and segments[0].startswith("$") and segments[0][1:] in content_ids:
        return parse_target(content_ids[segments[0][1:]], API_ROOT).segments + segments[1:]
    return segments


def parse_resource(segments: tuple[str, ...]) -> ResourcePath:
    """``set[(key)]`` and an optional action segment, from decoded path segments. A key cut
    by a raw ``/`` no longer closes its parentheses, so it does not resolve (404)."""
    if not segments or len(segments) > 2:
        raise not_found_segment("/".join(segments))
    match = _SEGMENT.fullmatch(segments[0])
    if match is None:
        raise not_found_segment(segments[0])
    table = BY_SET.get(match.group(1))
    if table is None:
        raise not_found_segment(match.group(1))
    key = parse_key(match.group(2)) if match.group(2) is not None else None
    action = segments[1] if len(segments) == 2 else None
    if action is not None and key is None:
        raise not_found_segment("/".join(segments))
    return ResourcePath(table, key, action)


def parse_reference(ref: str, content_ids: Mapping[str, str]) -> ResourcePath:
    """The row an ``@odata.bind`` URL names (``/accounts(<id>)``, an alternate key, ``$1``)."""
    try:
        target = parse_target(ref, API_ROOT)
    except BadTarget as exc:
        raise bad_target(exc) from exc
    return parse_resource(resolve_content_id(target.segments, content_ids))


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
