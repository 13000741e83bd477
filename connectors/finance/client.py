"""Finance and operations OData connection: configuration, client factory, keys.

Facts used (domain.md 4.2): service root ``<fo-url>/data``; every key field in the URL,
``dataAreaId`` included: ``/data/CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')``
(values OData-quoted, then percent-encoded: ``'US%2D001'`` is sent as ``'US%252D001'``);
reads return only the caller's default company unless ``cross-company=true``; entity keys are
declared in ``$metadata`` (``<EntityType><Key><PropertyRef Name=.../>``).
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.common.auth import ClientCredentials
from connectors.common.clock import Clock
from connectors.common.http import ApiClient, HttpConfig
from connectors.common.odata import identifier, key_literal

__all__ = ["FinanceConnection", "build_api", "entity_key", "key_string", "parse_metadata_keys"]


class FinanceConnection(BaseModel):
    """Where the Finance environment is and how to sign in."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(description="Environment URL, e.g. https://contoso.operations.dynamics.com.")
    token_url: str = Field(description="OAuth2 token endpoint.")
    client_id: str = Field(description="Application (client) id.")
    client_secret: SecretStr = Field(description="Client secret.")
    scope: str | None = Field(default=None, description="OAuth2 scope (default <url>/.default).")
    company: str = Field(default="usmf", description="Default company (dataAreaId) of the caller.")
    http: HttpConfig = Field(default_factory=HttpConfig)
    page_size: int = Field(default=1000, ge=1, le=10000, description="Change feed / snapshot page size.")
    keys: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Entity key fields per collection (default: from $metadata).")

    @property
    def api_url(self) -> str:
        return self.url.rstrip("/") + "/data"

    def credentials(self) -> ClientCredentials:
        return ClientCredentials(token_url=self.token_url, client_id=self.client_id,
                                 client_secret=self.client_secret,
                                 scope=self.scope or f"{self.url.rstrip('/')}/.default")


def build_api(conn: FinanceConnection, transport: httpx.AsyncBaseTransport | None = None,
              clock: Clock | None = None) -> ApiClient:
    return ApiClient.build(conn.api_url, conn.credentials(), "finance", conn.http, transport, clock)


def entity_key(entity: str, key: dict[str, Any]) -> str:
    """``ProjectsV2(dataAreaId='usmf',ProjectId='P-1')``: every key field, named, each value an
    OData literal percent-encoded for the path (`connectors.common.odata`); `InvalidKey` for a
    value that must not become a request (control characters, not a scalar)."""
    pairs = ",".join(f"{identifier(k, 'key field')}={key_literal(v, k)}" for k, v in key.items())
    return f"{identifier(entity, 'entity')}({pairs})"


def key_string(key: dict[str, Any], order: tuple[str, ...] | None = None) -> str:
    """The record id of a Finance row on its CDC topic: key values in key order joined by ``|``
    (``usmf|P-1``). ``|`` inside a value is escaped as ``\\|`` so the string stays reversible."""
    names = order or tuple(key)
    return "|".join(str(key[n]).replace("\\", "\\\\").replace("|", "\\|") for n in names)


def parse_metadata_keys(csdl: bytes | str) -> dict[str, tuple[str, ...]]:
    """Entity set -> key fields, from a CSDL ``$metadata`` document."""
    root = ElementTree.fromstring(csdl)
    types: dict[str, tuple[str, ...]] = {}
    sets: dict[str, str] = {}
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "EntityType":
            refs = tuple(ref.get("Name", "") for ref in element.iter() if ref.tag.rsplit("}", 1)[-1] == "PropertyRef")
            types[element.get("Name", "")] = refs
        elif tag == "EntitySet":
            sets[element.get("Name", "")] = element.get("EntityType", "").rsplit(".", 1)[-1]
    return {name: types[t] for name, t in sets.items() if t in types}
