"""Realistic Project Operations activity against the two APIs, and the state it should produce.

The scenario acts only through the public HTTP APIs, as people and apps would: project managers
create projects and their work breakdown (two levels: "1", "1.1") in Dataverse, rename projects
and drop leaf tasks; finance creates customers in Finance. It remembers what the other side must
end up holding so a run can be checked (`progress()`), which is what `dualwrite demo --seconds N`
and the integration tests use. The `dualwrite scenario` command's activity (every setup and
contract table, seeded plans, an adversarial order) is `dualwrite.activity`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from connectors.common.odata import literal
from dualwrite.apiclient import ApiSession

__all__ = ["Expected", "Scenario"]


@dataclass
class Expected:
    """What the targets must hold once the pipeline drained."""

    finance_projects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    finance_tasks: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    dataverse_accounts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def total(self) -> int:
        return len(self.finance_projects) + len(self.finance_tasks) + len(self.dataverse_accounts)


@dataclass
class Progress:
    projects: tuple[int, int]
    tasks: tuple[int, int]
    customers: tuple[int, int]
    mismatches: list[str]

    @property
    def done(self) -> bool:
        return not self.mismatches and all(a == b for a, b in (self.projects, self.tasks, self.customers))


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

    @staticmethod
    def _ok(resp: Any, what: str) -> None:
        if resp.status_code >= 400:
            raise RuntimeError(f"{what} failed: HTTP {resp.status_code} {resp.text[:300]}")

    # -- Dataverse activity ----------------------------------------------------------------
    def create_project(self, name: str | None = None) -> str:
        self._counter += 1
        number = f"{self.prefix}-{self._counter:05d}"
        subject = name or f"Implementation {number}"
        resp = self.dv.request("POST", "msdyn_projects", headers={"Prefer": "return=representation"},
                               json={"msdyn_projectnumber": number, "msdyn_subject": subject,
                                     "msdyn_owningcompany@odata.bind": f"/cdm_companies({self.company_id()})",
                                     "msdyn_customer@odata.bind": f"/accounts({self.customer_id()})",
                                     "msdyn_scheduledstart": "2026-12-01", "msdyn_finish": "2027-06-30",
                                     "statecode": 0})
        self._ok(resp, f"create project {number}")
        self._projects[number] = str(resp.json()["msdyn_projectid"])
        self.expected.finance_projects[(self.company, number)] = {
            "ProjectName": subject, "CustomerAccountNumber": self.customer, "ProjectStage": "InProcess"}
        return number

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
        self._ok(resp, f"create task {project}/{wbs}")
        self._tasks[(project, wbs)] = resp.headers.get("OData-EntityId", "").rsplit("(", 1)[-1].rstrip(")")
        self._parents[(project, wbs)] = parent
        if parent is not None:
            self._had_children.add((project, parent))
        self.expected.finance_tasks[(self.company, project, wbs)] = {"Name": subject, "ParentTask": parent}

    def rename_project(self, project: str, name: str) -> None:
        resp = self.dv.request("PATCH", f"msdyn_projects({self._projects[project]})",
                               headers={"If-Match": "*"}, json={"msdyn_subject": name})
        self._ok(resp, f"rename project {project}")
        self.expected.finance_projects[(self.company, project)]["ProjectName"] = name

    def children(self, project: str, wbs: str) -> list[str]:
        return sorted(w for (p, w), parent in self._parents.items() if p == project and parent == wbs)

    def delete_task(self, project: str, wbs: str) -> None:
        """Delete a leaf task (Dataverse would take a parent's children with it)."""
        if self.children(project, wbs):
            raise ValueError(f"task {project}/{wbs} has children")
        resp = self.dv.request("DELETE", f"msdyn_projecttasks({self._tasks.pop((project, wbs))})")
        self._ok(resp, f"delete task {project}/{wbs}")
        del self._parents[(project, wbs)]
        del self.expected.finance_tasks[(self.company, project, wbs)]
        self.deleted_tasks.append((self.company, project, wbs))

    def leaves(self) -> list[tuple[str, str]]:
        """Tasks that never had a child, as (project number, wbs), oldest first: deleting one
        does not depend on a child's delete reaching Finance first."""
        return [t for t in self._tasks if t not in self._had_children]

    # -- Finance activity ------------------------------------------------------------------
    def create_customer(self, name: str | None = None) -> str:
        self._counter += 1
        account = f"{self.prefix}C-{self._counter:05d}"
        resp = self.fo.request("POST", "CustomersV3", json={
            "dataAreaId": self.company, "CustomerAccount": account, "Name": name or f"Customer {account}",
            "CustomerGroupId": "30", "SalesCurrencyCode": "USD"})
        self._ok(resp, f"create customer {account}")
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
        return Progress(projects, tasks, customers, mismatches)

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
