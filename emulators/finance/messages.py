"""Transport-neutral request and response of one OData call (HTTP route and ``$batch``).

:func:`api_request` is the one way a request target becomes an :class:`ApiRequest`: the HTTP
route passes the raw target the client sent, ``$batch`` the URL of each part, and both are
parsed by :func:`emulators.common.target.parse_target` (segments split at raw ``/``, then
percent-decoded), so a key addresses the same row either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from emulators.common.target import BadTarget, parse_target
from emulators.finance.errors import bad_request

__all__ = ["API_ROOT", "ApiRequest", "ApiResponse", "api_request"]

API_ROOT = "/data"


@dataclass
class ApiRequest:
    method: str
    segments: tuple[str, ...]  # decoded, below /data/: ("ProjectsV2(dataAreaId='usmf',...)",)
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    principal: str
    base_url: str  # absolute URL of the service root, ".../data"

    @property
    def path(self) -> str:
        """The decoded path below ``/data/``, for messages."""
        return "/".join(self.segments)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def cross_company(self) -> bool:
        return self.query.get("cross-company", "").lower() == "true"


@dataclass
class ApiResponse:
    status: int
    body: object | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None  # plain-text answers ($count)


def api_request(method: str, target: str, headers: Mapping[str, str], body: bytes,
                principal: str, base_url: str) -> ApiRequest:
    """An :class:`ApiRequest` for ``target`` (absolute, ``/data/...`` or relative); 400 if bad."""
    try:
        parsed = parse_target(target, API_ROOT)
    except BadTarget as exc:
        raise bad_request(str(exc)) from exc
    return ApiRequest(method=method.upper(), segments=parsed.segments, query=parsed.query,
                      headers={k.lower(): v for k, v in headers.items()}, body=body,
                      principal=principal, base_url=base_url)
