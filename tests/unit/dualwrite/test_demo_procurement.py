"""The demo's expenses and vendor invoice: posted in Finance only once their project arrived
there, and counted as arrived only once Dataverse made their actuals, which then join the
scenario's expected actuals (staged in Finance, voucher back)."""

from __future__ import annotations

import pytest

from dualwrite.demo.procurement import POST_REPORT, Procurement
from dualwrite.scenario import Scenario
from tests.unit.dualwrite.fakes import Response
from tests.unit.dualwrite.test_demo_billing import FakeApi

pytestmark = pytest.mark.unit

PROJECT_URL = "ProjectsV2(dataAreaId='usmf',ProjectId='DW-00001')"
EXPENSE, MATERIAL = 192350001, 192350002


def _procurement(dv: FakeApi, fo: FakeApi) -> Procurement:
    scenario = Scenario(dv, fo)  # type: ignore[arg-type]
    scenario._projects["DW-00001"] = "p-guid"  # as create_project records it
    return Procurement(scenario, "DW-00001")


def test_both_documents_are_posted_once_and_only_after_the_project_arrived_in_finance() -> None:
    fo = FakeApi(answers={("GET", PROJECT_URL): Response(404)})
    made = _procurement(FakeApi(), fo)
    assert made.tick() is None and [c[:2] for c in fo.calls] == [("GET", PROJECT_URL)]
    fo.answers[("GET", PROJECT_URL)] = Response(200, {"ProjectId": "DW-00001"})
    assert made.tick() is not None
    writes = [(method, url.split("(")[0] if "/" not in url else url) for method, url, _ in fo.calls[2:]]
    assert writes == [
        ("POST", "ExpenseCategories"), ("POST", "ProjectCategories"),
        ("POST", "ExpenseReportLines"), ("POST", "ExpenseReportLines"),
        ("PATCH", "ExpenseReportLines"), ("PATCH", "ExpenseReportLines"), ("POST", POST_REPORT),
        ("POST", "PendingVendorInvoices"), ("POST", "PendingVendorInvoiceLines"),
        ("POST", "PendingVendorInvoiceLines"),
        ("POST", "PendingVendorInvoices(dataAreaId='usmf',InvoiceId='DW-VI00001')"
                 "/Microsoft.Dynamics.DataEntities.Post")]
    entered = [body for method, url, body in fo.calls if url == "ExpenseReportLines" and method == "POST"]
    assert [(b.get("ProjectId"), b["Status"]) for b in entered] == [
        ("DW-00001", "Draft"), (None, "Draft")]  # a line of no project, not exported
    assert [body for method, _, body in fo.calls if method == "PATCH"] == [{"Status": "Approved"}] * 2
    calls = len(fo.calls)
    assert made.tick() is None and len(fo.calls) == calls  # once


def test_a_document_arrives_once_dataverse_made_its_actual_which_is_then_expected_in_finance() -> None:
    dv, fo = FakeApi(), FakeApi(answers={("GET", PROJECT_URL): Response(200, {})})
    made = _procurement(dv, fo)
    assert made.progress() == (0, 2)  # not posted yet: still to come
    made.tick()
    assert made.progress() == (0, 2)
    dv.rows["msdyn_actuals"] = [
        {"msdyn_actualid": "e1", "msdyn_transactionclassification": EXPENSE, "msdyn_skipsync": 0},
        {"msdyn_actualid": "t1", "msdyn_transactionclassification": 192350000, "msdyn_skipsync": 0}]
    assert made.progress() == (1, 2)
    dv.rows["msdyn_actuals"].append(
        {"msdyn_actualid": "m1", "msdyn_transactionclassification": MATERIAL, "msdyn_skipsync": 0})
    assert made.progress() == (2, 2)
    expected = made.scenario.expected.finance_actuals
    assert set(expected) == {("usmf", "e1"), ("usmf", "m1")}  # not the time actual: not ours
    assert expected[("usmf", "m1")] == {"ProjectId": "DW-00001", "TaskId": "1.1", "TransType": "Cost"}
