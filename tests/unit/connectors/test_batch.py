from __future__ import annotations

import orjson
import pytest

from connectors.common.batch import (
    BatchOp,
    BatchResult,
    build_batch,
    match_responses,
    parse_batch_response,
)

pytestmark = pytest.mark.unit

ROOT = "https://org.example/api/data/v9.2"


def test_batch_body_has_one_change_set_per_group_with_content_ids() -> None:
    groups = [[BatchOp("PATCH", f"{ROOT}/accounts(accountnumber='A-1')", {"name": "A"}, (), "1"),
               BatchOp("DELETE", f"{ROOT}/accounts(accountnumber='A-2')", None, (), "2")],
              [BatchOp("PATCH", f"{ROOT}/accounts(accountnumber='A-3')", {"name": "C"}, (), "3")]]
    body, content_type = build_batch(groups, boundary="batch_x")
    assert content_type == "multipart/mixed; boundary=batch_x"
    text = body.decode()
    assert text.startswith("--batch_x\r\nContent-Type: multipart/mixed; boundary=changeset_")
    assert text.endswith("--batch_x--\r\n")
    assert text.count("Content-Type: application/http") == 3
    assert [line for line in text.split("\r\n") if line.startswith("Content-ID")] == [
        "Content-ID: 1", "Content-ID: 2", "Content-ID: 3"]
    assert f"PATCH {ROOT}/accounts(accountnumber='A-1') HTTP/1.1" in text
    assert 'Content-Length: 12\r\n\r\n{"name":"A"}' in text
    assert f"DELETE {ROOT}/accounts(accountnumber='A-2') HTTP/1.1\r\n\r\n" in text
    assert text.count("--changeset_") == 3 + 2  # 3 part openers + 2 closing delimiters


def test_batch_body_reads_back_with_the_emulators_parser() -> None:
    """Cross-check against an independent multipart reader (the emulators' own)."""
    from emulators.common.batch import ChangeSet, parse_batch

    groups = [[BatchOp("PATCH", f"{ROOT}/a(1)", {"x": 1}, (("Prefer", "return=representation"),), "1"),
               BatchOp("POST", f"{ROOT}/a", {"y": "two"}, (), "2")]]
    body, content_type = build_batch(groups)
    (part,) = parse_batch(body, content_type)
    assert isinstance(part, ChangeSet)
    first, second = part.requests
    assert (first.method, first.url, first.content_id, orjson.loads(first.body)) == ("PATCH", f"{ROOT}/a(1)", "1", {"x": 1})
    assert first.headers["prefer"] == "return=representation"
    assert (second.method, orjson.loads(second.body)) == ("POST", {"y": "two"})


RESPONSE = (
    b"--batchresponse_1\r\n"
    b"Content-Type: multipart/mixed; boundary=changesetresponse_a\r\n\r\n"
    b"--changesetresponse_a\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    b"Content-ID: 1\r\n\r\nHTTP/1.1 204 No Content\r\n"
    b"OData-EntityId: https://org/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)\r\n\r\n\r\n"
    b"--changesetresponse_a\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
    b"Content-ID: 2\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\r\n"
    b"--changesetresponse_a--\r\n"
    b"--batchresponse_1\r\n"
    b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 4\r\n\r\n"
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
    b'{"error":{"code":"0x1","message":"bad"}}\r\n'
    b"--batchresponse_1--\r\n"
)


def test_parse_response_change_sets_and_failures() -> None:
    parts = parse_batch_response(RESPONSE, "multipart/mixed; boundary=batchresponse_1")
    assert [[r.status for r in p] for p in parts] == [[204, 204], [400]]
    assert parts[0][0].headers["odata-entityid"].endswith("0001)")
    assert parts[1][0].content_id == "4"
    assert orjson.loads(parts[1][0].body)["error"]["message"] == "bad"


def test_a_delimiter_counts_only_at_a_line_start_and_a_thousand_parts_come_back_in_order() -> None:
    """A body that mentions the boundary inside a line, or a boundary that merely begins with
    it, is no delimiter; a change set of 1,000 answers (Dataverse's most) reads whole."""
    inner = b"".join(
        b"--cs\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 200 OK\r\nContent-ID: %d\r\n\r\n"
        b'{"note":"x --cs y"}\r\n--csx\r\n' % n for n in range(1, 1001))
    body = (b"--batchresponse_1\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n" + inner
            + b"--cs--\r\n--batchresponse_1--\r\n")
    (changeset,) = parse_batch_response(body, "multipart/mixed; boundary=batchresponse_1")
    assert [r.content_id for r in changeset] == [str(n) for n in range(1, 1001)]
    assert changeset[0].body == b'{"note":"x --cs y"}\r\n--csx'


def test_failed_change_set_answers_for_every_op_and_unreached_groups_are_none() -> None:
    groups = [[BatchOp("PATCH", "a", {}, (), "1"), BatchOp("PATCH", "b", {}, (), "2")],
              [BatchOp("PATCH", "c", {}, (), "3"), BatchOp("PATCH", "d", {}, (), "4")],
              [BatchOp("PATCH", "e", {}, (), "5")]]
    ok = [BatchResult(204, content_id="2"), BatchResult(204, content_id="1")]
    failure = BatchResult(400, content_id="4")
    matched = match_responses(groups, [ok, [failure]])
    assert matched[0] is not None and [r.content_id for r in matched[0]] == ["1", "2"]  # by Content-ID
    assert matched[1] == [failure, failure]
    assert matched[2] is None


def test_part_head_is_ascii_and_body_utf8_for_non_latin1_keys() -> None:
    from connectors.finance.client import entity_key
    url = f"{ROOT}/{entity_key('CustomersV3', {'dataAreaId': 'usmf', 'CustomerAccount': 'Łódź-1'})}"
    body, _ = build_batch([[BatchOp("PATCH", url, {"Name": "Zażółć €"}, (), "1")]], boundary="b")
    head = body.partition(b"\r\n\r\n{")[0]
    assert head.isascii() and "CustomerAccount='%C5%81%C3%B3d%C5%BA-1'" in head.decode()
    assert "Zażółć €".encode() in body  # the JSON body stays UTF-8


@pytest.mark.parametrize("url", [f"{ROOT}/accounts(accountnumber='A\r\nMSCRM.CallerID: evil')",
                                 f"{ROOT}/accounts(accountnumber='Łódź')"])
def test_a_part_line_that_is_not_printable_ascii_is_refused(url: str) -> None:
    from connectors.common.batch import UnsafePart
    with pytest.raises(UnsafePart):
        build_batch([[BatchOp("DELETE", url, None, (), "1")]])
    with pytest.raises(UnsafePart):
        build_batch([[BatchOp("DELETE", f"{ROOT}/accounts(1)", None, (("If-Match", "*\r\nX: y"),), "1")]])
