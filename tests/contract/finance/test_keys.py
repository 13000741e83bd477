"""Finance emulator: hostile key values land on exactly the row they name, alone and in $batch.

Keys are OData literals (quotes doubled) percent-encoded as UTF-8 inside the key segment, as a
client must send them; a raw ``/`` or ``\\`` is a path separator, never a key character.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote, unquote, urlsplit

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
from tests.support.emulators import RunningEmulator

pytestmark = pytest.mark.contract

HOSTILE = ["O'Brien-1", "50%off", "A#B", "A?x=1", "A/B", "A\\B", "Łódź-1", "€-1", "US%2D001"]
JSON = {"Content-Type": "application/json"}


def key_path(account: str) -> str:
    literal = quote(account.replace("'", "''"), safe="")
    return f"CustomersV3(dataAreaId='usmf',CustomerAccount='{literal}')"


def accounts_named(fo: httpx.Client, name: str) -> list[str]:
    rows = fo.get("/CustomersV3", params={"$filter": "Name eq '" + name.replace("'", "''") + "'"}).json()["value"]
    return [str(r["CustomerAccount"]) for r in rows]


def raw_status(emu: RunningEmulator, method: str, target: str, body: bytes = b"") -> int:
    """Send ``target`` byte for byte (httpx would normalise a raw backslash)."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        conn.request(method, "/data/" + target, body=body or None,
                     headers={"Authorization": f"Bearer {emu.token()}", **JSON})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("account", HOSTILE)
def test_plain_requests_create_read_patch_delete_exactly_the_named_row(
        fo: httpx.Client, account: str) -> None:
    created = fo.post("/CustomersV3", json={"CustomerAccount": account, "Name": "plain"})
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.isascii()
    assert fo.get(location).json()["CustomerAccount"] == account

    got = fo.get("/" + key_path(account))
    assert got.status_code == 200 and got.json()["CustomerAccount"] == account

    marker = f"patched {account}"
    assert fo.patch("/" + key_path(account), json={"Name": marker}).status_code == 204
    assert accounts_named(fo, marker) == [account]

    assert fo.delete("/" + key_path(account)).status_code == 204
    assert fo.get("/" + key_path(account)).status_code == 404


def test_an_encoded_percent_never_reaches_the_decoded_key(fo: httpx.Client) -> None:
    before = fo.get("/" + key_path("US-001")).json()
    assert fo.post("/CustomersV3", json={"CustomerAccount": "US%2D001", "Name": "pct"}).status_code == 201
    assert fo.patch("/" + key_path("US%2D001"), json={"Name": "pct patched"}).status_code == 204
    assert fo.delete("/" + key_path("US%2D001")).status_code == 204
    after = fo.get("/" + key_path("US-001"))
    assert after.status_code == 200 and after.json()["Name"] == before["Name"]


def _send(fo: httpx.Client, parts: list[BatchRequest | ChangeSet],
          **headers: str) -> list[BatchResponse | ChangeSetResponse]:
    body, content_type = format_batch_request(parts)
    resp = fo.post("/$batch", content=body, headers={"Content-Type": content_type, **headers})
    assert resp.status_code == 200, resp.text
    return parse_batch_response(resp.content, resp.headers["Content-Type"])


def _only(parts: list[BatchResponse | ChangeSetResponse]) -> list[BatchResponse]:
    out: list[BatchResponse] = []
    for part in parts:
        out += part.responses if isinstance(part, ChangeSetResponse) else [part]
    return out


def test_batch_parts_create_read_patch_delete_exactly_the_named_rows(
        fo: httpx.Client, emu: RunningEmulator) -> None:
    accounts = [f"B{a}" for a in HOSTILE]
    creates = [BatchRequest("POST", "CustomersV3", JSON,
                            json.dumps({"CustomerAccount": a, "Name": "batch"}).encode(), str(i))
               for i, a in enumerate(accounts)]
    answers = _only(_send(fo, [ChangeSet("changeset_keys", creates)]))
    assert [a.status for a in answers] == [201] * len(accounts), [a.body for a in answers]
    for answer, account in zip(answers, accounts, strict=True):
        location = answer.headers["location"]
        assert location.isascii()
        assert unquote(urlsplit(location).path.rsplit("/", 1)[1]).endswith(
            "CustomerAccount='" + account.replace("'", "''") + "')")

    # Relative, rooted and absolute forms of the same target, all percent-decoded alike.
    forms = ["", "/data/", f"{emu.api_url}/"]
    reads = [BatchRequest("GET", forms[i % 3] + key_path(a)) for i, a in enumerate(accounts)]
    got = _only(_send(fo, list(reads)))
    assert [g.status for g in got] == [200] * len(accounts), [g.body for g in got]
    assert [json.loads(g.body)["CustomerAccount"] for g in got] == accounts

    patches = [BatchRequest("PATCH", key_path(a), JSON,
                            json.dumps({"Name": f"bp {i}"}).encode(), str(i))
               for i, a in enumerate(accounts)]
    assert [p.status for p in _only(_send(fo, [ChangeSet("changeset_p", patches)]))] == \
        [204] * len(accounts)
    for i, account in enumerate(accounts):
        assert accounts_named(fo, f"bp {i}") == [account]

    deletes = [BatchRequest("DELETE", key_path(a), {}, b"", str(i)) for i, a in enumerate(accounts)]
    assert [d.status for d in _only(_send(fo, [ChangeSet("changeset_d", deletes)]))] == \
        [204] * len(accounts)
    for account in accounts:
        assert fo.get("/" + key_path(account)).status_code == 404


