"""The ``$batch`` multipart codec: parsing requests, writing and re-reading responses."""

from __future__ import annotations

import pytest

from emulators.common.batch import (
    BatchPart,
    BatchRequest,
    BatchResponse,
    BatchResponsePart,
    ChangeSet,
    ChangeSetResponse,
    count_requests,
    format_batch,
    format_batch_request,
    parse_batch,
    parse_batch_response,
)
from emulators.common.errors import ODataError

pytestmark = pytest.mark.unit

RAW = (
    b"--batch_1\r\n"
    b"Content-Type: multipart/mixed; boundary=changeset_2\r\n\r\n"
    b"--changeset_2\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
    b"POST https://org.crm.dynamics.com/api/data/v9.2/accounts HTTP/1.1\r\n"
    b"Content-Type: application/json; type=entry\r\n\r\n"
    b'{"name": "--batch_1 lookalike inside a value"}\r\n'
    b"--changeset_2\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
    b"PATCH $1 HTTP/1.1\r\nContent-Type: application/json\r\nIf-Match: *\r\n\r\n"
    b'{"name": "x"}\r\n'
    b"--changeset_2--\r\n"
    b"--batch_1\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"GET accounts?$select=name HTTP/1.1\r\n\r\n"
    b"--batch_1--\r\n"
)


def test_parses_change_sets_and_plain_requests() -> None:
    parts = parse_batch(RAW, 'multipart/mixed; boundary="batch_1"')
    assert count_requests(parts) == 3
    change_set, get = parts
    assert isinstance(change_set, ChangeSet) and isinstance(get, BatchRequest)
    post, patch = change_set.requests
    assert (post.method, post.content_id) == ("POST", "1")
    assert post.url == "https://org.crm.dynamics.com/api/data/v9.2/accounts"
    assert post.body == b'{"name": "--batch_1 lookalike inside a value"}'
    assert patch.url == "$1" and patch.headers["if-match"] == "*"
    assert (get.method, get.url, get.body) == ("GET", "accounts?$select=name", b"")


def test_accepts_bare_lf_line_endings() -> None:
    parts = parse_batch(RAW.replace(b"\r\n", b"\n"), "multipart/mixed; boundary=batch_1")
    assert count_requests(parts) == 3


@pytest.mark.parametrize(("body", "content_type"), [
    (RAW, "application/json"),
    (RAW, "multipart/mixed"),
    (RAW.replace(b"--batch_1--", b"--batch_1"), "multipart/mixed; boundary=batch_1"),
])
def test_malformed_batches_raise_400(body: bytes, content_type: str) -> None:
    with pytest.raises(ODataError) as caught:
        parse_batch(body, content_type)
    assert caught.value.status == 400


_HTTP = b"Content-Type: application/http\r\n\r\n"


@pytest.mark.parametrize("part", [
    b"Content-Type: text/plain\r\n\r\nhi",
    _HTTP + b"not a request line",
    _HTTP + b"GET accounts\r\n\r\n",  # no HTTP version: a line break cut the request line
    _HTTP + b"PATCH accounts(name='a\r\nMSCRM.CallerID: x') HTTP/1.1\r\n\r\n{}",
    _HTTP + b"GET accounts HTTP/1.1\r\nX-A: 1\rX-B: 2\r\n\r\n",  # bare CR inside a header
    _HTTP + b"GET accounts HTTP/1.1\r\nno colon here\r\n\r\n",
    _HTTP + b"GET accounts HTTP/1.1\r\nBad Name: 1\r\n\r\n",
    b"Content-Type: application/http\rX: y\r\n\r\nGET accounts HTTP/1.1\r\n\r\n",
])
def test_a_malformed_part_is_an_error_for_that_part_only(part: bytes) -> None:
    good = _HTTP + b"GET accounts HTTP/1.1\r\n\r\n"
    body = b"--b\r\n" + part + b"\r\n--b\r\n" + good + b"\r\n--b--"
    bad, fine = parse_batch(body, "multipart/mixed; boundary=b")
    assert isinstance(bad, BatchRequest) and bad.error is not None and bad.method == ""
    assert isinstance(fine, BatchRequest) and fine.error is None and fine.url == "accounts"


def test_get_in_change_set_is_refused() -> None:
    body, ctype = format_batch_request([ChangeSet("cs", [BatchRequest("GET", "accounts")])])
    with pytest.raises(ODataError):
        parse_batch(body, ctype)


def test_requests_round_trip_through_the_writer() -> None:
    original: list[BatchPart] = [ChangeSet("cs_9", [BatchRequest("POST", "accounts", {"content-type": "application/json"},
                                                b'{"a": 1}', "1")]),
                BatchRequest("DELETE", "accounts(1)")]
    body, ctype = format_batch_request(original)
    assert parse_batch(body, ctype) == original


def test_responses_keep_order_and_change_set_grouping() -> None:
    answers: list[BatchResponsePart] = [ChangeSetResponse([BatchResponse(204, {"OData-EntityId": "x(1)"}, b"", "1"),
                                  BatchResponse(201, {"Content-Type": "application/json"}, b'{"id":1}', "2")]),
               BatchResponse(404, {"Content-Type": "application/json"}, b'{"error":{}}')]
    body, ctype = format_batch(answers, "batchresponse_T")
    assert ctype == "multipart/mixed; boundary=batchresponse_T"
    assert b"HTTP/1.1 204 No Content\r\n" in body and b"HTTP/1.1 404 Not Found\r\n" in body
    parsed = parse_batch_response(body, ctype)
    assert isinstance(parsed[0], ChangeSetResponse)
    assert [(r.status, r.content_id, r.body) for r in parsed[0].responses] == \
        [(204, "1", b""), (201, "2", b'{"id":1}')]
    assert isinstance(parsed[1], BatchResponse) and parsed[1].status == 404
    assert parsed[0].responses[0].headers["odata-entityid"] == "x(1)"
