"""Dataverse Web API connection: configuration, client factory, key segments.

Facts used (domain.md 4.1): service root ``<org>/api/data/v9.2``; rows carry ``@odata.etag``
(``W/"<versionnumber>"``); alternate keys address a row as
``set(key1='x',_lookup_value=<guid>)`` (string values single-quoted with ``''`` escaping, lookup
parts of a key bare GUIDs in the ``_<name>_value`` form); a single primary-key GUID may be
given bare: ``set(<guid>)``. Values are percent-encoded after quoting; Microsoft documents that
alternate-key values holding ``/ # < > * % & : \\ ? +`` cannot be used in URLs at all (see
`connectors.common.odata`): the sink finds such a row with ``$filter`` (`key_filter`, where
encoded special characters are supported) and addresses it by its primary key (`unaddressable`).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.common.auth import ClientCredentials
from connectors.common.clock import Clock
from connectors.common.http import ApiClient, HttpConfig
from connectors.common.odata import (
    DATAVERSE_UNSUPPORTED_KEY_CHARS,
    identifier,
    key_literal,
    literal,
)

__all__ = ["DataverseConnection", "build_api", "entity_key", "key_filter", "key_segment", "primary_key",
           "unaddressable"]

API_PATH = "/api/data/v9.2"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class DataverseConnection(BaseModel):
    """Where the Dataverse organization is and how to sign in."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(description="Organization URL, e.g. https://org.crm.dynamics.com.")
    token_url: str = Field(description="OAuth2 token endpoint.")
    client_id: str = Field(description="Application (client) id.")
    client_secret: SecretStr = Field(description="Client secret.")
    scope: str | None = Field(default=None, description="OAuth2 scope (default <url>/.default).")
    http: HttpConfig = Field(default_factory=HttpConfig)
    page_size: int = Field(default=5000, ge=1, le=5000, description="Prefer odata.maxpagesize.")
    primary_keys: dict[str, str] = Field(
        default_factory=dict,
        description="Primary key column per entity set, as the map registry declares it "
        "(the CLI fills it; the naming convention only for an entity set no map declares).")

    @property
    def api_url(self) -> str:
        return self.url.rstrip("/") + API_PATH

    def credentials(self) -> ClientCredentials:
        return ClientCredentials(token_url=self.token_url, client_id=self.client_id,
                                 client_secret=self.client_secret,
                                 scope=self.scope or f"{self.url.rstrip('/')}/.default")


def build_api(conn: DataverseConnection, transport: httpx.AsyncBaseTransport | None = None,
              clock: Clock | None = None) -> ApiClient:
    return ApiClient.build(conn.api_url, conn.credentials(), "dataverse", conn.http, transport, clock)


def primary_key(entity_set: str, overrides: dict[str, str] | None = None) -> str:
    """``msdyn_projects`` -> ``msdyn_projectid``; ``cdm_companies`` -> ``cdm_companyid``.

    Dataverse names the primary key after the logical (singular) name; the entity set is its
    plural, which does not always say the singular: the declared key in ``overrides`` (from the
    map registry) wins, and this convention serves only an entity set nobody declared.
    """
    if overrides and entity_set in overrides:
        return overrides[entity_set]
    if entity_set.endswith("ies"):
        singular = entity_set[:-3] + "y"
    elif entity_set.endswith("s"):
        singular = entity_set[:-1]
    else:
        singular = entity_set
    return singular + "id"


def _literal(name: str, value: Any) -> str:
    if _is_lookup_part(name, value):
        return str(value)  # lookup parts of an alternate key are bare GUIDs
    return key_literal(value, name)


def key_segment(key: dict[str, Any]) -> str:
    """The text inside ``set(...)``: a bare GUID for a single GUID key, else name=value pairs
    (values through `connectors.common.odata`: quoted, then percent-encoded; `InvalidKey` for
    control characters or non-scalars)."""
    if len(key) == 1:
        (value,) = key.values()
        if isinstance(value, str) and _GUID.match(value):
            return value
    return ",".join(f"{identifier(name, 'key field')}={_literal(name, value)}" for name, value in key.items())


def entity_key(entity_set: str, key: dict[str, Any]) -> str:
    return f"{identifier(entity_set, 'entity set')}({key_segment(key)})"


def _is_lookup_part(name: str, value: Any) -> bool:
    return isinstance(value, str) and name.startswith("_") and name.endswith("_value") and bool(_GUID.match(value))


def unaddressable(key: dict[str, Any]) -> bool:
    """True when a key value holds a character Dataverse documents as unusable in alternate-key
    URLs (``/ # < > * % & : \\ ? +``): such a row is found with `key_filter` and addressed by
    its primary key instead."""
    return any(isinstance(v, str) and not _is_lookup_part(k, v) and DATAVERSE_UNSUPPORTED_KEY_CHARS.intersection(v)
               for k, v in key.items())


def key_filter(key: dict[str, Any]) -> str:
    """``$filter`` text matching the row a key names (`literal` values, bare lookup GUIDs); not
    percent-encoded: pass it in ``params`` and the HTTP client encodes it, which Dataverse
    documents as the way to filter on values with special characters."""
    return " and ".join(f"{identifier(k, 'key field')} eq {v if _is_lookup_part(k, v) else literal(v, k)}"
                        for k, v in key.items())
