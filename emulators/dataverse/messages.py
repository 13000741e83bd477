"""Request and response values passed between the HTTP layer, ``$batch`` and the handlers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from emulators.common.errors import ODataError, odata_error_body

JSON_TYPE = "application/json; odata.metadata=minimal"


@dataclass
class ApiRequest:
    method: str
    path: str  # after /api/data/v9.2/, no leading slash
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    principal: str
    base: str  # absolute service root ending in /api/data/v9.2/
    content_ids: dict[str, str] = field(default_factory=dict)  # Content-ID -> "set(guid)"

    def prefers(self) -> dict[str, str]:
        """The ``Prefer`` header as {preference: value} (value "" when bare)."""
        out: dict[str, str] = {}
        for item in self.headers.get("prefer", "").split(","):
            name, _, value = item.strip().partition("=")
            if name:
                out[name.strip().lower()] = value.strip().strip('"')
        return out


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
