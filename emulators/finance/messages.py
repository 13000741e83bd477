"""Transport-neutral request and response of one OData call (HTTP route and ``$batch``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ApiRequest", "ApiResponse"]


@dataclass
class ApiRequest:
    method: str
    path: str  # below /data/, e.g. "ProjectsV2(dataAreaId='usmf',ProjectId='P-1')"
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    principal: str
    base_url: str  # absolute URL of the service root, ".../data"

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
