"""The API session of the scenario, reconcile and the tests: the bearer token only ever goes to
the configured API."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from connectors.common.auth import ForeignOrigin
from dualwrite.apiclient import ApiError, ApiSession, checked_request

pytestmark = pytest.mark.unit

API = "http://127.0.0.1:9/api/data/v9.2"


def session() -> ApiSession:
    return ApiSession(API, "http://127.0.0.1:9/token", "dualwrite", SecretStr("s3cret"))


@pytest.mark.parametrize("link", [
    "https://evil.example/api/data/v9.2/accounts?$skiptoken=1",  # another host
    "http://127.0.0.1:10/api/data/v9.2/accounts",  # another port
    "http://127.0.0.1:9/other/accounts",  # off the API's path
    "http://127.0.0.1:9/api/data/v9.2/../../token",
])
def test_a_link_outside_the_configured_api_is_never_requested(link: str) -> None:
    s = session()
    with pytest.raises(ForeignOrigin):
        s.request("GET", link)  # refused before any request (port 9 would not answer anyway)
    with pytest.raises(ApiError, match="only sent to DUALWRITE_DATAVERSE__URL") as caught:
        checked_request(s, "dataverse", "GET", link)
    assert "s3cret" not in str(caught.value)
    assert "Authorization" not in s.http.headers  # no token was even asked for
