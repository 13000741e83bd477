"""The demo's expenses and vendor invoice (domain.md 1.4, 1.5): posted in Finance, their actuals
back in Finance.

Components 4 and 5 start in Finance, on a project that came from Dataverse, so `Procurement`
acts once the project has arrived there (`tick`, each drain round, as `Billing.tax_setup`
does). Through the Finance API, as the people there would, it makes: an expense category
(``DW-AIR``) on the Travel expense shared category (a transaction category both seeds hold),
the project category of type Item (``DW-MAT``) vendor invoice lines use, an expense report of
Alice Adams (``DW-EXP00001``: a line on the project's task, a line of no project) entered,
approved and posted, and a pending vendor invoice of the vendor both seeds hold
(``DW-VI00001``: a project line of the seeded released product ``D0001``, a line of no project)
posted. Finance exports the project lines; the expense and vendor invoice maps bring them to
Dataverse, which approves them into Expense- and Material-class cost actuals; the actuals map
stages those in Finance, whose periodic jobs post them.

`progress` counts a document as arrived once its actual is in Dataverse; each such actual is
added to the scenario's expected actuals, so `Scenario.progress` also waits for it in Finance
staging with its voucher back in Dataverse, and the demo reconciles only after that.
"""

from __future__ import annotations

from typing import Any

from connectors.common.odata import literal
from dualwrite.scenario import Scenario

__all__ = ["Procurement"]

TASK = "1.1"
TRAVEL = "TCN-0000001001-A1B2C"  # in both seeds; Finance made its shared categories -1..-4
VENDOR = "USPM-000001"  # in both seeds
ITEM, UNIT = "D0001", "ea"  # a released product of usmf and its unit, in Finance's seed
WORKER = "000101"  # Alice Adams: a Finance worker with a bookable resource in Dataverse
POST_REPORT = "ExpenseReportLines/Microsoft.Dynamics.DataEntities.PostExpenseReport"
# msdyn_transactionclassification of the actuals Dataverse's approvals create, by document
_CLASSES = {"expense report": 192350001, "vendor invoice": 192350002}


class Procurement:
    """One expense report and one vendor invoice of a demo run on ``project`` (a number)."""

    def __init__(self, scenario: Scenario, project: str) -> None:
        self.scenario = scenario
        self.project = project
        self.report = f"{scenario.prefix}-EXP00001"
        self.invoice = f"{scenario.prefix}-VI00001"
        self.posted = False

    def _post(self, target: str, body: dict[str, Any], what: str) -> None:
        self.scenario.check(self.scenario.fo.request("POST", target, json=body), what)

    def tick(self) -> str | None:
        """Post both documents once the project is in Finance (what was done, or None)."""
        s = self.scenario
        if self.posted:
            return None
        resp = s.fo.request("GET", f"ProjectsV2(dataAreaId={literal(s.company)},ProjectId={literal(self.project)})",
                            params={"cross-company": "true"})
        if resp.status_code == 404:
            return None
        s.check(resp, f"read project {self.project} in Finance")
        co = s.company
        self._post("ExpenseCategories", {"dataAreaId": co, "CategoryId": f"{s.prefix}-AIR", "Name": "Airfare",
                                         "SharedCategoryId": f"{TRAVEL}-4", "ExpenseType": "Travel"},
                   "create expense category")
        self._post("ProjectCategories", {"dataAreaId": co, "CategoryId": f"{s.prefix}-MAT", "Name": "Materials",
                                         "SharedCategoryId": f"{TRAVEL}-3", "TransactionType": "Item"},
                   "create project category")
        lines: tuple[dict[str, Any], ...] = ({"ProjectId": self.project, "ActivityNumber": TASK, "ExpenseCategoryId": f"{s.prefix}-AIR",
                  "Amount": 320.0, "NonRecoverableTax": 16.0},
                 {"ExpenseCategoryId": "TRAVEL", "Amount": 45.0, "NonRecoverableTax": 0.0})
        for n, line in enumerate(lines, 1):
            self._post("ExpenseReportLines", {"dataAreaId": co, "ExpenseNumber": self.report, "LineNum": n,
                                              "Worker": WORKER, "Date": "2026-12-08", "Currency": "USD",
                                              "Status": "Draft", **line}, f"enter expense line {n}")
        for n in range(1, len(lines) + 1):
            key = f"ExpenseReportLines(dataAreaId={literal(co)},ExpenseNumber={literal(self.report)},LineNum={n})"
            s.check(s.fo.request("PATCH", key, params={"cross-company": "true"}, json={"Status": "Approved"}),
                    f"approve expense line {n}")
        self._post(POST_REPORT, {"dataAreaId": co, "ExpenseNumber": self.report}, f"post expense report {self.report}")
        self._post("PendingVendorInvoices", {"dataAreaId": co, "InvoiceId": self.invoice, "VendorAccount": VENDOR,
                                             "InvoiceNumber": f"INV-{self.invoice}", "InvoiceDate": "2026-12-09",
                                             "Currency": "USD"}, f"enter vendor invoice {self.invoice}")
        bought: tuple[dict[str, Any], ...] = (
            {"ProjectId": self.project, "ActivityNumber": TASK, "ProjectCategoryId": f"{s.prefix}-MAT",
             "ItemId": ITEM, "Unit": UNIT, "Quantity": 4.0, "UnitPrice": 11.5, "Amount": 46.0},
            {"Quantity": 1.0, "UnitPrice": 30.0, "Amount": 30.0})  # office supplies, no project
        for n, line in enumerate(bought, 1):
            self._post("PendingVendorInvoiceLines", {"dataAreaId": co, "ExternalInvoiceLine": f"{self.invoice}-{n}",
                                                     "InvoiceId": self.invoice, "LineNumber": n, **line},
                       f"enter vendor invoice line {n}")
        self._post(f"PendingVendorInvoices(dataAreaId={literal(co)},InvoiceId={literal(self.invoice)})"
                   "/Microsoft.Dynamics.DataEntities.Post", {}, f"post vendor invoice {self.invoice}")
        self.posted = True
        return (f"Finance: expense report {self.report} and vendor invoice {self.invoice} posted on "
                f"{self.project}/{TASK} (each with a line of no project, not exported)")

    def progress(self) -> tuple[int, int]:
        """(documents whose actual is in Dataverse, documents): each such actual joins the
        scenario's expected actuals (staged in Finance, voucher back)."""
        if not self.posted:
            return 0, len(_CLASSES)
        s = self.scenario
        actuals = s.dv.get_all("msdyn_actuals", {
            "$select": "msdyn_actualid,msdyn_transactionclassification,msdyn_skipsync",
            "$filter": f"_msdyn_project_value eq {s.project_id(self.project)}"})
        arrived = 0
        for cls in _CLASSES.values():
            mine = [a for a in actuals if a["msdyn_transactionclassification"] == cls and not a.get("msdyn_skipsync")]
            for a in mine:
                s.expected.finance_actuals[(s.company, str(a["msdyn_actualid"]))] = {
                    "ProjectId": self.project, "TaskId": TASK, "TransType": "Cost"}
            arrived += bool(mine)
        return arrived, len(_CLASSES)
