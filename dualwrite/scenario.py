"""Realistic Project Operations activity against the two APIs, and the state it should produce.

The scenario acts only through the public HTTP APIs, as people and apps would: project managers
create projects and their work breakdown (two levels: "1", "1.1") in Dataverse, rename projects
and drop leaf tasks; finance creates customers in Finance. It remembers what the other side must
end up holding so a run can be checked (`progress()`), which is what `dualwrite demo --seconds N`
and the integration tests use.

The demo also has people log and approve time and assign resources (`log_time`,
`assign_resource`; never done by `step`, so the chaos tier's random activity is unchanged):
Dataverse turns the approved entry into actuals, which must reach Finance's staging table; once
Finance's periodic jobs (`dualwrite.finance_jobs`) posted their journal, the voucher Finance
gave each actual must be back on the Dataverse actual (``vouchers`` in `Progress`).

The `dualwrite scenario` command's activity (every setup and contract table, seeded plans, an
adversarial order) is `dualwrite.activity`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from connectors.common.odata import literal
from dualwrite.apiclient import ApiSession

__all__ = ["Expected", "Scenario"]

# Dataverse transaction type codes of the actuals an approval creates -> Finance's TransType.
_TRANSACTION_TYPES = {192350000: "Cost", 192350005: "UnbilledSales"}


@dataclass
class Expected:
    """What the targets must hold once the pipeline drained."""

    finance_projects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    finance_tasks: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    dataverse_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (company, msdyn_actualid) -> ActualsStaging fields; each also expects its voucher back
    finance_actuals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # (company, msdyn_resourceassignmentid) -> HourEstimateStaging fields
    finance_hour_estimates: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def total(self) -> int:
        return (len(self.finance_projects) + len(self.finance_tasks) + len(self.dataverse_accounts)
                + len(self.finance_actuals) + len(self.finance_hour_estimates))


@dataclass
class Progress:
    projects: tuple[int, int]
    tasks: tuple[int, int]
    customers: tuple[int, int]
    mismatches: list[str]
    actuals: tuple[int, int] = (0, 0)
    estimates: tuple[int, int] = (0, 0)
    vouchers: tuple[int, int] = (0, 0)  # posted actuals whose voucher is back in Dataverse

    @property
    def done(self) -> bool:
        return not self.mismatches and all(a == b for a, b in (
            self.projects, self.tasks, self.customers, self.actuals, self.estimates, self.vouchers))


class Scenario:
    """Creates and edits records; `company` and `customer` must exist on both sides (seed data)."""

    def __init__(self, dataverse: ApiSession, finance: ApiSession, *, company: str = "usmf",
                 customer: str = "US-001", prefix: str = "DW", seed: int = 7) -> None:
        self.dv = dataverse
        self.fo = finance
        self.company = company
        self.customer = customer
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.expected = Expected()
        self._projects: dict[str, str] = {}  # project number -> msdyn_projectid
        self._tasks: dict[tuple[str, str], str] = {}  # (project number, wbs) -> msdyn_projecttaskid
        self._parents: dict[tuple[str, str], str | None] = {}  # (project number, wbs) -> parent wbs
        self.deleted_tasks: list[tuple[str, str, str]] = []  # Finance keys that must be gone
        self._had_children: set[tuple[str, str]] = set()  # (project number, wbs)
        self._company_id: str | None = None
        self._customer_id: str | None = None
        self._ids: dict[tuple[str, str], str] = {}  # (entity set, name) -> Dataverse id
        self._counter = 0

    # -- lookups ---------------------------------------------------------------------------
    def company_id(self) -> str:
        if self._company_id is None:
            rows = self.dv.get_all("cdm_companies", {"$filter": f"cdm_companycode eq {literal(self.company)}",
                                                     "$select": "cdm_companyid"})
            if not rows:
                raise RuntimeError(f"company {self.company!r} is not in Dataverse; start it with --seed")
            self._company_id = str(rows[0]["cdm_companyid"])
        return self._company_id

    def customer_id(self) -> str:
        if self._customer_id is None:
            rows = self.dv.get_all("accounts", {
                "$filter": f"accountnumber eq {literal(self.customer)} and _msdyn_company_value eq {self.company_id()}",
                "$select": "accountid"})
            if not rows:
                raise RuntimeError(f"customer {self.customer!r} is not in Dataverse")
            self._customer_id = str(rows[0]["accountid"])
        return self._customer_id

    def _named(self, entity_set: str, primary_key: str, name: str) -> str:
        """The Dataverse id of a reference row by its name (seed data: resources, roles)."""
        if (entity_set, name) not in self._ids:
            rows = self.dv.get_all(entity_set, {"$filter": f"name eq {literal(name)}",
                                                "$select": primary_key})
            if not rows:
                raise RuntimeError(f"{entity_set} {name!r} is not in Dataverse; start it with --seed")
            self._ids[(entity_set, name)] = str(rows[0][primary_key])
        return self._ids[(entity_set, name)]

    def category_id(self, name: str) -> str:
        """The Dataverse transaction category matching Finance's category ``name``: its
        integration id is Finance's category id (created here if missing), so Finance's project
        categories for it apply and the import from staging accepts the actuals."""
        if ("msdyn_transactioncategories", name) not in self._ids:
            found = self.fo.get_all("TransactionCategories", {"$filter": f"Name eq {literal(name)}"})
            if not found:
                raise RuntimeError(f"transaction category {name!r} is not in Finance; start it with --seed")
            integration = str(found[0]["CategoryId"])
            rows = self.dv.get_all("msdyn_transactioncategories", {
                "$filter": f"msdyn_integrationid eq {literal(integration)}",
                "$select": "msdyn_transactioncategoryid"})
            if rows:
                self._ids[("msdyn_transactioncategories", name)] = str(rows[0]["msdyn_transactioncategoryid"])
            else:
                resp = self.dv.request("POST", "msdyn_transactioncategories",
                                       headers={"Prefer": "return=representation"},
                                       json={"msdyn_integrationid": integration, "msdyn_name": name,
                                             "statecode": 0})
                self.check(resp, f"create transaction category {name}")
                self._ids[("msdyn_transactioncategories", name)] = str(resp.json()["msdyn_transactioncategoryid"])
        return self._ids[("msdyn_transactioncategories", name)]

    @staticmethod
    def check(resp: Any, what: str) -> None:
        """Raise with the answer when ``resp`` (a write of `what`) was refused."""
        if resp.status_code >= 400:
            raise RuntimeError(f"{what} failed: HTTP {resp.status_code} {resp.text[:300]}")

    # -- Dataverse activity ----------------------------------------------------------------
    def create_project(self, name: str | None = None, contract: str | None = None) -> str:
        """A project for the customer; ``contract`` (a ``salesorders`` id) puts it on a contract."""
        self._counter += 1
        number = f"{self.prefix}-{self._counter:05d}"
        subject = name or f"Implementation {number}"
        on_contract = {"msdyn_salesorderid@odata.bind": f"/salesorders({contract})"} if contract else {}
        resp = self.dv.request("POST", "msdyn_projects", headers={"Prefer": "return=representation"},
                               json={"msdyn_projectnumber": number, "msdyn_subject": subject,
                                     "msdyn_owningcompany@odata.bind": f"/cdm_companies({self.company_id()})",
                                     "msdyn_customer@odata.bind": f"/accounts({self.customer_id()})",
                                     "msdyn_scheduledstart": "2026-12-01", "msdyn_finish": "2027-06-30",
                                     "statecode": 0, **on_contract})
        self.check(resp, f"create project {number}")
        self._projects[number] = str(resp.json()["msdyn_projectid"])
        self.expected.finance_projects[(self.company, number)] = {
            "ProjectName": subject, "CustomerAccountNumber": self.customer, "ProjectStage": "InProcess"}
        return number

    def project_id(self, project: str) -> str:
        """The Dataverse id of a project this scenario made, by its number."""
        return self._projects[project]

    def create_task(self, project: str, wbs: str, name: str | None = None,
                    parent: str | None = None) -> None:
        """A task of ``project``; ``parent`` (the WBS id of one of its tasks) makes it a child."""
        subject = name or f"Work package {wbs}"
        body: dict[str, Any] = {
            "msdyn_project@odata.bind": f"/msdyn_projects({self._projects[project]})",
            "msdyn_wbsid": wbs, "msdyn_subject": subject, "msdyn_isleaf": True,
            "msdyn_scheduledstart": "2026-12-01", "msdyn_scheduledend": "2027-01-31"}
        if parent is not None:
            body["msdyn_parenttask@odata.bind"] = f"/msdyn_projecttasks({self._tasks[(project, parent)]})"
        resp = self.dv.request("POST", "msdyn_projecttasks", json=body)
        self.check(resp, f"create task {project}/{wbs}")
        self._tasks[(project, wbs)] = resp.headers.get("OData-EntityId", "").rsplit("(", 1)[-1].rstrip(")")
        self._parents[(project, wbs)] = parent
        if parent is not None:
            self._had_children.add((project, parent))
        self.expected.finance_tasks[(self.company, project, wbs)] = {"Name": subject, "ParentTask": parent}

    def rename_project(self, project: str, name: str) -> None:
        resp = self.dv.request("PATCH", f"msdyn_projects({self._projects[project]})",
                               headers={"If-Match": "*"}, json={"msdyn_subject": name})
        self.check(resp, f"rename project {project}")
        self.expected.finance_projects[(self.company, project)]["ProjectName"] = name

    def children(self, project: str, wbs: str) -> list[str]:
        return sorted(w for (p, w), parent in self._parents.items() if p == project and parent == wbs)

    def delete_task(self, project: str, wbs: str) -> None:
        """Delete a leaf task (Dataverse would take a parent's children with it)."""
        if self.children(project, wbs):
            raise ValueError(f"task {project}/{wbs} has children")
        resp = self.dv.request("DELETE", f"msdyn_projecttasks({self._tasks.pop((project, wbs))})")
        self.check(resp, f"delete task {project}/{wbs}")
        del self._parents[(project, wbs)]
        del self.expected.finance_tasks[(self.company, project, wbs)]
        self.deleted_tasks.append((self.company, project, wbs))

    def leaves(self) -> list[tuple[str, str]]:
        """Tasks that never had a child, as (project number, wbs), oldest first: deleting one
        does not depend on a child's delete reaching Finance first."""
        return [t for t in self._tasks if t not in self._had_children]

    # -- time and estimates (the demo's; `step` never does these) ---------------------------
    def log_time(self, project: str, wbs: str, *, resource: str = "Alice Adams", role: str = "Developer",
                 category: str = "Design", hours: float = 8.0, day: str = "2026-12-07",
                 cost_price: float = 60.0, sales_price: float = 120.0) -> list[str]:
        """A time entry on a task, approved: Dataverse creates its actuals (cost; unbilled sales
        too on a contract project), each expected in Finance staging and, once posted, with its
        voucher back. Returns the actual ids."""
        resp = self.dv.request("POST", "msdyn_timeentries", headers={"Prefer": "return=representation"}, json={
            "msdyn_project@odata.bind": f"/msdyn_projects({self._projects[project]})",
            "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({self._tasks[(project, wbs)]})",
            "msdyn_bookableresource@odata.bind":
                f"/bookableresources({self._named('bookableresources', 'bookableresourceid', resource)})",
            "msdyn_resourcecategory@odata.bind": f"/bookableresourcecategories("
                f"{self._named('bookableresourcecategories', 'bookableresourcecategoryid', role)})",
            "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({self.category_id(category)})",
            "msdyn_date": day, "msdyn_duration": round(hours * 60), "msdyn_entrystatus": 192354320,
            "msdyn_description": f"{category} work on {project}/{wbs}", "msdyn_costprice": cost_price,
            "msdyn_salesprice": sales_price, "transactioncurrencyid": "USD"})
        self.check(resp, f"log time on {project}/{wbs}")
        entry = str(resp.json()["msdyn_timeentryid"])
        resp = self.dv.request("POST", f"msdyn_timeentries({entry})/Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry")
        self.check(resp, f"approve time entry on {project}/{wbs}")
        created = [a for a in resp.json().get("value", []) if "msdyn_actualid" in a and not a.get("msdyn_skipsync")]
        for actual in created:
            self.expected.finance_actuals[(self.company, str(actual["msdyn_actualid"]))] = {
                "ProjectId": project, "TaskId": wbs, "Quantity": hours,
                "TransType": _TRANSACTION_TYPES.get(actual.get("msdyn_transactiontypecode"))}
        return [str(a["msdyn_actualid"]) for a in created]

    def assign_resource(self, project: str, wbs: str, *, resource: str = "Bob Brown", role: str = "Developer",
                        hours: float = 40.0, cost_price: float = 60.0, sales_price: float = 120.0) -> str:
        """A named resource assigned to a task: the hour estimate Finance must stage."""
        resp = self.dv.request("POST", "msdyn_resourceassignments", headers={"Prefer": "return=representation"},
                               json={
            "msdyn_projectid@odata.bind": f"/msdyn_projects({self._projects[project]})",
            "msdyn_taskid@odata.bind": f"/msdyn_projecttasks({self._tasks[(project, wbs)]})",
            "msdyn_bookableresourceid@odata.bind":
                f"/bookableresources({self._named('bookableresources', 'bookableresourceid', resource)})",
            "msdyn_resourcecategory@odata.bind": f"/bookableresourcecategories("
                f"{self._named('bookableresourcecategories', 'bookableresourcecategoryid', role)})",
            "msdyn_hours": hours, "msdyn_plannedcost": hours * cost_price, "msdyn_plannedsales": hours * sales_price,
            "msdyn_scheduledstart": "2026-12-07", "msdyn_scheduledend": "2026-12-18",
            "transactioncurrencyid": "USD"})
        self.check(resp, f"assign {resource} to {project}/{wbs}")
        assignment = str(resp.json()["msdyn_resourceassignmentid"])
        self.expected.finance_hour_estimates[(self.company, assignment)] = {
            "ProjectId": project, "TaskId": wbs, "Duration": hours}
        return assignment

    # -- Finance activity ------------------------------------------------------------------
    def create_customer(self, name: str | None = None) -> str:
        self._counter += 1
        account = f"{self.prefix}C-{self._counter:05d}"
        resp = self.fo.request("POST", "CustomersV3", json={
            "dataAreaId": self.company, "CustomerAccount": account, "Name": name or f"Customer {account}",
            "CustomerGroupId": "30", "SalesCurrencyCode": "USD"})
        self.check(resp, f"create customer {account}")
        self.expected.dataverse_accounts[account] = {"name": name or f"Customer {account}"}
        return account

    def step(self) -> str:
        """One random piece of realistic activity; returns what it did."""
        roll = self.rng.random()
        if not self._projects or roll < 0.25:
            number = self.create_project()
            for wbs in ("1", "2", "3"):
                self.create_task(number, wbs)
            return f"project {number} with 3 tasks"
        if roll < 0.45:
            return f"customer {self.create_customer()}"
        project = self.rng.choice(sorted(self._projects))
        if roll < 0.75:
            name = f"Implementation {project} rev {self.rng.randint(2, 99)}"
            self.rename_project(project, name)
            return f"renamed {project}"
        top = [w for (p, w), parent in self._parents.items() if p == project and parent is None]
        if roll < 0.82 or not top:
            wbs = str(max((int(w) for w in top), default=0) + 1)
            self.create_task(project, wbs)
            return f"task {project}/{wbs}"
        if roll < 0.9:  # a two-level WBS: a child of a top-level task ("2" -> "2.1")
            parent = self.rng.choice(sorted(top))
            below = self.children(project, parent)
            wbs = f"{parent}.{max((int(w.rsplit('.', 1)[1]) for w in below), default=0) + 1}"
            self.create_task(project, wbs, parent=parent)
            return f"task {project}/{wbs} under {parent}"
        leaves = sorted(w for (p, w) in self._tasks if p == project and not self.children(p, w))
        wbs = self.rng.choice(leaves)
        self.delete_task(project, wbs)
        return f"deleted task {project}/{wbs}"

    # -- checking --------------------------------------------------------------------------
    def progress(self) -> Progress:
        """How much of the expected state the targets hold now, and what differs."""
        mismatches: list[str] = []
        fo_projects = {(r["dataAreaId"], r["ProjectId"]): r for r in self.fo.get_all(
            "ProjectsV2", {"cross-company": "true"}) if r["ProjectId"].startswith(self.prefix)}
        fo_tasks = {(r["dataAreaId"], r["ProjectId"], r["Task"]): r for r in self.fo.get_all(
            "ProjectTasks", {"cross-company": "true"}) if r["ProjectId"].startswith(self.prefix)}
        dv_accounts = {r["accountnumber"]: r for r in self.dv.get_all(
            "accounts", {"$select": "accountnumber,name"}) if str(r["accountnumber"]).startswith(self.prefix)}
        projects = self._compare("project", self.expected.finance_projects, fo_projects, mismatches)
        tasks = self._compare("task", self.expected.finance_tasks, fo_tasks, mismatches)
        customers = self._compare("account", self.expected.dataverse_accounts, dv_accounts, mismatches)
        actuals = estimates = vouchers = (0, 0)
        if self.expected.finance_actuals:  # only scenarios that logged time read these tables
            staged = {(r["ProjectDataAreaId"], r["ActualId"]): r for r in self.fo.get_all(
                "ActualsStaging", {"cross-company": "true"}) if str(r["ProjectId"]).startswith(self.prefix)}
            actuals = self._compare("actual", self.expected.finance_actuals, staged, mismatches)
            mismatches += [f"actual {key}: Finance's import refused it: {row.get('ImportError')}"
                           for key, row in staged.items() if row.get("ImportStatus") == "Invalid"]
            vouchers = (self._vouchers_back(staged), len(self.expected.finance_actuals))
        if self.expected.finance_hour_estimates:
            fo_estimates = {(r["dataAreaId"], r["SourceId"]): r for r in self.fo.get_all(
                "HourEstimateStaging", {"cross-company": "true"}) if str(r["ProjectId"]).startswith(self.prefix)}
            estimates = self._compare("hour estimate", self.expected.finance_hour_estimates, fo_estimates,
                                      mismatches)
        return Progress(projects, tasks, customers, mismatches, actuals, estimates, vouchers)

    def _vouchers_back(self, staged: dict[tuple[str, str], dict[str, Any]]) -> int:
        """Expected actuals Finance posted (a voucher in staging) whose Dataverse row carries
        that voucher (the accounting write-back)."""
        posted = {actual: row["Voucher"] for (_, actual), row in staged.items()
                  if (row["ProjectDataAreaId"], actual) in self.expected.finance_actuals and row.get("Voucher")}
        if not posted:
            return 0
        back = {str(r["msdyn_actualid"]): r.get("msdyn_vouchernumber") for r in self.dv.get_all(
            "msdyn_actuals", {"$select": "msdyn_actualid,msdyn_vouchernumber",
                              "$filter": " or ".join(f"msdyn_actualid eq {a}" for a in sorted(posted))})}
        return sum(1 for actual, voucher in posted.items() if back.get(actual) == voucher)

    @staticmethod
    def _compare(kind: str, expected: dict[Any, dict[str, Any]], actual: dict[Any, dict[str, Any]],
                 mismatches: list[str]) -> tuple[int, int]:
        arrived = 0
        for key, fields in expected.items():
            row = actual.get(key)
            if row is None:
                continue
            wrong = {k: (v, row.get(k)) for k, v in fields.items() if row.get(k) != v}
            if wrong:
                mismatches.append(f"{kind} {key}: {wrong}")
            else:
                arrived += 1
        for key in actual.keys() - expected.keys():
            mismatches.append(f"{kind} {key} should not exist")
        return arrived, len(expected)
