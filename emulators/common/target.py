"""Request targets (the URL of a request) parsed one way, for plain requests and ``$batch`` parts.

A real OData service sees a request target as raw bytes: it splits the path into segments at
every raw ``/`` (and ``\\``, which IIS treats as ``/``), then percent-decodes each segment as
UTF-8. So ``%2F`` inside a key literal is the key character ``/``, while a raw ``/`` inside the
parentheses ends the segment and the key no longer parses; a key is decoded exactly once. Both
emulators call :func:`parse_target` for the HTTP route (with :func:`raw_target` of the ASGI
scope, never Starlette's already-decoded path) and for every ``$batch`` part, so a key means the
same row whichever way it arrives. :func:`encode_segment` is the inverse, used for the
``Location`` / ``OData-EntityId`` headers: headers are ASCII, so a non-ASCII key is sent
percent-encoded, as real services do.

Strictness matches an HTTP server: a target holds only visible ASCII (like h11 for plain
requests), a raw ``#`` is refused (a fragment is never sent to a server), ``%`` must start a
valid escape, segments must decode as UTF-8 and hold no control characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from starlette.types import Scope

__all__ = ["BadTarget", "Target", "encode_segment", "parse_target", "raw_target"]

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATOR = re.compile(r"[/\\]")
# Characters of a path segment kept as they are (RFC 3986 pchar without '%'); all else is escaped.
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


class BadTarget(ValueError):
    """The request target is not a valid URL for this service (answered 400 by the caller)."""


@dataclass(frozen=True)
class Target:
    """A request target below the service root: decoded path segments and the query."""

    segments: tuple[str, ...]
    query: dict[str, str]

    @property
    def path(self) -> str:
        """The decoded path, for messages only (a decoded ``/`` is ambiguous here)."""
        return "/".join(self.segments)


def raw_target(scope: Scope) -> str:
    """The target exactly as the client sent it (``raw_path`` plus the query string)."""
    raw = scope.get("raw_path") or quote(scope["path"]).encode()
    query = scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


def _decode(segment: str) -> str:
    if _BAD_ESCAPE.search(segment):
        raise BadTarget(f"The URL segment '{segment}' holds a '%' that is not a percent-escape.")
    try:
        decoded = unquote(segment, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadTarget(f"The URL segment '{segment}' is not percent-encoded UTF-8.") from exc
    if _CONTROL.search(decoded):
        raise BadTarget(f"The URL segment '{segment}' holds a control character.")
    return decoded


def parse_target(target: str, root: str) -> Target:
    """Absolute (``http://host/root/x``), rooted (``/root/x``, ``/x``) or relative (``x``).

    ``root`` is the service root path (``/data``, ``/api/data/v9.2``); raises :class:`BadTarget`.
    """
    if not _VISIBLE_ASCII.fullmatch(target):
        raise BadTarget("The request URL must be visible ASCII: percent-encode every other "
                        "character (UTF-8).")
    if "#" in target:
        raise BadTarget("The request URL holds a raw '#'; percent-encode it as %23.")
    if "://" in target.split("?", 1)[0]:
        try:
            split = urlsplit(target)
        except ValueError as exc:  # e.g. an unclosed IPv6 host "http://[::1"
            raise BadTarget(f"The request URL is not valid: {exc}.") from exc
        path, query = split.path, split.query
    else:
        path, _, query = target.partition("?")
    root = root.rstrip("/")
    if path == root or path.startswith(root + "/"):
        path = path[len(root):]
    # Any other rooted path is read from the service root, as ``@odata.bind`` values
    # (``/accounts(<id>)``) are.
    segments = [_decode(s) for s in _SEPARATOR.split(path.lstrip("/\\"))]
    if segments[-1] == "":
        segments.pop()  # the root itself, or one trailing slash: the same resource
    return Target(tuple(segments), dict(parse_qsl(query, keep_blank_values=True)))


def encode_segment(text: str) -> str:
    """A decoded path segment (``Set(Key='Łódź/1')``) as ASCII for a URL or a header."""
    return quote(text, safe=_SEGMENT_SAFE)
