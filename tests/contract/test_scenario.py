"""`dualwrite scenario` against both emulators over real HTTP (no Kafka, no pipeline).

Both emulators start with the demo tenant (``--seed``): Dataverse holds the companies and
customer accounts project managers make contracts for. A small run in each order exits 0 and
leaves rows of every kind in the system that people create them in, counted through the APIs,
with the late binds of the adversarial order in place, time approved into actuals and Finance's
jobs run at the end. Finance's expense reports and vendor invoices are posted on the scenario's
projects: their project lines are in Finance's export entities, the lines of no project are not,
and the adversarial order posts an invoice before its unit and released product exist. No
pipeline runs, so the test plays its one part Finance's postings need: the scenario's projects
are put in Finance first (`_projects_in_finance`), or the scenario would wait for them. A refused
secret or an API that is not there is exit 2 with one line, and no secret is printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dualwrite.ports import free_port
from tests.support.emulators import RunningEmulator, start_emulator

pytestmark = pytest.mark.contract

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def systems(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningEmulator, RunningEmulator]]:
    workdir = Path(tmp_path_factory.mktemp("scenario"))
    dv = start_emulator("dataverse", workdir, "--seed")
    fo = start_emulator("finance", workdir, "--seed")
    try:
        yield dv, fo
    finally:
        dv.stop()
        fo.stop()


def _env(dv: RunningEmulator, fo: RunningEmulator, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUALWRITE_")}
    for name, emu in (("DATAVERSE", dv), ("FINANCE", fo)):
        env |= {f"DUALWRITE_{name}__URL": emu.base_url, f"DUALWRITE_{name}__TOKEN_URL": emu.token_url,
                f"DUALWRITE_{name}__CLIENT_ID": emu.client_id,
                f"DUALWRITE_{name}__CLIENT_SECRET": emu.client_secret}
    return env | overrides


def scenario(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dualwrite", "scenario", *args], env=env,
                          capture_output=True, text=True, timeout=180, cwd=ROOT)


def _rows(client: httpx.Client, table: str, **params: str) -> list[dict[str, Any]]:
    resp = client.get(table, params=params)
    resp.raise_for_status()
    return list(resp.json()["value"])


def _projects_in_finance(fo: RunningEmulator, seed: int, contracts: int = 2) -> None:
    """What the pipeline would bring: the projects a small run of ``seed`` creates in Dataverse,
    in Finance (in both legal entities: the plan picks the company)."""
    with fo.client() as finance:
        for company in ("usmf", "demf"):
            for n in range(1, contracts + 1):
                resp = finance.post("ProjectsV2", json={"dataAreaId": company, "ProjectId": f"S{seed}-P{n:04d}",
                                                        "ProjectName": f"Implementation S{seed}-P{n:04d}"})
                assert resp.status_code == 201, resp.text


def _version(row: dict[str, Any]) -> int:
    """A Finance row's last change version (global across entities): ``W/"<RecVersion>"``."""
    return int(str(row["@odata.etag"]).removeprefix('W/"').rstrip('"'))


