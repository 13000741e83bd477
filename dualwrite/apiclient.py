"""A small synchronous client of either API for the scenario generator, reconcile and tests.

It authenticates like the connectors (OAuth2 client credentials against a Microsoft identity
platform-shaped token endpoint) and renews the bearer token on a 401.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import SecretStr

from connectors.common.auth import ApiOrigin, ForeignOrigin

__all__ = ["ApiError", "ApiSession", "ApiUnreachable", "CredentialsRefused", "checked_request"]

# Answers a person's app would simply try again (the emulators' faults answer these before acting).
RETRIABLE = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """A call to an API that could not be made: one line saying what to do next."""


class ApiUnreachable(ApiError):
    """No answer from an API or its token endpoint."""


class CredentialsRefused(ApiError):
    """The token endpoint or the API refused the configured client."""


_ENV = {"dataverse": "DUALWRITE_DATAVERSE__", "finance": "DUALWRITE_FINANCE__"}


class ApiSession:
    """An authenticated httpx client rooted at one API (`/api/data/v9.2` or `/data`)."""

    def __init__(self, api_url: str, token_url: str, client_id: str, client_secret: SecretStr,
                 scope: str | None = None, timeout: float = 30.0, attempts: int = 10) -> None:
        self.attempts = attempts
        self.api_url = api_url.rstrip("/")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self.scope = scope or api_url.split("/api/")[0].split("/data")[0] + "/.default"
        self.http = httpx.Client(base_url=self.api_url, timeout=timeout)

    def _authenticate(self) -> None:
        resp = httpx.post(self.token_url, data={
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_secret": self._secret.get_secret_value(), "scope": self.scope})
        resp.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One call; renews the token on 401 and waits out 429/5xx answers (Retry-After first).

        A URL relative to the API, or an absolute one under it: an absolute URL elsewhere (an
        ``@odata.nextLink`` a hostile or misconfigured server answered) is `ForeignOrigin`, never
        requested with our bearer token."""
        if httpx.URL(url).is_absolute_url:
            ApiOrigin.of(self.api_url).check_link(url, f"{method} link")
        if "Authorization" not in self.http.headers:
            self._authenticate()
        for attempt in range(self.attempts):
            resp = self.http.request(method, url, **kwargs)
            if resp.status_code == 401:
                self._authenticate()
                resp = self.http.request(method, url, **kwargs)
            if resp.status_code not in RETRIABLE or attempt == self.attempts - 1:
                return resp
            retry_after = resp.headers.get("Retry-After", "")
            time.sleep(float(retry_after) if retry_after.isdigit() else min(0.2 * 2 ** attempt, 5.0))
        return resp

    def get_all(self, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every row of a collection, following `@odata.nextLink`."""
        rows: list[dict[str, Any]] = []
        resp = self.request("GET", url, params=params)
        while True:
            resp.raise_for_status()
            body = resp.json()
            rows.extend(body.get("value", []))
            nxt = body.get("@odata.nextLink")
            if not nxt:
                return rows
            resp = self.request("GET", nxt)

    def close(self) -> None:
        self.http.close()


def checked_request(session: ApiSession, system: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """``session.request``, with an unreachable API and a refused client as typed errors naming
    the settings to check (`ApiUnreachable`, `CredentialsRefused`); any other answer is returned."""
    env = _ENV.get(system, "DUALWRITE_")
    try:
        resp = session.request(method, url, **kwargs)
    except ForeignOrigin as exc:
        raise ApiError(f"{system}: {exc}; the token is only sent to {env}URL") from None
    except httpx.HTTPStatusError as exc:  # from the token endpoint
        raise CredentialsRefused(
            f"{system} token endpoint refused client {session.client_id!r} (HTTP "
            f"{exc.response.status_code}): check {env}CLIENT_ID, {env}CLIENT_SECRET and "
            f"{env}TOKEN_URL") from None
    except (KeyError, ValueError):  # a token answer without a token
        raise CredentialsRefused(f"{system} token endpoint gave no access token: check "
                                 f"{env}TOKEN_URL") from None
    except httpx.TransportError as exc:
        raise ApiUnreachable(
            f"{system} API at {session.api_url} cannot be reached ({type(exc).__name__}): check "
            f"{env}URL and {env}TOKEN_URL, or start it (`dualwrite emulator {system} --seed`)") from None
    if resp.status_code in (401, 403):
        raise CredentialsRefused(
            f"{system} API refused client {session.client_id!r} on {method} {url.split('?')[0][:120]} "
            f"(HTTP {resp.status_code}): check {env}CLIENT_ID, {env}CLIENT_SECRET and its permissions")
    return resp