@pytest.mark.parametrize("raw", ["A/B", "A\\B"])
def test_a_raw_separator_inside_the_key_is_a_path_not_a_key(
        fo: httpx.Client, emu: RunningEmulator, raw: str) -> None:
    account = f"R{raw}"
    assert fo.post("/CustomersV3", json={"CustomerAccount": account, "Name": f"raw {raw}"}).status_code == 201
    target = f"CustomersV3(dataAreaId='usmf',CustomerAccount='{account}')"
    assert raw_status(emu, "GET", target) in (400, 404)
    assert raw_status(emu, "PATCH", target, b'{"Name": "hit"}') in (400, 404)
    assert raw_status(emu, "DELETE", target) in (400, 404)
    statuses = [a.status for a in _only(_send(fo, [BatchRequest("GET", target)]))]
    assert statuses and statuses[0] in (400, 404)
    assert accounts_named(fo, f"raw {raw}") == [account]


def test_raw_fragment_and_query_marks_in_a_batch_key_never_address_a_row(fo: httpx.Client) -> None:
    assert fo.post("/CustomersV3", json={"CustomerAccount": "H", "Name": "decoy"}).status_code == 201
    parts: list[BatchRequest | ChangeSet] = [
        BatchRequest("PATCH", f"CustomersV3(dataAreaId='usmf',CustomerAccount='{k}')", JSON,
                     b'{"Name": "hit"}') for k in ("H#B", "H?x=1")]
    statuses = [a.status for a in _only(_send(fo, parts, Prefer="odata.continue-on-error"))]
    assert len(statuses) == 2 and all(s in (400, 404) for s in statuses)
    assert accounts_named(fo, "hit") == []


def _raw_batch(fo: httpx.Client, parts: list[bytes]) -> list[BatchResponse]:
    body = b"".join(b"--batch_X\r\n" + p + b"\r\n" for p in parts) + b"--batch_X--\r\n"
    resp = fo.post("/$batch", content=body, headers={
        "Content-Type": "multipart/mixed; boundary=batch_X", "Prefer": "odata.continue-on-error"})
    assert resp.status_code == 200, resp.text
    return _only(parse_batch_response(resp.content, resp.headers["Content-Type"]))


def test_malformed_part_headers_answer_400_for_that_part_only(fo: httpx.Client) -> None:
    mime = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    injected = (mime + b"PATCH CustomersV3(dataAreaId='usmf',CustomerAccount='US-001\r\n"
                b"MSCRM.CallerID: 00000000-0000-0000-0000-000000000001') HTTP/1.1\r\n"
                b"Content-Type: application/json\r\n\r\n{\"Name\": \"hit\"}")
    bare_cr = (mime + b"GET CustomersV3?$top=1 HTTP/1.1\r\nX-Evil: a\rInjected: b\r\n\r\n")
    no_colon = mime + b"GET CustomersV3?$top=1 HTTP/1.1\r\nthis is not a header\r\n\r\n"
    good = mime + b"GET CustomersV3?$top=1 HTTP/1.1\r\n\r\n"
    answers = _raw_batch(fo, [injected, bare_cr, no_colon, good])
    assert [a.status for a in answers] == [400, 400, 400, 200], [a.body for a in answers]
    assert accounts_named(fo, "hit") == []


def test_hostile_key_numbers_and_bodies_are_400_not_500(fo: httpx.Client) -> None:
    huge = "CustomersV3(dataAreaId='usmf',CustomerAccount=99999999999999999999999)"
    assert fo.get("/" + huge).status_code == 400
    assert fo.patch("/" + huge, json={"Name": "x"}).status_code == 400
    deep = fo.post("/CustomersV3", content=b"[" * 5000 + b"]" * 5000, headers=JSON)
    assert deep.status_code == 400