@pytest.mark.parametrize(("order", "seed"), [("natural", 11), ("adversarial", 12)])
def test_a_small_run_writes_every_kind_into_its_system(
        systems: tuple[RunningEmulator, RunningEmulator], order: str, seed: int) -> None:
    dv, fo = systems
    _projects_in_finance(fo, seed)
    result = scenario(_env(dv, fo), "--seed", str(seed), "--order", order, "--seconds", "20")
    assert result.returncode == 0, result.stderr
    assert f"scenario seed {seed} ({order}, small)" in result.stdout
    assert "time entry 1 created 1 approved" in result.stdout
    assert "invoice 1 created 1 confirmed" in result.stdout
    assert "expense line 3 created 3 updated, expense report 1 posted" in result.stdout
    assert "vendor invoice 1 created 1 posted" in result.stdout
    # Finance's jobs ran at the end; no pipeline staged the actuals, so there was nothing to post.
    assert "finance jobs: 1 rounds, 0 actuals imported, 0 invalid, 0 journals posted" in result.stdout
    p = f"S{seed}"
    with fo.client() as finance, dv.client() as dataverse:
        finance_rows = {
            "legal entities": [r for r in _rows(finance, "LegalEntities") if p in str(r["Name"])],
            "exchange rates": [r for r in _rows(finance, "ExchangeRates") if r["RateType"] == f"Budget {p}"],
            "customers": [r for r in _rows(finance, "CustomersV3", **{"cross-company": "true"})
                          if r["CustomerAccount"].startswith(f"{p}-C")],
            "vendors": [r for r in _rows(finance, "VendorsV2", **{"cross-company": "true"})
                        if r["VendorAccountNumber"].startswith(f"{p}-V")],
            "workers": [r for r in _rows(finance, "Workers") if r["PersonnelNumber"].startswith(f"{p}-W")],
            "units": [r for r in _rows(finance, "Units") if r["UnitSymbol"].startswith(f"{p}U")],
        }
        contracts = {r["salesorderid"]: r for r in _rows(dataverse, "salesorders")
                     if str(r["ordernumber"]).startswith(f"{p}-K")}
        projects = {r["msdyn_projectid"]: r for r in _rows(dataverse, "msdyn_projects")
                    if str(r["msdyn_projectnumber"]).startswith(f"{p}-P")}
        lines = {r["salesorderdetailid"]: r for r in _rows(dataverse, "salesorderdetails")
                 if r["_salesorderid_value"] in contracts}
        tasks = [r for r in _rows(dataverse, "msdyn_projecttasks") if r["_msdyn_project_value"] in projects]
        entries = [r for r in _rows(dataverse, "msdyn_timeentries") if r["_msdyn_project_value"] in projects]
        actuals = [r for r in _rows(dataverse, "msdyn_actuals") if r["_msdyn_project_value"] in projects]
        dataverse_rows = {
            "transaction categories": [r for r in _rows(dataverse, "msdyn_transactioncategories")
                                       if str(r["msdyn_integrationid"]).startswith(f"TCN-{seed:05d}")],
            "roles": [r for r in _rows(dataverse, "bookableresourcecategories") if f" {p}-" in r["name"]],
            "contracts": list(contracts.values()), "contract lines": list(lines.values()),
            "milestones": [r for r in _rows(dataverse, "msdyn_contractlinescheduleofvalues")
                           if r["_msdyn_contractlineid_value"] in lines],
            "funding sources": [r for r in _rows(dataverse, "msdyn_projectcontractsplitbillingrules")
                                if r["_msdyn_salesorder_value"] in contracts],
            "projects": list(projects.values()), "project tasks": tasks,
            "resource assignments": [r for r in _rows(dataverse, "msdyn_resourceassignments")
                                     if r["_msdyn_projectid_value"] in projects],
            "time entries": entries, "actuals": actuals,
            "confirmed invoices": [r for r in _rows(dataverse, "invoices")
                                   if r["_salesorderid_value"] in contracts and r["statuscode"] == 100001],
        }
        # Every time entry was approved into a cost and an unbilled-sales actual (its project is on
        # a contract), in Finance's Design category (Finance imports time under it); the
        # confirmed invoice billed the unbilled sales: a billed-sales actual and a Skip Sync
        # reversal of the unbilled one.
        assert entries and all(r["msdyn_entrystatus"] == 192350002 for r in entries)
        synced = sorted(r["msdyn_transactiontypecode"] for r in actuals if not r["msdyn_skipsync"])
        assert synced == sorted([192350000, 192350005, 192350006] * len(entries))
        assert sorted(r["msdyn_transactiontypecode"] for r in actuals if r["msdyn_skipsync"]) == \
            [192350005] * len(entries)
        design = [r for r in _rows(dataverse, "msdyn_transactioncategories")
                  if r["msdyn_integrationid"] == "TCN-0000001000-B2289"]
        assert [r["msdyn_name"] for r in design] == ["Design"]
        assert {r["_msdyn_transactioncategory_value"] for r in actuals} == {design[0]["msdyn_transactioncategoryid"]}
        # Nothing of the project managers' reached Finance, nor finance's Dataverse: no pipeline runs.
        assert not [r for r in _rows(finance, "ProjectContractHeaders", **{"cross-company": "true"})
                    if str(r["ProjectContractId"]).startswith(p)]
        assert not [r for r in _rows(dataverse, "accounts") if str(r["accountnumber"]).startswith(p)]
        posted = _posted_documents(finance, p, order)
    empty = [kind for kind, rows in {**finance_rows, **dataverse_rows, **posted}.items() if not rows]
    assert not empty, f"no rows of {empty}"
    # Edits, closes and the adversarial order's late binds landed.
    assert any(r["statecode"] == 1 for r in projects.values())
    assert all(r["_msdyn_project_value"] in projects for r in lines.values())
    wbs = {r["msdyn_projecttaskid"]: r["msdyn_wbsid"] for r in tasks}
    assert {(r["msdyn_wbsid"], wbs.get(r["_msdyn_parenttask_value"])) for r in tasks} >= {
        ("1", None), ("1.1", "1"), ("2", None), ("2.1", "2")}


