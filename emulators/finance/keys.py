"""OData resource paths: ``ProjectsV2(dataAreaId='usmf',ProjectId='P-1')/Microsoft...Post``.

Paths arrive as decoded segments (:mod:`emulators.common.target`), so a ``/`` inside a quoted
value is a key character only when it was sent percent-encoded.

FO requires every key field of the entity in the URL (including ``dataAreaId``), named
``Field=value`` when the key has more than one field; a single-field key may also be given bare
(``LegalEntities('usmf')``). String values are single-quoted with ``''`` escaping; integers and
date-time literals are bare. Parsing is pure so it is unit-tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from emulators.common.target import encode_segment
from emulators.finance.schema import Entity

__all__ = ["ACTION_NAMESPACE", "BadKey", "ResourcePath", "entity_url", "format_key", "parse_key",
           "parse_path"]

ACTION_NAMESPACE = "Microsoft.Dynamics.DataEntities."
_NAME_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_BARE_RE = re.compile(r"[^,)\s]+")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class BadKey(ValueError):
    """The key segment is malformed or incomplete (an OData 400)."""


@dataclass(frozen=True)
class ResourcePath:
    """What a path below ``/data/`` addresses."""

    collection: str
    key_text: str | None = None  # inside the parentheses, unparsed
    action: str | None = None  # bound/unbound action name without the namespace


def _split_parens(text: str, start: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``start``, honouring quoted strings."""
    i = start + 1
    in_str = False
    while i < len(text):
        ch = text[i]
        if in_str:
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    i += 2
                    continue
                in_str = False
        elif ch == "'":
            in_str = True
        elif ch == ")":
            return i
        i += 1
    raise BadKey("Unterminated key segment in the resource path.")


def parse_path(segments: tuple[str, ...]) -> ResourcePath:
    """``Collection[(key)]`` then an optional ``Namespace.Action`` segment (decoded segments
    below ``/data/``). The key must close at the end of its segment: a raw ``/`` inside the
    parentheses split the segment, so the key is unterminated, as on a real OData service."""
    if not segments or len(segments) > 2:
        raise BadKey(f"Resource path '{'/'.join(segments)}' is not valid.")
    head = segments[0]
    match = _NAME_RE.match(head)
    if not match:
        raise BadKey(f"Resource path '{head}' is not valid.")
    collection = match.group(0)
    rest = head[match.end():]
    key_text = None
    if rest.startswith("("):
        end = _split_parens(rest, 0)
        key_text = rest[1:end]
        rest = rest[end + 1:]
    if rest:
        raise BadKey(f"Resource path segment '{head}' is not valid.")
    if len(segments) == 1:
        return ResourcePath(collection, key_text, None)
    segment = segments[1]
    action = segment[len(ACTION_NAMESPACE):] if segment.startswith(ACTION_NAMESPACE) else segment
    if not _NAME_RE.fullmatch(action):
        raise BadKey(f"Resource path segment '{segment}' is not valid.")
    return ResourcePath(collection, key_text, action)


def _value(text: str, i: int) -> tuple[object, int]:
    if i < len(text) and text[i] == "'":
        out: list[str] = []
        i += 1
        while i < len(text):
            if text[i] == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                return "".join(out), i + 1
            out.append(text[i])
            i += 1
        raise BadKey("Unterminated string in key.")
    match = _BARE_RE.match(text, i)
    if not match:
        raise BadKey("Missing key value.")
    raw = match.group(0)
    if re.fullmatch(r"-?\d+", raw):
        number = int(raw)
        if not INT64_MIN <= number <= INT64_MAX:  # FO keys are Int64 at most (as is SQLite)
            raise BadKey(f"The key value {raw} is outside the range of Int64.")
        return number, match.end()
    return raw, match.end()  # a date/date-time literal, compared as text


def parse_key(entity: Entity, key_text: str) -> dict[str, object]:
    """Key segment -> ``{field: value}`` with exactly the entity's key fields."""
    text = key_text.strip()
    values: dict[str, object] = {}
    if len(entity.key) == 1 and not re.match(r"\s*[A-Za-z_]\w*\s*=", text):
        value, end = _value(text, 0)
        if text[end:].strip():
            raise BadKey(f"Key '{key_text}' is not valid for {entity.name}.")
        return {entity.key[0]: value}
    i = 0
    while i < len(text):
        match = _NAME_RE.match(text, i)
        if not match:
            raise BadKey(f"Key '{key_text}' is not valid for {entity.name}.")
        name = match.group(0)
        i = match.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i >= len(text) or text[i] != "=":
            raise BadKey(f"Key '{key_text}' is not valid for {entity.name}.")
        value, i = _value(text, i + 1)
        canonical = next((k for k in entity.key if k.lower() == name.lower()), None)
        if canonical is None:
            raise BadKey(f"'{name}' is not a key field of {entity.name}; the key is "
                            f"({', '.join(entity.key)}).")
        values[canonical] = value
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text):
            if text[i] != ",":
                raise BadKey(f"Key '{key_text}' is not valid for {entity.name}.")
            i += 1
            while i < len(text) and text[i] == " ":
                i += 1
    missing = [k for k in entity.key if k not in values]
    if missing:
        raise BadKey(f"The key of {entity.name} requires all of ({', '.join(entity.key)}); "
                        f"missing {', '.join(missing)}.")
    return values


def _literal(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+Z", text):
        return text
    return "'" + text.replace("'", "''") + "'"


def format_key(entity: Entity, row: Mapping[str, object]) -> str:
    """``(dataAreaId='usmf',ProjectId='P-1')``, decoded: for messages and :func:`entity_url`."""
    return "(" + ",".join(f"{k}={_literal(row[k])}" for k in entity.key) + ")"


def entity_url(base_url: str, entity: Entity, row: Mapping[str, object]) -> str:
    """The row's URL for ``Location`` / ``OData-EntityId``: the key segment percent-encoded, so
    the header is ASCII whatever the key holds (``Łódź``, ``/``, ``%``) and reads back as it."""
    return f"{base_url}/{encode_segment(entity.name + format_key(entity, row))}"
