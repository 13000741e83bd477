"""Alternate key values in URLs: percent-decoded once, alike in plain requests and $batch parts.

Dataverse documents that GET and PATCH by an alternate key do not work when the key value holds
one of ``/ # < > * % & : \\ ? +`` (even percent-encoded): such a key is refused and touches no
row; the row is still reachable by its GUID. Other values, non-ASCII included, work encoded.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote

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
from tests.contract.dataverse.helpers import USMF, entity_id
from tests.support.emulators import RunningEmulator

pytestmark = pytest.mark.contract

SUPPORTED = ["O'Brien-1", "Łódź-1", "€-1", "US-001 x"]
UNSUPPORTED = ["50%off", "A#B", "A?x=1", "A/B", "A\\B", "US%2D001"]
JSON = {"Content-Type": "application/json"}


def key_path(number: str) -> str:
    literal = quote(number.replace("'", "''"), safe="")
    return f"msdyn_projects(msdyn_projectnumber='{literal}',_msdyn_owningcompany_value={USMF})"


def body(subject: str) -> dict[str, object]:
    return {"msdyn_subject": subject, "transactioncurrencyid": "USD"}


def numbers_with(client: httpx.Client, subject: str) -> list[str]:
    literal = subject.replace("'", "''")
    rows = client.get("msdyn_projects", params={"$filter": f"msdyn_subject eq '{literal}'"})
    return [str(r["msdyn_projectnumber"]) for r in rows.json()["value"]]


@pytest.mark.parametrize("number", SUPPORTED)
def test_plain_alternate_key_requests_land_on_exactly_the_named_row(
        dv_client: httpx.Client, number: str) -> None:
    created = dv_client.patch(key_path(number), json=body(f"plain {number}"))  # upsert creates
    assert created.status_code == 204, created.text
    assert created.headers["OData-EntityId"].isascii()
    got = dv_client.get(key_path(number))
    assert got.status_code == 200 and got.json()["msdyn_projectnumber"] == number
    assert dv_client.patch(key_path(number), json=body(f"patched {number}")).status_code == 204
    assert numbers_with(dv_client, f"patched {number}") == [number]
    assert dv_client.delete(key_path(number)).status_code == 204
    assert dv_client.get(key_path(number)).status_code == 404


@pytest.mark.parametrize("number", UNSUPPORTED)
def test_documented_unsupported_characters_are_refused_and_touch_no_row(
        dv_client: httpx.Client, number: str) -> None:
    refused = dv_client.patch(key_path(number), json=body(f"refused {number}"))
    assert refused.status_code == 400, refused.text
    assert "alternate key" in refused.json()["error"]["message"]
    assert numbers_with(dv_client, f"refused {number}") == []
    # The row can still exist (created by POST) and be reached by its GUID.
    guid = entity_id(dv_client.post("msdyn_projects", json={
        "msdyn_projectnumber": number, "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})",
        **body(f"posted {number}")}))
    assert dv_client.get(key_path(number)).status_code == 400
    assert dv_client.patch(f"msdyn_projects({guid})", json=body(f"by id {number}")).status_code == 204
    assert numbers_with(dv_client, f"by id {number}") == [number]
    assert dv_client.delete(f"msdyn_projects({guid})").status_code == 204


def test_an_encoded_percent_key_never_touches_the_decoded_key(dv_client: httpx.Client) -> None:
    assert dv_client.patch(key_path("US-002"), json=body("decoy US-002")).status_code == 204
    assert dv_client.patch(key_path("US%2D002"), json=body("hit")).status_code == 400
    assert numbers_with(dv_client, "decoy US-002") == ["US-002"]
    assert numbers_with(dv_client, "hit") == []


def _send(client: httpx.Client, parts: list[BatchRequest | ChangeSet],
          prefer: str | None = None) -> list[BatchResponse]:
    payload, content_type = format_batch_request(parts)
    headers = {"Content-Type": content_type, **({"Prefer": prefer} if prefer else {})}
    response = client.post("$batch", content=payload, headers=headers)
    assert response.status_code == 200, response.text
    out: list[BatchResponse] = []
    for part in parse_batch_response(response.content, response.headers["Content-Type"]):
        out += part.responses if isinstance(part, ChangeSetResponse) else [part]
    return out


def test_batch_parts_decode_keys_exactly_like_plain_requests(
        dv_client: httpx.Client, dataverse: RunningEmulator) -> None:
    numbers = [f"B{n}" for n in SUPPORTED]
    upserts = [BatchRequest("PATCH", key_path(n), JSON, json.dumps(body(f"bu {n}")).encode(), str(i))
               for i, n in enumerate(numbers)]
    assert [a.status for a in _send(dv_client, [ChangeSet("changeset_u", upserts)])] == \
        [204] * len(numbers)
    forms = ["", "/api/data/v9.2/", f"{dataverse.api_url}/"]
    got = _send(dv_client, [BatchRequest("GET", forms[i % 3] + key_path(n))
                            for i, n in enumerate(numbers)])
    assert [json.loads(g.body)["msdyn_projectnumber"] for g in got] == numbers
    patches = [BatchRequest("PATCH", key_path(n), JSON, json.dumps(body(f"bp {n}")).encode(), str(i))
               for i, n in enumerate(numbers)]
    assert [a.status for a in _send(dv_client, [ChangeSet("changeset_p", patches)])] == \
        [204] * len(numbers)
    for number in numbers:
        assert numbers_with(dv_client, f"bp {number}") == [number]
    deletes = [BatchRequest("DELETE", key_path(n), {}, b"", str(i)) for i, n in enumerate(numbers)]
    assert [a.status for a in _send(dv_client, [ChangeSet("changeset_d", deletes)])] == \
        [204] * len(numbers)
    assert all(dv_client.get(key_path(n)).status_code == 404 for n in numbers)

    refused = [BatchRequest("PATCH", key_path(f"B{n}"), JSON, json.dumps(body("bhit")).encode())
               for n in UNSUPPORTED]
    assert [a.status for a in _send(dv_client, list(refused), "odata.continue-on-error")] == \
        [400] * len(UNSUPPORTED)
    assert numbers_with(dv_client, "bhit") == []


def raw_status(emu: RunningEmulator, method: str, target: str, payload: bytes = b"") -> int:
    """Send ``target`` byte for byte (httpx would normalise a raw backslash)."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        conn.request(method, "/api/data/v9.2/" + target, body=payload or None,
                     headers={"Authorization": f"Bearer {emu.token()}", **JSON})
        return conn.getresponse().status
    finally:
        conn.close()


