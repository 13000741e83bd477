"""OAuth2 client-credentials tokens, issued and checked like the Microsoft identity platform.

Tokens are opaque random strings held in memory: a restart invalidates them, which is also
what a client sees when a real token expires early, so clients must re-authenticate on 401.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emulators.common.errors import odata_error_response

TOKEN_PATH = re.compile(r"^/[^/]+/oauth2/v2\.0/token/?$")
ADMIN_PREFIX = "/_admin"


def is_open_path(path: str) -> bool:
    """Paths that need no bearer token and are never throttled nor faulted."""
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/") or bool(TOKEN_PATH.match(path))


@dataclass(frozen=True)
class _Grant:
    client_id: str
    expires_at: float


class ClientRegistry:
    """Known confidential clients and the bearer tokens issued to them."""

    def __init__(self, clients: Mapping[str, SecretStr], token_ttl_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._clients = dict(clients)
        self._ttl = token_ttl_seconds
        self._clock = clock
        self._tokens: dict[str, _Grant] = {}

    @property
    def token_ttl_seconds(self) -> int:
        return self._ttl

    def authenticate(self, client_id: str, client_secret: str) -> bool:
        expected = self._clients.get(client_id)
        return expected is not None and secrets.compare_digest(
            expected.get_secret_value().encode(), client_secret.encode())

    def issue(self, client_id: str) -> str:
        now = self._clock()
        # Forget expired grants here so the table stays bounded without a sweeper task.
        self._tokens = {t: g for t, g in self._tokens.items() if g.expires_at > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = _Grant(client_id, now + self._ttl)
        return token

    def verify(self, token: str) -> str | None:
        """The client id (principal) the token was issued to, or None if unknown or expired."""
        grant = self._tokens.get(token)
        if grant is None or grant.expires_at <= self._clock():
            return None
        return grant.client_id


def _aad_error(status: int, error: str, description: str) -> JSONResponse:
    code = re.match(r"AADSTS(\d+)", description)
    return JSONResponse({"error": error, "error_description": description,
                         "error_codes": [int(code.group(1))] if code else [],
                         "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())},
                        status_code=status)


def token_route(registry: ClientRegistry) -> Route:
    """``POST /{tenant}/oauth2/v2.0/token`` for the client-credentials grant."""

    async def token(request: Request) -> Response:
        # Parsed by hand: Starlette's form parser needs python-multipart, which we don't ship.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type",
                              "AADSTS70003: The app requested an unsupported grant type "
                              f"'{form.get('grant_type', '')}'.")
        client_id = form.get("client_id", "")
        if not client_id:
            return _aad_error(400, "invalid_request",
                              "AADSTS900144: The request body must contain the following "
                              "parameter: 'client_id'.")
        if not registry.authenticate(client_id, form.get("client_secret", "")):
            return _aad_error(401, "invalid_client",
                              "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                              "being sent in the request is the client secret value, not the "
                              f"client secret ID, for a secret added to app '{client_id}'.")
        scope = form.get("scope", "")
        # Checked after the credentials, so a wrong secret is reported as such first.
        if not scope.endswith("/.default"):
            return _aad_error(400, "invalid_scope",
                              f"AADSTS1002012: The provided value for scope {scope} is not valid. "
                              "Client credential flows must have a scope value with /.default "
                              "suffixed to the resource identifier (application ID URI).")
        ttl = registry.token_ttl_seconds
        return JSONResponse({"token_type": "Bearer", "expires_in": ttl, "ext_expires_in": ttl,
                             "access_token": registry.issue(client_id)})

    return Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"])


class BearerAuthMiddleware:
    """Requires a valid bearer token on every API path; stores the principal in scope state."""

    def __init__(self, app: ASGIApp, registry: ClientRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        principal = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer":
                    principal = self.registry.verify(token.strip())
        if principal is None:
            response = odata_error_response(
                401, "0x80072560", "The user is not a member of the organization or the bearer "
                "token is missing, invalid or expired.",
                {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
