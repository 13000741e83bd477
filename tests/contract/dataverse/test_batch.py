"""``$batch``: change sets (atomic), Content-ID references, continue-on-error, limits."""

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
from tests.contract.dataverse.helpers import USMF, project, unique

pytestmark = pytest.mark.contract
JSON = {"content-type": "application/json"}


def _post(client: httpx.Client, parts: list[BatchRequest | ChangeSet],
          prefer: str | None = None) -> list[BatchResponse | ChangeSetResponse]:
    body, content_type = format_batch_request(parts)
    headers = {"Content-Type": content_type, **({"Prefer": prefer} if prefer else {})}
    response = client.post("$batch", content=body, headers=headers)
    assert response.status_code == 200, response.text
    return parse_batch_response(response.content, response.headers["Content-Type"])


def _project_body(number: str) -> bytes:
    return json.dumps({"msdyn_projectnumber": number, "msdyn_subject": "Batch",
                       "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})"}).encode()


def _exists(client: httpx.Client, number: str) -> bool:
    found = client.get("msdyn_projects", params={"$filter": f"msdyn_projectnumber eq '{number}'"})
    return bool(found.json()["value"])


def test_handwritten_change_set_with_content_id_reference(dv_client: httpx.Client) -> None:
    number = unique("B")
    base = str(dv_client.base_url).rstrip("/")
    body = (
        "--batch_AAA\r\n"
        "Content-Type: multipart/mixed; boundary=changeset_BBB\r\n\r\n"
        "--changeset_BBB\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        f"POST {base}/msdyn_projects HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n"
        + _project_body(number).decode() + "\r\n"
        "--changeset_BBB\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
        "POST /api/data/v9.2/msdyn_projecttasks HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"msdyn_project@odata.bind": "$1", "msdyn_wbsid": "1", "msdyn_isleaf": true}\r\n'
        "--changeset_BBB\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 3\r\n\r\n"
        "PATCH $1 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"msdyn_subject": "Patched through $1"}\r\n'
        "--changeset_BBB--\r\n"
        "--batch_AAA\r\n"
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET msdyn_projects?$filter=msdyn_projectnumber%20eq%20'{number}' HTTP/1.1\r\n"
        "Accept: application/json\r\n\r\n"
        "--batch_AAA--\r\n")
    response = dv_client.post("$batch", content=body.encode(),
                              headers={"Content-Type": "multipart/mixed; boundary=batch_AAA"})
    assert response.status_code == 200
    parts = parse_batch_response(response.content, response.headers["Content-Type"])
    change_set, query = parts
    assert isinstance(change_set, ChangeSetResponse) and isinstance(query, BatchResponse)
    assert [r.status for r in change_set.responses] == [204, 204, 204]
    assert [r.content_id for r in change_set.responses] == ["1", "2", "3"]
    rows = json.loads(query.body)["value"]
    assert rows[0]["msdyn_subject"] == "Patched through $1"
    tasks = dv_client.get("msdyn_projecttasks", params={
        "$filter": f"_msdyn_project_value eq {rows[0]['msdyn_projectid']}"}).json()["value"]
    assert len(tasks) == 1


def test_change_set_failure_rolls_back_everything(dv_client: httpx.Client) -> None:
    first, second = unique("B"), unique("B")
    parts = _post(dv_client, [ChangeSet("cs1", [
        BatchRequest("POST", "msdyn_projects", JSON, _project_body(first), "1"),
        BatchRequest("POST", "msdyn_projects", JSON, _project_body(second), "2"),
        BatchRequest("POST", "msdyn_projecttasks", JSON, b'{"msdyn_wbsid": "1", "bogus": 1}', "3"),
    ])])
    assert len(parts) == 1 and isinstance(parts[0], BatchResponse)
    assert parts[0].status == 400 and parts[0].content_id == "3"
    assert "bogus" in json.loads(parts[0].body)["error"]["message"]
    assert not _exists(dv_client, first) and not _exists(dv_client, second)


def test_processing_stops_at_first_failure_outside_change_sets(dv_client: httpx.Client) -> None:
    after = unique("B")
    parts = _post(dv_client, [
        BatchRequest("GET", "msdyn_unicorns"),
        BatchRequest("POST", "msdyn_projects", JSON, _project_body(after)),
    ])
    assert [p.status for p in parts if isinstance(p, BatchResponse)] == [404]
    assert not _exists(dv_client, after)


def test_continue_on_error_runs_the_rest(dv_client: httpx.Client) -> None:
    after = unique("B")
    parts = _post(dv_client, [
        BatchRequest("GET", "msdyn_unicorns"),
        ChangeSet("cs", [BatchRequest("POST", "msdyn_projects", JSON, b'{"nope": 1}')]),
        BatchRequest("POST", "msdyn_projects", JSON, _project_body(after)),
    ], prefer="odata.continue-on-error")
    assert [p.status for p in parts if isinstance(p, BatchResponse)] == [404, 400, 204]
    assert _exists(dv_client, after)


def test_each_request_outside_change_sets_commits_alone(dv_client: httpx.Client) -> None:
    before = unique("B")
    _post(dv_client, [BatchRequest("POST", "msdyn_projects", JSON, _project_body(before)),
                      BatchRequest("DELETE", "msdyn_projects(00000000-0000-0000-0000-000000000001)")])
    assert _exists(dv_client, before)


def test_more_than_1000_requests_are_refused(dv_client: httpx.Client) -> None:
    numbers = [unique("B") for _ in range(1001)]
    body, content_type = format_batch_request(
        [BatchRequest("POST", "msdyn_projects", JSON, _project_body(n)) for n in numbers])
    response = dv_client.post("$batch", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert "1000" in response.json()["error"]["message"]
    assert not _exists(dv_client, numbers[0])


def test_exactly_1000_requests_are_accepted(dv_client: httpx.Client) -> None:
    pid = project(dv_client)
    parts = _post(dv_client, [BatchRequest("GET", f"msdyn_projects({pid})?$select=msdyn_subject")
                              for _ in range(1000)])
    assert len(parts) == 1000 and all(isinstance(p, BatchResponse) and p.status == 200 for p in parts)


def test_get_inside_change_set_and_malformed_body_are_400(dv_client: httpx.Client) -> None:
    body, content_type = format_batch_request([ChangeSet("cs", [BatchRequest("GET", "accounts")])])
    response = dv_client.post("$batch", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    garbage = dv_client.post("$batch", content=b"hello", headers={"Content-Type": "multipart/mixed; boundary=x"})
    assert garbage.status_code == 400 and "error" in garbage.json()