@pytest.mark.parametrize("raw", ["A/B", "A\\B"])
def test_a_raw_separator_inside_the_key_does_not_resolve(
        dv_client: httpx.Client, dataverse: RunningEmulator, raw: str) -> None:
    target = f"msdyn_projects(msdyn_projectnumber='R{raw}',_msdyn_owningcompany_value={USMF})"
    assert raw_status(dataverse, "PATCH", target, json.dumps(body("raw hit")).encode()) in (400, 404)
    statuses = [a.status for a in _send(dv_client, [BatchRequest("PATCH", target, JSON,
                                                                 json.dumps(body("raw hit")).encode())])]
    assert statuses[0] in (400, 404)
    assert numbers_with(dv_client, "raw hit") == []


def test_malformed_part_headers_answer_400_for_that_part_only(dv_client: httpx.Client) -> None:
    mime = b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    injected = (mime + b"PATCH msdyn_projects(msdyn_projectnumber='X\r\n"
                b"MSCRM.CallerID: 00000000-0000-0000-0000-000000000001') HTTP/1.1\r\n"
                b"Content-Type: application/json\r\n\r\n{\"msdyn_subject\": \"hit\"}")
    no_colon = mime + b"GET uoms HTTP/1.1\r\nthis is not a header\r\n\r\n"
    good = mime + b"GET uoms HTTP/1.1\r\n\r\n"
    payload = b"".join(b"--batch_X\r\n" + p + b"\r\n" for p in (injected, no_colon, good))
    response = dv_client.post("$batch", content=payload + b"--batch_X--\r\n", headers={
        "Content-Type": "multipart/mixed; boundary=batch_X", "Prefer": "odata.continue-on-error"})
    assert response.status_code == 200, response.text
    answers = parse_batch_response(response.content, response.headers["Content-Type"])
    assert [a.status for a in answers if isinstance(a, BatchResponse)] == [400, 400, 200]
    assert numbers_with(dv_client, "hit") == []


def test_hostile_key_numbers_and_bodies_are_400_not_500(dv_client: httpx.Client) -> None:
    huge = f"msdyn_projects(msdyn_projectnumber=99999999999999999999999,_msdyn_owningcompany_value={USMF})"
    assert dv_client.get(huge).status_code == 400
    assert dv_client.patch(huge, json=body("x")).status_code == 400
    deep = dv_client.post("msdyn_projects", content=b"[" * 5000 + b"]" * 5000, headers=JSON)
    assert deep.status_code == 400
