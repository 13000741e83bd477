"""The demo's time and estimates: approved time makes expected actuals, each expected in Finance
staging and then with its voucher back in Dataverse; scenarios that log no time read neither."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from dualwrite.scenario import Scenario
from tests.unit.dualwrite.fakes import Response

pytestmark = pytest.mark.unit

APPROVE = "/Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry"


class FakeDataverse:
    """Projects, tasks, categories, time entries (approval makes a cost and a Skip Sync actual),
    resource assignments, and the actuals' voucher column."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.actuals: dict[str, dict[str, Any]] = {}
        self.categories: list[dict[str, Any]] = []

    def request(self, method: str, url: str, json: dict[str, Any] | None = None, **_: Any) -> Response:
        new = str(uuid.uuid4())
        if method == "POST" and url.endswith(APPROVE):
            cost, skipped = str(uuid.uuid4()), str(uuid.uuid4())
            self.actuals |= {cost: {}, skipped: {}}
            return Response(200, {"value": [
                {"msdyn_actualid": cost, "msdyn_transactiontypecode": 192350000, "msdyn_skipsync": False},
                {"msdyn_actualid": skipped, "msdyn_transactiontypecode": 192350000, "msdyn_skipsync": True}]})
        if method == "POST":
            assert json is not None
            self.posts.append((url, json))
            if url == "msdyn_transactioncategories":
                self.categories.append({"msdyn_transactioncategoryid": new, **json})
            pk = {"msdyn_projects": "msdyn_projectid", "msdyn_timeentries": "msdyn_timeentryid",
                  "msdyn_resourceassignments": "msdyn_resourceassignmentid",
                  "msdyn_transactioncategories": "msdyn_transactioncategoryid"}.get(url)
            return Response(201, {pk: new} if pk else {}, {"OData-EntityId": f"http://dv/{url}({new})"})
        raise AssertionError(f"unexpected {method} {url}")

    def get_all(self, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        if url == "msdyn_actuals":
            return [{"msdyn_actualid": a, **row} for a, row in self.actuals.items()]
        if url == "msdyn_transactioncategories":
            return self.categories
        return {"cdm_companies": [{"cdm_companyid": "c1"}], "accounts": [{"accountid": "a1", "accountnumber": "US-001"}],
                "bookableresources": [{"bookableresourceid": "r1"}],
                "bookableresourcecategories": [{"bookableresourcecategoryid": "role1"}]}[url]


class FakeFinance:
    def __init__(self) -> None:
        self.tables: dict[str, list[dict[str, Any]]] = {
            "TransactionCategories": [{"CategoryId": "TCN-0000001000-B2289", "Name": "Design"}]}
        self.read: list[str] = []

    def get_all(self, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        self.read.append(url)
        return self.tables.get(url, [])


def demo(dv: FakeDataverse, fo: FakeFinance) -> tuple[Scenario, str]:
    scenario = Scenario(dv, fo)  # type: ignore[arg-type]
    project = scenario.create_project()
    scenario.create_task(project, "1")
    return scenario, project


def test_approved_time_is_expected_in_staging_then_with_its_voucher_back_in_dataverse() -> None:
    dv, fo = FakeDataverse(), FakeFinance()
    scenario, project = demo(dv, fo)
    [actual] = scenario.log_time(project, "1")  # the Skip Sync actual is never sent
    category = next(body for url, body in dv.posts if url == "msdyn_transactioncategories")
    assert category["msdyn_integrationid"] == "TCN-0000001000-B2289"  # Finance's Design
    entry = next(body for url, body in dv.posts if url == "msdyn_timeentries")
    assert entry["msdyn_duration"] == 480
    assert scenario.progress().actuals == (0, 1) and scenario.progress().vouchers == (0, 1)

    staged = {"ProjectDataAreaId": "usmf", "ActualId": actual, "ProjectId": project, "TaskId": "1",
              "Quantity": 8.0, "TransType": "Cost", "ImportStatus": "New", "Voucher": None}
    fo.tables["ActualsStaging"] = [staged]
    progress = scenario.progress()
    assert (progress.actuals, progress.vouchers, progress.done) == ((1, 1), (0, 1), False)

    staged |= {"ImportStatus": "Imported", "Voucher": "PJV-000001"}  # posted
    assert scenario.progress().vouchers == (0, 1)
    dv.actuals[actual]["msdyn_vouchernumber"] = "PJV-000002"  # some other voucher
    assert scenario.progress().vouchers == (0, 1)
    dv.actuals[actual]["msdyn_vouchernumber"] = "PJV-000001"
    assert scenario.progress().vouchers == (1, 1)


def test_a_resource_assignment_is_expected_as_an_hour_estimate() -> None:
    dv, fo = FakeDataverse(), FakeFinance()
    scenario, project = demo(dv, fo)
    assignment = scenario.assign_resource(project, "1", hours=16)
    assert scenario.progress().estimates == (0, 1)
    fo.tables["HourEstimateStaging"] = [{"dataAreaId": "usmf", "SourceId": assignment, "ProjectId": project,
                                         "TaskId": "1", "Duration": 8.0}]
    progress = scenario.progress()
    assert progress.estimates == (0, 1)
    assert progress.mismatches == [f"hour estimate ('usmf', '{assignment}'): {{'Duration': (16, 8.0)}}"]
    fo.tables["HourEstimateStaging"][0]["Duration"] = 16.0
    assert scenario.progress().estimates == (1, 1)


def test_an_actual_finance_refused_to_import_is_a_mismatch_with_finance_s_reason() -> None:
    dv, fo = FakeDataverse(), FakeFinance()
    scenario, project = demo(dv, fo)
    [actual] = scenario.log_time(project, "1")
    fo.tables["ActualsStaging"] = [{"ProjectDataAreaId": "usmf", "ActualId": actual, "ProjectId": project,
                                    "TaskId": "1", "Quantity": 8.0, "TransType": "Cost",
                                    "ImportStatus": "Invalid", "ImportError": "No project category"}]
    assert scenario.progress().mismatches == [
        f"actual ('usmf', '{actual}'): Finance's import refused it: No project category"]


def test_a_scenario_that_logs_no_time_never_reads_the_staging_tables() -> None:
    fo = FakeFinance()
    scenario, _ = demo(FakeDataverse(), fo)
    progress = scenario.progress()
    assert (progress.actuals, progress.estimates, progress.vouchers) == ((0, 0), (0, 0), (0, 0))
    assert not {"ActualsStaging", "HourEstimateStaging"} & set(fo.read)
