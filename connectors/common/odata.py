"""OData literals for keys and ``$filter``: the one place a value becomes URL text.

Every key segment (``Entity(Field='value')``) and every ``$filter`` comparison the connectors
build goes through this module, in plain requests and in ``$batch`` parts alike:

- `literal(value)` is the OData literal (OData v4 ABNF, part 2 "URL conventions"): strings in
  single quotes with ``'`` doubled, ``true``/``false``, ``null``, numbers as written. It is not
  percent-encoded: use it where the HTTP client encodes the query string itself
  (``params={"$filter": ...}``).
- `key_literal(value)` is the same literal percent-encoded (UTF-8) for a URL *path* segment:
  every character but the RFC 3986 unreserved ones and the delimiting quotes is encoded, so
  ``%``, ``#``, ``?``, ``/``, ``\\``, ``,``, ``(``, ``)``, space and non-ASCII can never end the
  segment, start a query or fragment, or be decoded into a different key (a literal ``US%2D001``
  travels as ``US%252D001`` and never reaches row ``US-001``). The result is ASCII, so it is also
  safe on the request line of a ``$batch`` part.
- Entity set and key property names must be plain identifiers (`identifier`).
- Key values are checked first (`check_key_value`): a control character (C0, DEL, C1 such as
  NEL, and U+2028/U+2029) has no business in a key and is the stuff of header injection inside
  ``$batch``; it raises `InvalidKey` (a `Rejected`: the command is dead-lettered with that class,
  before any request is built). A value that is not a scalar raises `InvalidKey` too.

The caller (`connectors.finance.client.entity_key`, `connectors.dataverse.client.entity_key`)
keeps its system's own rules, e.g. Dataverse's bare GUIDs for ``_x_value`` lookup parts.

Dataverse caveat (Microsoft's "Work with alternate keys" and "Define alternate keys using Power
Apps"): when an alternate-key column holds one of ``/ # < > * % & : \\ ? +``, GET and PATCH by
that key are documented not to work (`DATAVERSE_UNSUPPORTED_KEY_CHARS`). Such a key is still
encoded here, but the Dataverse sink never sends it as a key segment: it finds the row with
``$filter`` and addresses it by its primary key (`connectors.dataverse.sink`). Values without
those characters, including quotes and any non-ASCII text, are addressed by key directly.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Any
from urllib.parse import quote

from connectors.common.errors import Rejected

__all__ = ["DATAVERSE_UNSUPPORTED_KEY_CHARS", "InvalidKey", "check_key_value", "identifier", "key_literal",
           "literal"]

# C0 controls, DEL, C1 controls (NEL is U+0085), and the Unicode line/paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Microsoft's documented list of characters that break alternate-key URLs in Dataverse.
DATAVERSE_UNSUPPORTED_KEY_CHARS = frozenset("/#<>*%&:\\?+")


class InvalidKey(Rejected):
    """A key value that must never become part of a request (control character, not a scalar)."""


def identifier(name: str, what: str = "name") -> str:
    """An entity set or property name as it may appear in a URL path; else `InvalidKey`.

    Names come from the map configuration, but a command carries them as data: a name that is
    not a plain OData identifier could open another path segment or a query.
    """
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise InvalidKey(f"{what} {str(name)[:80]!r} is not an OData identifier")
    return name


def check_key_value(value: Any, field: str = "key") -> Any:
    """The value itself if it may be a key; else `InvalidKey` naming the field and the reason."""
    if value is None or isinstance(value, bool | int | uuid.UUID):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidKey(f"key field {field!r} is not a finite number: {value!r}")
        return value
    if not isinstance(value, str):
        raise InvalidKey(f"key field {field!r} is not a scalar: {type(value).__name__}")
    bad = _CONTROL.search(value)
    if bad is not None:
        raise InvalidKey(f"key field {field!r} holds control character U+{ord(bad.group()):04X} "
                         f"at position {bad.start()}")
    return value


def literal(value: Any, field: str = "key") -> str:
    """The OData literal of a key or ``$filter`` value (not percent-encoded)."""
    value = check_key_value(value, field)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def key_literal(value: Any, field: str = "key") -> str:
    """`literal` percent-encoded (UTF-8) for a URL path segment; plain ASCII."""
    return quote(literal(value, field), safe="'")
