"""A small synchronous client of either API for the scenario generator, reconcile and tests.

It authenticates like the connectors (OAuth2 client credentials against a Microsoft identity
platform-shaped token endpoint) and renews the bearer token on a 401.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

__all__ = ["ApiSession"]


class ApiSession:
    """An authenticated httpx client rooted at one API (`/api/data/v9.2` or `/data`)."""

    def __init__(self, api_url: str, token_url: str, client_id: str, client_secret: SecretStr,
                 scope: str | None = None, timeout: float = 30.0) -> None:
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
        if "Authorization" not in self.http.headers:
            self._authenticate()
        resp = self.http.request(method, url, **kwargs)
        if resp.status_code == 401:
            self._authenticate()
            resp = self.http.request(method, url, **kwargs)
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