def _posted_documents(finance: httpx.Client, p: str, order: str) -> dict[str, list[dict[str, Any]]]:
    """Finance's expense reports and vendor invoices of the run are posted; exactly their lines
    with a project are in the export entities, each with its project and task; in adversarial
    order the invoice was posted before its unit and released product were created, and its
    vendor just before it."""
    cross = {"cross-company": "true"}
    reports = [r for r in _rows(finance, "ExpenseReportLines", **cross) if r["ExpenseNumber"].startswith(f"{p}-E")]
    expenses = [r for r in _rows(finance, "ProjectExpenses", **cross) if r["ExpenseNumber"].startswith(f"{p}-E")]
    headers = [r for r in _rows(finance, "PendingVendorInvoices", **cross) if r["InvoiceId"].startswith(f"{p}-VI")]
    lines = [r for r in _rows(finance, "PendingVendorInvoiceLines", **cross) if r["InvoiceId"].startswith(f"{p}-VI")]
    exported = [r for r in _rows(finance, "ProjectVendorInvoices", **cross) if r["InvoiceId"].startswith(f"{p}-VI")]
    exported_lines = [r for r in _rows(finance, "ProjectVendorInvoiceLines", **cross)
                      if r["InvoiceId"].startswith(f"{p}-VI")]
    assert {r["Status"] for r in reports} == {"Posted"} and {r["Status"] for r in headers} == {"Posted"}
    assert any(not r["ProjectId"] for r in reports) and any(not r["ProjectId"] for r in lines)
    assert sorted(r["ExpenseLineId"] for r in expenses) == sorted(
        f"{r['ExpenseNumber']}-{r['LineNum']}" for r in reports if r["ProjectId"])
    assert all(r["ProjectId"].startswith(f"{p}-P") and r["ActivityNumber"] == "2.1" for r in expenses)
    assert sorted(r["InvoiceId"] for r in exported) == sorted(r["InvoiceId"] for r in headers)
    assert sorted(r["ExternalInvoiceLine"] for r in exported_lines) == sorted(
        r["ExternalInvoiceLine"] for r in lines if r["ProjectId"])
    assert all((r["ProjectCategoryId"], r["ActivityNumber"]) == (f"{p}-MAT", "2.1") for r in exported_lines)
    for header in exported:
        (vendor,) = [v for v in _rows(finance, "VendorsV2", **cross) if v["VendorAccountNumber"] == header["VendorAccount"]]
        mine = [r for r in exported_lines if r["InvoiceId"] == header["InvoiceId"]]
        (unit,) = [u for u in _rows(finance, "Units") if u["UnitSymbol"] == mine[0]["Unit"]]
        (item,) = [i for i in _rows(finance, "ReleasedProductsV2", **cross) if i["ItemNumber"] == mine[0]["ItemId"]]
        made_before = [_version(vendor), _version(unit), _version(item)]
        if order == "adversarial":
            assert made_before[0] < _version(header) < min(made_before[1:]), (made_before, _version(header))
        else:
            assert max(made_before) < _version(header)
    return {"expense reports": reports, "project expenses": expenses, "vendor invoices": exported,
            "vendor invoice lines": exported_lines}


@pytest.mark.parametrize("system", ["DATAVERSE", "FINANCE"])
def test_a_refused_secret_is_exit_2_with_one_line_and_no_secret(
        systems: tuple[RunningEmulator, RunningEmulator], system: str) -> None:
    dv, fo = systems
    wrong = "not-the-secret-4711"
    result = scenario(_env(dv, fo, **{f"DUALWRITE_{system}__CLIENT_SECRET": wrong}), "--seed", "13")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"DUALWRITE_{system}__CLIENT_SECRET" in lines[0], result.stderr
    for secret in (wrong, dv.client_secret, fo.client_secret):
        assert secret not in result.stdout + result.stderr


def test_an_api_that_is_not_there_is_exit_2_with_one_line(
        systems: tuple[RunningEmulator, RunningEmulator]) -> None:
    dv, fo = systems
    gone = f"http://127.0.0.1:{free_port()}"
    result = scenario(_env(dv, fo, DUALWRITE_FINANCE__URL=gone), "--seed", "14")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot be reached" in lines[0] and "DUALWRITE_FINANCE__URL" in lines[0]


def test_the_same_seed_again_is_refused_with_what_to_do(systems: tuple[RunningEmulator, RunningEmulator]) -> None:
    dv, fo = systems
    _projects_in_finance(fo, 15)
    assert scenario(_env(dv, fo), "--seed", "15").returncode == 0
    again = scenario(_env(dv, fo), "--seed", "15")
    assert again.returncode == 1
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "use another --seed" in lines[0], again.stderr
