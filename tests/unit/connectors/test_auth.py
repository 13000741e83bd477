from __future__ import annotations

import logging

import httpx
import pytest

from connectors.common.auth import ApiOrigin, ForeignOrigin, TokenProvider
from connectors.common.clock import FakeClock
from connectors.common.errors import AuthFailed, RetryLater
from tests.unit.connectors.fakes import SECRET, TOKEN_URL, FakeApi, api_client, credentials

pytestmark = pytest.mark.unit


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"auth": request.headers["Authorization"]})


async def test_token_is_cached_and_sent_as_bearer() -> None:
    fake = FakeApi(ok)
    api = api_client(fake)
    first = await api.request("GET", "accounts")
    second = await api.request("GET", "accounts")
    assert first.json() == second.json() == {"auth": "Bearer tok-1"}
    assert fake.tokens_issued == 1
    await api.aclose()


async def test_token_refreshed_before_expiry() -> None:
    clock = FakeClock()
    fake = FakeApi(ok, expires_in=600)
    api = api_client(fake, clock)
    await api.request("GET", "accounts")
    clock.advance(600 - 61)  # still outside the 60 s refresh margin
    assert (await api.request("GET", "accounts")).json()["auth"] == "Bearer tok-1"
    clock.advance(2)  # now inside the margin: refresh before it can die in flight
    assert (await api.request("GET", "accounts")).json()["auth"] == "Bearer tok-2"
    await api.aclose()


async def test_401_drops_the_token_and_retries_once() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(401 if len(seen) == 1 else 200, json={})

    fake = FakeApi(handler)
    api = api_client(fake)
    assert (await api.request("GET", "accounts")).status_code == 200
    assert seen == ["Bearer tok-1", "Bearer tok-2"]
    await api.aclose()


async def test_refused_credentials_are_auth_failed_without_the_secret(caplog: pytest.LogCaptureFixture) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "invalid_client", "error_description": "AADSTS7000215"})

    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        provider = TokenProvider(credentials(), http, FakeClock())
        with pytest.raises(AuthFailed) as info:
            await provider.token()
    assert info.value.status == 401
    rendered = " ".join([repr(provider), repr(credentials()), str(credentials()), repr(info.value),
                         str(info.value), info.value.body, caplog.text])
    assert SECRET not in rendered
    assert "**********" in repr(credentials())


async def test_token_endpoint_outage_is_retry_later() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == TOKEN_URL
        return httpx.Response(503)

    async with httpx.AsyncClient(transport=httpx.MockTransport(down)) as http:
        with pytest.raises(RetryLater):
            await TokenProvider(credentials(), http, FakeClock()).token()


@pytest.mark.parametrize("foreign", [
    "https://evil.example/api/data/v9.2/accounts",  # another host
    "https://org.example:8443/api/data/v9.2/accounts",  # another port
    "http://org.example/api/data/v9.2/accounts",  # another scheme
    "https://org.example.evil.example/api/data/v9.2/accounts",  # a look-alike host
])
async def test_bearer_token_is_never_sent_to_another_origin(foreign: str) -> None:
    fake = FakeApi(ok)
    api = api_client(fake)
    with pytest.raises(ForeignOrigin) as info:
        await api.request("GET", foreign)
    assert fake.calls == []  # nothing left the client: no request, no header, nowhere
    assert fake.tokens_issued == 0
    assert "tok-" not in str(info.value) and "configured API: https://org.example:443" in str(info.value)
    # The configured origin, spelled with its default port, still gets the token.
    same = await api.request("GET", "https://org.example:443/api/data/v9.2/accounts")
    assert same.json() == {"auth": "Bearer tok-1"}
    assert {c.url.host for c in fake.calls} == {"org.example"}
    await api.aclose()


def test_links_must_stay_under_the_configured_api() -> None:
    origin = ApiOrigin.of("https://org.example/api/data/v9.2")
    good = "https://org.example/api/data/v9.2/accounts?$deltatoken=5!1"
    assert origin.check_link(good, "next link") == good
    for link in ("https://evil.example/api/data/v9.2/accounts", "https://org.example:444/api/data/v9.2/a",
                 "http://org.example/api/data/v9.2/a", "https://org.example/other/accounts",
                 "https://org.example/api/data/v9.2/../../admin", "https://user:pw@org.example/api/data/v9.2/a",
                 "accounts?$deltatoken=1", "//evil.example/api/data/v9.2/a", "https://[::1/x"):
        with pytest.raises(ForeignOrigin):
            origin.check_link(link, "next link")
