"""Authentication (token endpoint, bearer tokens) and service protection limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from xml.etree import ElementTree

import httpx
import pytest

from dualwrite.ports import free_port
from tests.support.emulators import CLIENT_ID, CLIENT_SECRET, RunningEmulator, start_emulator

pytestmark = pytest.mark.contract


def _token(emu: RunningEmulator, **form: str) -> httpx.Response:
    data = {"grant_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "scope": f"{emu.base_url}/.default", **form}
    return httpx.post(emu.token_url, data=data)


def test_token_endpoint_issues_bearer_tokens(dataverse: RunningEmulator) -> None:
    body = _token(dataverse).json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == body["ext_expires_in"] == 3600
    assert len(body["access_token"]) >= 32


def test_wrong_secret_is_invalid_client(dataverse: RunningEmulator) -> None:
    response = _token(dataverse, client_secret="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"].startswith("AADSTS7000215: Invalid client secret provided")


def test_unknown_grant_type_is_refused(dataverse: RunningEmulator) -> None:
    response = _token(dataverse, grant_type="password")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer not-a-token"},
                                     {"Authorization": "Basic abc"}])
def test_api_requires_a_valid_bearer_token(dataverse: RunningEmulator, headers: dict[str, str]) -> None:
    response = httpx.get(f"{dataverse.api_url}/accounts", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(response.json()["error"]) == {"code", "message"}


def test_admin_needs_no_token_on_loopback(dataverse: RunningEmulator) -> None:
    assert httpx.get(f"{dataverse.base_url}/_admin/health").status_code == 200


def test_the_client_secret_is_not_on_the_emulator_command_line(dataverse: RunningEmulator) -> None:
    assert dataverse.process is not None
    cmdline = Path(f"/proc/{dataverse.process.pid}/cmdline").read_bytes()
    assert b"--client-id" in cmdline and dataverse.client_id.encode() in cmdline
    assert dataverse.client_secret.encode() not in cmdline
    assert _token(dataverse).status_code == 200  # the secret from the environment is the one


def test_the_client_secret_can_come_from_a_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    secret_file.chmod(0o600)
    emu = RunningEmulator("dataverse", free_port(), tmp_path / "dv.db", tmp_path / "dv.log",
                          ["--client-secret-file", str(secret_file)], client_secret="from-a-file",
                          secret_in_env=False)
    emu.start()
    try:
        assert emu.process is not None
        assert b"from-a-file" not in Path(f"/proc/{emu.process.pid}/cmdline").read_bytes()
        assert emu.token()
    finally:
        emu.stop()


def test_request_limit_answers_429_with_retry_after(tmp_path_factory: pytest.TempPathFactory) -> None:
    emu = start_emulator("dataverse", tmp_path_factory.mktemp("limits"), "--requests", "5",
                         "--window", "60")
    try:
        started = time.monotonic()
        with emu.client() as client:
            statuses = [client.get("cdm_companies").status_code for _ in range(6)]
            assert statuses == [200] * 5 + [429]
            refused = client.get("cdm_companies")
            assert refused.status_code == 429
            retry_after = int(refused.headers["Retry-After"])
            assert 1 <= retry_after <= 60 - int(time.monotonic() - started) + 1
            error = refused.json()["error"]
            assert error["code"] == "0x80072322"
            assert error["message"] == ("Number of requests exceeded the limit of 5 over time "
                                        "window of 60 seconds.")
            # The token endpoint and admin routes are not counted or throttled.
            assert emu.token() and httpx.get(f"{emu.base_url}/_admin/health").status_code == 200
    finally:
        emu.stop()


def test_limits_are_per_principal(tmp_path_factory: pytest.TempPathFactory) -> None:
    emu = start_emulator("dataverse", tmp_path_factory.mktemp("limits2"), "--requests", "2",
                         "--window", "60", "--client-id", "other")
    try:
        with emu.client() as client:
            assert [client.get("uoms").status_code for _ in range(3)] == [200, 200, 429]
        emu.client_id = "other"
        with emu.client() as other:
            assert other.get("uoms").status_code == 200
    finally:
        emu.stop()


def test_concurrency_limit_answers_429_immediately(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Injected latency holds the only slot, so whichever parallel request comes second is refused.
    emu = start_emulator("dataverse", tmp_path_factory.mktemp("limits3"), "--concurrent", "1",
                         "--latency-ms", "1500")
    try:
        headers = {"Authorization": f"Bearer {emu.token()}"}
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(httpx.get, f"{emu.api_url}/uoms", headers=headers, timeout=10)
                     for _ in range(2)]
            responses = sorted((c.result() for c in calls), key=lambda r: r.status_code)
        assert [r.status_code for r in responses] == [200, 429]
        assert responses[1].json()["error"]["code"] == "0x80072326"
        assert int(responses[1].headers["Retry-After"]) >= 1
    finally:
        emu.stop()


def test_scope_must_be_a_default_scope(dataverse: RunningEmulator) -> None:
    response = _token(dataverse, scope="https://org.crm.dynamics.com/user_impersonation")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_who_am_i_names_the_calling_application(dv_client: httpx.Client) -> None:
    body = dv_client.get("WhoAmI").json()
    assert {"BusinessUnitId", "UserId", "OrganizationId"} <= set(body)
    assert dv_client.get("WhoAmI").json()["UserId"] == body["UserId"]


def test_metadata_declares_entity_sets_keys_and_change_tracking(dv_client: httpx.Client) -> None:
    response = dv_client.get("$metadata")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/xml"
    root = ElementTree.fromstring(response.content)
    edm = "{http://docs.oasis-open.org/odata/ns/edm}"
    sets = {e.get("Name") for e in root.iter(f"{edm}EntitySet")}
    assert {"msdyn_projects", "msdyn_actuals", "cdm_companies"} <= sets
    project_type = next(e for e in root.iter(f"{edm}EntityType") if e.get("Name") == "msdyn_project")
    aliases = {p.get("String") for p in project_type.iter(f"{edm}PropertyValue") if p.get("Property") == "Alias"}
    assert aliases == {"msdyn_projectnumber", "_msdyn_owningcompany_value"}
    assert {a.get("Name") for a in root.iter(f"{edm}Action")} == {"msdyn_ApproveTimeEntry",
                                                                "msdyn_ConfirmInvoice"}
