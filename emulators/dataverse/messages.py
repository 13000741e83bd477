"""Request and response values passed between the HTTP layer, ``$batch`` and the handlers.

:func:`api_request` is the one way a request target becomes an :class:`ApiRequest`: the HTTP
route passes the raw target the client sent, ``$batch`` each part's URL; both are parsed by
:func:`emulators.common.target.parse_target` (split at raw ``/``, then percent-decoded once).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from emulators.common.errors import ODataError, odata_error_body
from emulators.common.target import BadTarget, parse_target

API_ROOT = "/api/data/v9.2"
JSON_TYPE = "application/json; odata.metadata=minimal"


@dataclass
class ApiRequest:
    method: str
    segments: tuple[str, ...]  # decoded path segments after /api/data/v9.2/
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    principal: str
    base: str  # absolute service root ending in /api/data/v9.2/
    content_ids: dict[str, str] = field(default_factory=dict)  # Content-ID -> "set(guid)"

    @property
    def path(self) -> str:
        """The decoded path after the service root, for messages."""
        return "/".join(self.segments)

    def prefers(self) -> dict[str, str]:
        """The ``Prefer`` header as {preference: value} (value "" when bare)."""
        out: dict[str, str] = {}
        for item in self.headers.get("prefer", "").split(","):
            name, _, value = item.strip().partition("=")
            if name:
                out[name.strip().lower()] = value.strip().strip('"')
        return out


def bad_target(exc: BadTarget) -> ODataError:
    return ODataError(400, "0x80060888", f"Bad request URI: {exc}")


def api_request(method: str, target: str, headers: Mapping[str, str], body: bytes,
                principal: str, base: str, content_ids: dict[str, str] | None = None) -> ApiRequest:
    """An :class:`ApiRequest` for ``target`` (absolute, rooted or relative); 400 if malformed."""
    try:
        parsed = parse_target(target, API_ROOT)
    except BadTarget as exc:
        raise bad_target(exc) from exc
    return ApiRequest(method=method, segments=parsed.segments, query=parsed.query,
                      headers={k.lower(): v for k, v in headers.items()}, body=body,
                      principal=principal, base=base, content_ids={} if content_ids is None
                      else content_ids)


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> ApiResponse:
        return cls(status, {"Content-Type": JSON_TYPE, "OData-Version": "4.0", **(headers or {})},
                   json.dumps(payload, separators=(",", ":")).encode())

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> ApiResponse:
        return cls(status, {"OData-Version": "4.0", **(headers or {})})

    @classmethod
    def error(cls, exc: ODataError) -> ApiResponse:
        return cls.json(exc.status, odata_error_body(exc.code, exc.message), exc.headers)


def encode_skiptoken(state: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_skiptoken(token: str) -> dict[str, object]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
    except ValueError as exc:
        raise ODataError(400, "0x80060888", "The $skiptoken is not valid.") from exc
    # Clients may hand back anything: only the fields this server writes, with their types.
    valid = isinstance(state, dict) and all(
        (name == "k" and isinstance(value, str)) or
        (name in ("n", "o", "u", "w") and isinstance(value, int) and not isinstance(value, bool)
         and value >= 0)
        for name, value in state.items())
    if not valid:
        raise ODataError(400, "0x80060888", "The $skiptoken is not valid.")
    return dict(state)
