"""`dualwrite reconcile` against both emulators over real HTTP (no Kafka): rows written directly to
both systems so that they agree are in sync (exit 0); a field changed, a row deleted and a row
created behind the pipeline's back are each reported once, under their key (exit 1); every table
is read page by page; an API that cannot be read is exit 2 with one line.

The registry is this module's ``MAPS`` (legal entities and customers), named through
``DUALWRITE_PROCESSOR__MAPS`` as a deployment would: the test does not depend on which maps the
default registry holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streams.maps import CUSTOMERS, LEGAL_ENTITIES
from tests.support.emulators import RunningEmulator, start_emulator

pytestmark = pytest.mark.contract

MAPS = (LEGAL_ENTITIES, CUSTOMERS)
ACCOUNTS = [f"US-{n:03d}" for n in range(1, 6)]  # five rows, read two per page


def _env(dv: RunningEmulator, fo: RunningEmulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALWRITE_")}
    env["DUALWRITE_PROCESSOR__MAPS"] = f"{__name__}:MAPS"
    for name, emu in (("DATAVERSE", dv), ("FINANCE", fo)):
        env |= {f"DUALWRITE_{name}__URL": emu.base_url, f"DUALWRITE_{name}__TOKEN_URL": emu.token_url,
                f"DUALWRITE_{name}__CLIENT_ID": emu.client_id,
                f"DUALWRITE_{name}__CLIENT_SECRET": emu.client_secret}
    return env


def reconcile(env: dict[str, str], report: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    json_args = ["--json", str(report)] if report else []
    return subprocess.run([sys.executable, "-m", "dualwrite", "reconcile", *json_args, *args],
                          env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningEmulator, RunningEmulator, str]]:
    """Both emulators, unseeded, holding one legal entity and five customers that agree."""
    workdir = Path(tmp_path_factory.mktemp("reconcile"))
    dv = start_emulator("dataverse", workdir)
    fo = start_emulator("finance", workdir)
    try:
        with fo.client() as finance, dv.client() as dataverse:
            finance.post("LegalEntities", json={"dataAreaId": "usmf", "Name": "Contoso USA",
                                                "AccountingCurrency": "USD"}).raise_for_status()
            company = dataverse.post("cdm_companies", headers={"Prefer": "return=representation"}, json={
                "cdm_companycode": "usmf", "cdm_name": "Contoso USA", "accountingcurrency": "USD"})
            company.raise_for_status()
            company_id = str(company.json()["cdm_companyid"])
            for number in ACCOUNTS:
                finance.post("CustomersV3", json={
                    "dataAreaId": "usmf", "CustomerAccount": number, "Name": f"Customer {number}",
                    "CustomerGroupId": "30", "SalesCurrencyCode": "USD"}).raise_for_status()
                dataverse.post("accounts", json={
                    "accountnumber": number, "name": f"Customer {number}", "msdyn_customergroupid": "30",
                    "transactioncurrencyid": "USD",
                    "msdyn_company@odata.bind": f"/cdm_companies({company_id})"}).raise_for_status()
        yield dv, fo, company_id
    finally:
        dv.stop()
        fo.stop()


def account_key(company_id: str, number: str) -> str:
    return f"accounts(_msdyn_company_value='{company_id}',accountnumber='{number}')"


def get_requests(emu: RunningEmulator, target: str) -> int:
    with emu.admin() as admin:
        return int(admin.get("/requests").json()["by_target"].get(f"GET {target}", 0))


def test_agreeing_systems_are_in_sync_read_page_by_page(
        systems: tuple[RunningEmulator, RunningEmulator, str], tmp_path: Path) -> None:
    dv, fo, _company = systems
    for emu in (dv, fo):
        with emu.admin() as admin:
            admin.delete("/requests").raise_for_status()
    report = tmp_path / "report.json"
    done = reconcile(_env(dv, fo), report, "--page-size", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    body: dict[str, Any] = json.loads(report.read_text())
    assert body["in_sync"] is True
    assert {m["map"]: m["counts"]["in_sync"] for m in body["maps"]} == {"legal_entities": 1, "customers": 5}
    assert "customers" in done.stdout and "in sync" in done.stderr
    # Five rows at two per page: three pages on each side, each table read once.
    assert get_requests(fo, "CustomersV3") == 3
    assert get_requests(dv, "accounts") == 3


def test_edits_behind_the_pipelines_back_are_each_reported_once_under_their_key(
        systems: tuple[RunningEmulator, RunningEmulator, str], tmp_path: Path) -> None:
    dv, fo, company = systems
    with dv.client() as dataverse:
        def account_id(number: str) -> str:
            rows = dataverse.get("accounts", params={"$filter": f"accountnumber eq '{number}'"}).json()["value"]
            return str(rows[0]["accountid"])

        dataverse.patch(f"accounts({account_id('US-002')})", headers={"If-Match": "*"},
                        json={"name": "Renamed in Dataverse"}).raise_for_status()
        dataverse.delete(f"accounts({account_id('US-003')})").raise_for_status()
        dataverse.post("accounts", json={"accountnumber": "US-099", "name": "Only in Dataverse",
                                         "msdyn_company@odata.bind": f"/cdm_companies({company})"}
                       ).raise_for_status()
    report = tmp_path / "report.json"
    done = reconcile(_env(dv, fo), report, "--page-size", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "drift in 1 of 2 maps: customers" in done.stderr
    maps = {m["map"]: m for m in json.loads(report.read_text())["maps"]}
    assert maps["legal_entities"]["in_sync"] is True
    customers = maps["customers"]
    assert customers["different"] == [{
        "key": account_key(company, "US-002"), "source_id": "usmf|US-002",
        "fields": {"name": {"expected": "Customer US-002", "actual": "Renamed in Dataverse"}}}]
    assert customers["missing"] == [{"key": account_key(company, "US-003"), "source_id": "usmf|US-003"}]
    assert [e["key"] for e in customers["extra"]] == [account_key(company, "US-099")]
    assert customers["unresolved"] == []
    assert customers["counts"] == {"in_sync": 3, "missing": 1, "different": 1, "extra": 1,
                                   "unresolved": 0, "filtered": 0}
    # --map restricts the run (and its exit code) to the maps named.
    assert reconcile(_env(dv, fo), None, "--map", "legal_entities").returncode == 0


def test_an_api_that_cannot_be_read_is_exit_2_with_one_line(
        systems: tuple[RunningEmulator, RunningEmulator, str]) -> None:
    dv, fo, _company = systems
    refused = _env(dv, fo) | {"DUALWRITE_FINANCE__CLIENT_SECRET": "not-the-secret-4711"}
    done = reconcile(refused, None)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "finance token endpoint refused client" in done.stderr
    assert "DUALWRITE_FINANCE__CLIENT_SECRET" in done.stderr and "Traceback" not in done.stderr
    assert "not-the-secret-4711" not in done.stdout + done.stderr
    unreachable = _env(dv, fo) | {"DUALWRITE_DATAVERSE__URL": "http://127.0.0.1:9"}
    done = reconcile(unreachable, None)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "dataverse API at http://127.0.0.1:9/api/data/v9.2 cannot be reached" in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2  # one message (rich may wrap it once)
    unknown = reconcile(_env(dv, fo), None, "--map", "no_such_map")
    assert unknown.returncode == 2 and "no_such_map" in unknown.stderr
