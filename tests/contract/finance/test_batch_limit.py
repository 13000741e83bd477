"""Finance emulator: a ``$batch`` above ``EmulatorConfig.max_batch_requests`` (default 1,000,
Dataverse's documented limit; real Finance publishes none) is refused whole, so a pipeline test
proves the sink never sends more than its ``max_change_set`` (issue 11)."""

from __future__ import annotations

import json

import httpx
import pytest

from emulators.common.batch import (
    BatchRequest,
    ChangeSet,
    ChangeSetResponse,
    format_batch_request,
    parse_batch_response,
)
from tests.contract.finance.helpers import uid

pytestmark = pytest.mark.contract


def _change_set(accounts: list[str]) -> tuple[bytes, str]:
    return format_batch_request([ChangeSet("cs", [
        BatchRequest("POST", "CustomersV3", {"Content-Type": "application/json"},
                     json.dumps({"CustomerAccount": a, "Name": f"Limit {a}"}).encode(), str(i))
        for i, a in enumerate(accounts, 1)])])


def _exists(fo: httpx.Client, account: str) -> bool:
    return fo.get(f"CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')").status_code == 200


def test_a_change_set_above_the_limit_is_refused_whole_with_an_odata_error(fo: httpx.Client) -> None:
    accounts = [uid("L") for _ in range(1001)]
    body, content_type = _change_set(accounts)
    response = fo.post("/$batch", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert "limit of 1000" in response.json()["error"]["message"]
    assert not _exists(fo, accounts[0])


def test_a_change_set_at_the_limit_is_accepted(fo: httpx.Client) -> None:
    accounts = [uid("L") for _ in range(1000)]
    body, content_type = _change_set(accounts)
    response = fo.post("/$batch", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    (answer,) = parse_batch_response(response.content, response.headers["Content-Type"])
    assert isinstance(answer, ChangeSetResponse) and len(answer.responses) == 1000
    assert _exists(fo, accounts[0]) and _exists(fo, accounts[-1])
