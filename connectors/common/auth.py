"""OAuth2 client-credentials tokens (Microsoft identity platform) with cache and early refresh.

``POST {token_url}`` with ``grant_type=client_credentials, client_id, client_secret, scope``
answers ``{"access_token", "expires_in", ...}``. The token is cached and refreshed
``refresh_margin`` seconds before it expires, so a long request never starts with a token that
dies on the way; a 401 from the API drops the cache once and retries with a fresh token.
The secret is a `SecretStr`: it is read only to build the form body, never logged or repr'd.

The token is bound to the configured API: `BearerAuth` attaches it only to requests whose scheme,
host and port are the API's (`ApiOrigin`) and raises `ForeignOrigin` for any other, without
sending anything. Links the API or a stored checkpoint names (``@odata.nextLink``,
``@odata.deltaLink``) are followed by callers that may not check them, and a checkpoint on Kafka
is writable by anyone who can produce there: the auth is the one place every request passes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from connectors.common.clock import Clock, SystemClock
from connectors.common.errors import AuthFailed, Rejected, RetryLater

__all__ = ["ApiOrigin", "BearerAuth", "ClientCredentials", "ForeignOrigin", "TokenProvider"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class ForeignOrigin(Rejected):
    """A URL outside the configured API: it is never requested with our token (permanent: the
    same link stays foreign however often it is tried)."""


@dataclass(frozen=True)
class ApiOrigin:
    """Scheme, host, port and path prefix of the configured API: what a token and a link may reach."""

    scheme: str
    host: str
    port: int
    path: str  # always ends with "/"

    @classmethod
    def of(cls, base_url: str | httpx.URL) -> ApiOrigin:
        url = httpx.URL(str(base_url))
        return cls(url.scheme, url.host, _port(url), url.path.rstrip("/") + "/")

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def same_origin(self, url: httpx.URL) -> bool:
        """Same scheme, host and port (default ports made explicit)."""
        return (url.scheme, url.host, _port(url)) == (self.scheme, self.host, self.port)

    def check_link(self, link: str, what: str) -> str:
        """``link`` if it is an absolute URL under the API's path on its origin, else `ForeignOrigin`.

        OData next and delta links are absolute; a relative one would be resolved by httpx in
        ways of its own (``../`` leaves the API path), so it is refused as well.
        """
        try:
            url = httpx.URL(link)
        except (httpx.InvalidURL, TypeError, UnicodeError):  # a lone surrogate: no URL holds it
            raise ForeignOrigin(f"{what}: not a URL") from None
        if not url.is_absolute_url or not self.same_origin(url):
            where = f"{url.scheme}://{url.host}:{_port(url)}" if url.is_absolute_url else "a relative URL"
            raise ForeignOrigin(f"{what} points to {where[:200]}, not the configured API {self}")
        segments = url.path.split("/")
        if url.userinfo or ".." in segments or not url.path.startswith(self.path):
            raise ForeignOrigin(f"{what} leaves the configured API path {self.path}")
        return link


def _port(url: httpx.URL) -> int:
    return url.port or _DEFAULT_PORTS.get(url.scheme, 0)


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
    """httpx auth flow: bearer header from the provider; one retry on 401 with a new token.

    Only for requests to ``origin`` (the configured API): any other raises `ForeignOrigin`
    before the token is even fetched, so whatever URL a caller was handed, the token stays home.
    """

    def __init__(self, provider: TokenProvider, origin: ApiOrigin) -> None:
        self._provider = provider
        self._origin = origin

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._origin.same_origin(request.url):
            url = request.url
            raise ForeignOrigin(f"refusing to send the API token to {url.scheme}://{url.host}:{_port(url)}"
                                f" (configured API: {self._origin})")
        request.headers["Authorization"] = f"Bearer {await self._provider.token()}"
        response = yield request
        if response.status_code == 401:
            self._provider.invalidate()
            request.headers["Authorization"] = f"Bearer {await self._provider.token()}"
            yield request
