"""OAuth2 client-credentials tokens (Microsoft identity platform) with cache and early refresh.

``POST {token_url}`` with ``grant_type=client_credentials, client_id, client_secret, scope``
answers ``{"access_token", "expires_in", ...}``. The token is cached and refreshed
``refresh_margin`` seconds before it expires, so a long request never starts with a token that
dies on the way; a 401 from the API drops the cache once and retries with a fresh token.
The secret is a `SecretStr`: it is read only to build the form body, never logged or repr'd.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import AuthFailed, RetryLater

__all__ = ["BearerAuth", "ClientCredentials", "TokenProvider"]


class ClientCredentials(BaseModel):
    """Where and as whom to get a bearer token."""

    model_config = ConfigDict(frozen=True)

    token_url: str = Field(description="OAuth2 token endpoint, .../{tenant}/oauth2/v2.0/token.")
    client_id: str = Field(description="Application (client) id.")
    client_secret: SecretStr = Field(description="Client secret (never logged).")
    scope: str = Field(description="Scope, normally '<resource url>/.default'.")
    refresh_margin_s: float = Field(default=60.0, ge=0, description="Refresh this long before expiry.")


class TokenProvider:
    """Caches one access token; concurrent callers share a single refresh."""

    def __init__(self, credentials: ClientCredentials, http: httpx.AsyncClient,
                 clock: Clock | None = None) -> None:
        self._credentials = credentials
        self._http = http
        self._clock = clock or SystemClock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many times the endpoint was asked (observable in tests)

    def __repr__(self) -> str:
        return f"TokenProvider(client_id={self._credentials.client_id!r}, cached={self._token is not None})"

    def invalidate(self) -> None:
        self._token = None
        self._expires_at = 0.0

    def _fresh(self) -> bool:
        margin = self._credentials.refresh_margin_s
        return self._token is not None and self._clock.monotonic() < self._expires_at - margin

    async def token(self) -> str:
        if self._fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._fresh():  # another waiter may have refreshed it meanwhile
                await self._fetch()
            assert self._token is not None
            return self._token

    async def _fetch(self) -> None:
        creds = self._credentials
        form = {"grant_type": "client_credentials", "client_id": creds.client_id,
                "client_secret": creds.client_secret.get_secret_value(), "scope": creds.scope}
        started = self._clock.monotonic()
        try:
            response = await self._http.post(creds.token_url, data=form)
        except httpx.TransportError as exc:
            raise RetryLater(f"token endpoint unreachable: {type(exc).__name__}") from None
        self.fetches += 1
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"token endpoint answered {response.status_code}", status=response.status_code)
        if response.status_code != 200:
            # The body names the AADSTS error, never the secret; keep it short for the log.
            raise AuthFailed(f"token endpoint refused client {creds.client_id!r}",
                             status=response.status_code, body=response.text[:500])
        try:
            payload = response.json()
            token = str(payload["access_token"])
            expires_in = float(payload.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise AuthFailed("token endpoint answered without access_token", status=200) from None
        self._token = token
        self._expires_at = started + expires_in


class BearerAuth(httpx.Auth):
    """httpx auth flow: bearer header from the provider; one retry on 401 with a new token."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self._provider.token()}"
        response = yield request
        if response.status_code == 401:
            self._provider.invalidate()
            request.headers["Authorization"] = f"Bearer {await self._provider.token()}"
            yield request
