"""Finance emulator: $batch with atomic change sets and Content-ID references."""

from __future__ import annotations

import json

import httpx
import pytest

from emulators.common.batch import (
    BatchRequest,
    BatchResponse,
    ChangeSet,
    ChangeSetResponse,
    format_batch_request,
    parse_batch_response,
)
from tests.contract.finance.helpers import feed_since, uid, watermark

pytestmark = pytest.mark.contract


def _json(method: str, url: str, body: dict[str, object] | None = None,
          content_id: str | None = None, **headers: str) -> BatchRequest:
    return BatchRequest(method, url, {"Content-Type": "application/json", **headers},
                        json.dumps(body).encode() if body is not None else b"", content_id)


def _send(fo: httpx.Client, parts: list[BatchRequest | ChangeSet],
          **headers: str) -> list[BatchResponse | ChangeSetResponse]:
    body, content_type = format_batch_request(parts)
    resp = fo.post("/$batch", content=body, headers={"Content-Type": content_type, **headers})
    assert resp.status_code == 200, resp.text
    return parse_batch_response(resp.content, resp.headers["Content-Type"])


def _customer(account: str, **extra: object) -> dict[str, object]:
    return {"CustomerAccount": account, "Name": f"Batch {account}", **extra}


def test_requests_outside_change_sets_answer_in_order(fo: httpx.Client) -> None:
    account = uid("B")
    out = _send(fo, [_json("POST", "CustomersV3", _customer(account)),
                     BatchRequest("GET", f"CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')"),
                     BatchRequest("GET", "/data/CustomersV3?$top=1")])
    assert [p.status for p in out if isinstance(p, BatchResponse)] == [201, 200, 200]
    second = out[1]
    assert isinstance(second, BatchResponse)
    assert json.loads(second.body)["Name"] == f"Batch {account}"


def test_change_set_rolls_back_entirely_when_one_request_fails(fo: httpx.Client) -> None:
    before = watermark(fo)
    good, bad = uid("B"), uid("B")
    out = _send(fo, [ChangeSet("cs1", [
        _json("POST", "CustomersV3", _customer(good), content_id="1"),
        _json("POST", "ProjectsV2", {"ProjectId": bad, "ProjectContractId": "MISSING"},
              content_id="2")])])
    assert len(out) == 1 and isinstance(out[0], BatchResponse)
    assert out[0].status == 400 and out[0].content_id == "2"
    assert "Write failed" in json.loads(out[0].body)["error"]["message"]
    assert fo.get(f"/CustomersV3(dataAreaId='usmf',CustomerAccount='{good}')").status_code == 404
    assert feed_since(fo, before) == []


def test_change_set_commits_as_one_transaction_in_the_feed(fo: httpx.Client) -> None:
    before = watermark(fo)
    a, b = uid("B"), uid("B")
    out = _send(fo, [ChangeSet("cs1", [_json("POST", "CustomersV3", _customer(a)),
                                       _json("POST", "CustomersV3", _customer(b))])])
    assert isinstance(out[0], ChangeSetResponse)
    assert [r.status for r in out[0].responses] == [201, 201]
    entries = feed_since(fo, before)
    assert [e["key"]["CustomerAccount"] for e in entries] == [a, b]
    assert len({e["txid"] for e in entries}) == 1


def test_content_id_addresses_a_row_created_earlier_in_the_change_set(fo: httpx.Client) -> None:
    contract, proj = uid("PC"), uid("P")
    out = _send(fo, [ChangeSet("cs1", [
        _json("POST", "ProjectContractHeaders", {"ProjectContractId": contract,
                                                 "CustomerAccountNumber": "US-002"},
              content_id="1"),
        _json("POST", "ProjectsV2", {"ProjectId": proj, "ProjectContractId": contract},
              content_id="2"),
        _json("PATCH", "$2", {"ProjectName": "Named through $2"}, content_id="3")])])
    change_set = out[0]
    assert isinstance(change_set, ChangeSetResponse)
    assert [(r.content_id, r.status) for r in change_set.responses] == [
        ("1", 201), ("2", 201), ("3", 204)]
    row = fo.get(f"/ProjectsV2(dataAreaId='usmf',ProjectId='{proj}')").json()
    assert row["ProjectName"] == "Named through $2"


def test_processing_stops_after_a_failure_unless_continue_on_error(fo: httpx.Client) -> None:
    parts: list[BatchRequest | ChangeSet] = [
        BatchRequest("GET", "CustomersV3(dataAreaId='usmf',CustomerAccount='NOPE')"),
        BatchRequest("GET", "CustomersV3?$top=1")]
    assert [p.status for p in _send(fo, parts) if isinstance(p, BatchResponse)] == [404]
    both = _send(fo, parts, Prefer="odata.continue-on-error")
    assert [p.status for p in both if isinstance(p, BatchResponse)] == [404, 200]


def test_malformed_batch_is_an_odata_400(fo: httpx.Client) -> None:
    resp = fo.post("/$batch", content=b"garbage",
                   headers={"Content-Type": "multipart/mixed; boundary=b1"})
    assert resp.status_code == 400 and "error" in resp.json()
