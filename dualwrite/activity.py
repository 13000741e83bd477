"""The people's activity of domain.md 1.1 as a plan of API requests (`dualwrite.activity_run`
makes them).

`dualwrite scenario` uses it; `dualwrite.scenario.Scenario` (the demo's and chaos tier's random
projects, tasks and customers, with its own expectations) is separate and unchanged.

Planning is apart from acting so that a run is repeatable and testable without I/O: `plan` turns
what the two systems hold at the start (`World`: Dataverse companies and their customer
accounts, Finance legal entities) and a seed into a list of `Op` (one write request each). The
same world and seed give the same requests. Every row the plan creates carries the seed in its
number (``S7-K0001``), so runs with different seeds do not collide; the same seed against the
same data is refused as a duplicate (exit 1, "use another --seed").

Who does what (domain.md 1.1, 1.7):

- finance, in Finance: a new legal entity and its ledger, exchange rates, customers and vendors
  in every legal entity, workers, units; renames a customer, changes a worker's e-mail;
- project managers, in Dataverse: transaction categories and roles (renamed, one deleted),
  contracts (``salesorders``) with a funding source per contract customer, a project on the
  contract with a two-level work breakdown ("1", "1.1"), a time-and-material and a fixed-price
  contract line, two milestones on the fixed-price line; then edits, a task and a milestone
  deleted, every other project closed (statecode 1), one contract in four torn down (children
  before parents: milestones, lines, funding sources, child tasks, tasks, project, contract);
- their team (domain.md 1.2), on every project that is not torn down, before it closes: a
  resource assigned to task "2.1" (an hour estimate), a material estimate on it (a cost and a
  sales line of a product released in the project's company, when Dataverse has one) and a day
  of time on it against the T&M line, approved (Dataverse creates the cost and unbilled-sales
  actuals). Who and in which
  role are the bookable resources and roles Dataverse holds at the start; the transaction
  category is one Finance can import time under (a Finance category with an Hour project
  category), created first in Dataverse with Finance's id as its integration id when Dataverse
  lacks it. A world without resources, roles or such a category gets no time and estimates.
  Finance's periodic jobs that turn the actuals into posted journals are not requests of the
  plan: the command runs them on a schedule (`dualwrite.finance_jobs`).
- finance again, on those projects, before they close (domain.md 1.4, 1.5; only for a legal
  entity Finance holds): the project accountant first sets up, per legal entity, expense
  categories on the Expense shared categories of transaction categories Dataverse holds and a
  project category of type Item for materials; then an expense report (two project lines and
  one without a project) is entered, approved and posted
  (``PostExpenseReport``), and a pending vendor invoice from a new vendor (two project lines of a
  new released product in a new unit, one line without a project) is entered and posted (the
  invoice's bound ``Post``). Finance takes such a document only for a project it holds, so
  their first request waits (``Op.awaits``) until the project has arrived in Finance (the
  pipeline brings it). A world without such categories gets no expenses or invoices.

Orders. ``natural``: finance first, then project managers, company by company, parents before
children. ``adversarial``: the same work interleaved across companies and kinds (a seeded
shuffle of units of work that do not depend on each other), children created before their
parents wherever Dataverse accepts it (a funding source before its contract, a milestone before
its contract line, contract lines before their project, a child task before its parent; each
bound to its parent by a later PATCH; in Finance a vendor invoice posted before the unit and the
released product its lines name exist, and its vendor created only just before it: Finance
refuses an invoice of an unknown vendor), bursts of five updates to one project, and one
contract's project (with everything that needs it) arriving late: held back until ``late_s``
after the start, while the rest goes on. A bind (``@odata.bind``) always names a row that
exists: Dataverse refuses any other.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from topics import System

__all__ = ["Company", "NothingToWorkOn", "Op", "Order", "Ref", "ScenarioError", "SizeName", "World",
           "plan", "summary"]


class ScenarioError(Exception):
    """The scenario cannot go on: one line saying what to do next."""


class NothingToWorkOn(ScenarioError):
    """Dataverse holds no company with a customer account to make contracts for (exit 2)."""


class Order(StrEnum):
    natural = "natural"
    adversarial = "adversarial"


class SizeName(StrEnum):
    small = "small"
    medium = "medium"
    large = "large"


@dataclass(frozen=True)
class Size:
    """How many of each kind one run creates."""

    legal_entities: int
    customers: int
    vendors: int
    workers: int
    units: int
    rates: int
    categories: int
    roles: int
    contracts: int


SIZES = {SizeName.small: Size(1, 3, 2, 2, 1, 2, 2, 2, 2),
         SizeName.medium: Size(1, 8, 4, 6, 2, 4, 4, 4, 8),
         SizeName.large: Size(3, 80, 40, 60, 10, 40, 20, 10, 100)}


@dataclass(frozen=True)
class Company:
    """A legal entity as a project manager sees it in Dataverse."""

    code: str
    currency: str
    accounts: tuple[str, ...]  # its customer account numbers


@dataclass(frozen=True)
class World:
    """What the plan builds on: Dataverse companies with customers, Finance legal entities; for
    time and estimates, Dataverse's bookable resources and roles (names), the integration ids of
    its transaction categories, Finance's categories time can be imported under, and the
    released products Dataverse holds per company (found by `read_world` as ``product:``); for
    expenses and vendor invoices, Finance's shared categories (id, name) of type Expense usable in
    expenses, and of type Item, of transaction categories Dataverse holds, and the personnel
    numbers of Dataverse's bookable resources per company (an expense line's worker)."""

    dataverse: tuple[Company, ...]
    finance: tuple[tuple[str, str], ...]  # (dataAreaId, accounting currency)
    resources: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    dataverse_categories: tuple[str, ...] = ()  # msdyn_integrationid
    time_categories: tuple[tuple[str, str], ...] = ()  # Finance (CategoryId, Name)
    products: tuple[tuple[str, str], ...] = ()  # Dataverse released products (company, productnumber)
    expense_categories: tuple[tuple[str, str], ...] = ()  # Finance SharedCategoryId, expense type
    item_categories: tuple[tuple[str, str], ...] = ()  # Finance SharedCategoryId, Name (Item)
    workers: tuple[tuple[str, str], ...] = ()  # bookable resources (company, personnel number)


@dataclass(frozen=True)
class Ref:
    """A Dataverse row of the plan: ``company:usmf``, ``account:usmf/US-001``,
    ``resource:<name>``, ``known-role:<name>``, ``category:<integration id>`` (found by
    `read_world`) or a handle an earlier ``POST`` of the plan named."""

    handle: str


VERBS = {"POST": "created", "PATCH": "updated", "DELETE": "deleted"}
# the Dataverse and Finance actions the plan calls
ACTIONS = {"msdyn_ApproveTimeEntry": "approved", "msdyn_ConfirmInvoice": "confirmed",
           "PostExpenseReport": "posted", "Post": "posted"}


@dataclass(frozen=True)
class Op:
    """One write request. Dataverse: ``row`` names the created (POST) or addressed row, and a
    `Ref` value in ``body`` becomes ``<column>@odata.bind``; with ``action`` the POST calls that
    bound action on ``row`` instead. Finance: ``key`` addresses the row; with ``action`` the POST
    calls that action, bound to the row ``key`` names or, without a key, to the entity set, with
    ``body`` as its parameters. ``awaits`` (a Finance entity and key) is a row that must exist
    before the request is made: a person picks only a project Finance holds."""

    kind: str
    system: System
    method: str
    table: str
    body: Mapping[str, Any] = field(default_factory=dict)
    row: Ref | None = None
    key: Mapping[str, Any] | None = None
    late: bool = False
    action: str | None = None
    awaits: tuple[str, Mapping[str, Any]] | None = None

    def binds(self) -> list[str]:
        return [v.handle for v in self.body.values() if isinstance(v, Ref)]

    @property
    def verb(self) -> str:
        return ACTIONS[self.action] if self.action else VERBS[self.method]


Chunk = list[Op]  # ops made back to back (a burst), never interleaved with others


# -- planning ----------------------------------------------------------------------------------

def _dv(kind: str, method: str, table: str, row: str, body: Mapping[str, Any] | None = None) -> Op:
    return Op(kind, "dataverse", method, table, dict(body or {}), row=Ref(row))


def _fo(kind: str, method: str, table: str, body: Mapping[str, Any],
        key: Mapping[str, Any] | None = None, *, action: str | None = None,
        awaits: tuple[str, Mapping[str, Any]] | None = None) -> Op:
    return Op(kind, "finance", method, table, dict(body), key=key, action=action, awaits=awaits)


def _le_code(seed: int, n: int) -> str:
    """A 4-character legal entity code unique per (seed, n < 4), starting with a digit so it
    never names a real company: base 36 of ``seed * 4 + n``."""
    value, digits = seed * 4 + n, ""
    for _ in range(4):
        value, d = divmod(value, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
    return digits


@dataclass(frozen=True)
class _Team:
    """Who logs time and in what: `Ref` handles of a resource, a role and a category."""

    resource: str
    role: str
    category: str


class _Planner:
    def __init__(self, world: World, seed: int, size: Size, adversarial: bool) -> None:
        self.world, self.seed, self.size, self.adv = world, seed, size, adversarial
        self.rng = random.Random(seed)
        self.p = f"S{seed}"
        self.team, self.prelude = self._team()
        self.prelude += self._finance_setup()

    def _team(self) -> tuple[_Team | None, list[Op]]:
        """The team's resource, role and category, and the request that makes the category
        known to Dataverse when it is not yet (made before anything else)."""
        w = self.world
        if not (w.resources and w.roles and w.time_categories):
            return None, []
        role = "Developer" if "Developer" in w.roles else sorted(w.roles)[0]
        category, name = min(w.time_categories, key=lambda c: (c[1] != "Design", c[1], c[0]))
        prelude = [] if category in w.dataverse_categories else [_dv(
            "transaction category", "POST", "msdyn_transactioncategories", f"category:{category}",
            {"msdyn_integrationid": category, "msdyn_name": name, "statecode": 0})]
        return _Team(f"resource:{sorted(w.resources)[0]}", f"known-role:{role}", f"category:{category}"), prelude

    def _procuring(self) -> list[str]:
        """The legal entities whose projects get expenses and vendor invoices: those with
        contract customers in Dataverse that Finance holds, when Finance has the categories."""
        if not (self.world.expense_categories and self.world.item_categories):
            return []
        known = {code for code, _ in self.world.finance}
        return sorted(c.code for c in self.world.dataverse if c.accounts and c.code in known)

    def _finance_setup(self) -> list[Op]:
        """The project accountant's setup, made before anything else in every legal entity that
        gets expenses: expense categories (``<p>-X1``, ``-X2``) on up to two Expense shared
        categories, and a project category of type Item (``<p>-MAT``) for vendor invoice lines,
        on the Item shared category of a transaction category Dataverse holds ("Materials"
        first), so Dataverse accepts the lines and Finance imports their actuals."""
        expense = sorted(self.world.expense_categories, key=lambda c: (c[1], c[0]))[:2]
        item, item_name = min(self.world.item_categories,
                              key=lambda c: ("material" not in c[1].lower(), c[1], c[0]), default=("", ""))
        ops: list[Op] = []
        for code in self._procuring():
            ops += [_fo("expense category", "POST", "ExpenseCategories", {
                "dataAreaId": code, "CategoryId": f"{self.p}-X{n}", "Name": f"{name} {self.p}",
                "SharedCategoryId": shared, "ExpenseType": name[:20]}) for n, (shared, name) in enumerate(expense, 1)]
            ops.append(_fo("project category", "POST", "ProjectCategories", {
                "dataAreaId": code, "CategoryId": f"{self.p}-MAT", "Name": f"{item_name} {self.p}",
                "SharedCategoryId": item, "TransactionType": "Item"}))
        return ops

    # Finance ---------------------------------------------------------------------------------
    def finance_units(self) -> list[list[Chunk]]:
        new = [(_le_code(self.seed, n), ("USD", "EUR", "GBP")[n % 3])
               for n in range(1, self.size.legal_entities + 1)]
        companies = [*self.world.finance, *new]
        customers: dict[str, list[str]] = {c: [] for c, _ in companies}
        vendors: dict[str, list[str]] = {c: [] for c, _ in companies}
        for i in range(self.size.customers):
            customers[companies[i % len(companies)][0]].append(f"{self.p}-C{i + 1:04d}")
        for i in range(self.size.vendors):
            vendors[companies[i % len(companies)][0]].append(f"{self.p}-V{i + 1:04d}")
        units: list[list[Chunk]] = []
        for code, currency in companies:
            unit: list[Chunk] = []
            if (code, currency) in new:
                unit.append([_fo("legal entity", "POST", "LegalEntities", {
                    "dataAreaId": code, "Name": f"Contoso {code.upper()} ({self.p})",
                    "AccountingCurrency": currency})])
                unit.append([_fo("ledger", "POST", "Ledgers", {
                    "LegalEntityId": code, "Name": code.upper(), "Description": f"Ledger {code.upper()}",
                    "AccountingCurrency": currency, "ReportingCurrency": "USD"})])
            for account in customers[code]:
                unit.append([_fo("customer", "POST", "CustomersV3", {
                    "dataAreaId": code, "CustomerAccount": account, "Name": f"Customer {account}",
                    "CustomerGroupId": "30", "SalesCurrencyCode": currency})])
            for account in vendors[code]:
                unit.append([_fo("vendor", "POST", "VendorsV2", {
                    "dataAreaId": code, "VendorAccountNumber": account, "Name": f"Vendor {account}",
                    "VendorGroupId": "10", "CurrencyCode": currency})])
            if customers[code]:
                account = customers[code][0]
                key = {"dataAreaId": code, "CustomerAccount": account}
                unit.append([_fo("customer", "PATCH", "CustomersV3", {"Name": f"Customer {account} rev {r}"},
                                 key) for r in range(1, (5 if self.adv else 1) + 1)])
            if unit:
                units.append(unit)
        units.append([[_fo("exchange rate", "POST", "ExchangeRates", {
            "RateType": f"Budget {self.p}", "FromCurrency": src, "ToCurrency": dst,
            "ValidFrom": f"{2027 + i // 12}-{i % 12 + 1:02d}-01", "Rate": round(self.rng.uniform(0.5, 1.5), 4)})]
            for i, (src, dst) in enumerate(self._pairs(self.size.rates))])
        workers: list[Chunk] = []
        for i in range(1, self.size.workers + 1):
            first, last = self.rng.choice(_FIRST), self.rng.choice(_LAST)
            workers.append([_fo("worker", "POST", "Workers", {
                "PersonnelNumber": f"{self.p}-W{i:04d}", "FirstName": first, "LastName": last,
                "Name": f"{first} {last}", "WorkerType": ("Employee", "Contractor")[i % 2],
                "PrimaryContactEmail": f"{first.lower()}.{i}@contoso.com"})])
        workers.append([_fo("worker", "PATCH", "Workers", {"PrimaryContactEmail": f"{self.p.lower()}.w1@contoso.com"},
                            {"PersonnelNumber": f"{self.p}-W0001"})])
        units.append(workers)
        units.append([[_fo("unit", "POST", "Units", {
            "UnitSymbol": f"{self.p}U{i}", "Description": f"Unit {i} of {self.p}", "UnitClass": "Quantity",
            "DecimalPrecision": 0})] for i in range(1, self.size.units + 1)])
        return units

    def _pairs(self, n: int) -> list[tuple[str, str]]:
        pairs = [(a, b) for a in _CURRENCIES for b in _CURRENCIES if a != b]
        return [pairs[i % len(pairs)] for i in range(n)]

    # Dataverse: setup --------------------------------------------------------------------------
    def setup_units(self) -> list[list[Chunk]]:
        categories = [[_dv("transaction category", "POST", "msdyn_transactioncategories", f"category:{i}", {
            "msdyn_integrationid": f"TCN-{self.seed:05d}{i:05d}-DW",
            "msdyn_name": f"{self.rng.choice(_CATEGORIES)} {self.p}-{i}", "statecode": 0})]
            for i in range(1, self.size.categories + 1)]
        categories.append([_dv("transaction category", "PATCH", "msdyn_transactioncategories", "category:1",
                               {"msdyn_name": f"Renamed {self.p}-1"})])
        roles = [[_dv("role", "POST", "bookableresourcecategories", f"role:{i}", {
            "name": f"{self.rng.choice(_ROLES)} {self.p}-{i}", "description": "Project role", "statecode": 0})]
            for i in range(1, self.size.roles + 1)]
        roles.append([_dv("role", "PATCH", "bookableresourcecategories", "role:1",
                          {"description": "Project role, billable"})])
        for unit, kind, table, handle, n in ((categories, "transaction category", "msdyn_transactioncategories",
                                              "category", self.size.categories),
                                             (roles, "role", "bookableresourcecategories", "role", self.size.roles)):
            if n >= 2:
                unit.append([_dv(kind, "DELETE", table, f"{handle}:{n}")])
        return [categories, roles]

    # Dataverse: contracts and projects -------------------------------------------------------
    def contract_units(self) -> list[list[Chunk]]:
        companies = [c for c in self.world.dataverse if c.accounts]
        if not companies:
            raise NothingToWorkOn("Dataverse holds no company with a customer account: start the "
                                  "emulators with --seed, or let the pipeline bring customers over first")
        return [self._contract(i, companies[i % len(companies)]) for i in range(self.size.contracts)]

    def _contract(self, i: int, company: Company) -> list[Chunk]:
        k = f"{self.p}-K{i + 1:04d}"
        number = f"{self.p}-P{i + 1:04d}"
        co, cur = Ref(f"company:{company.code}"), company.currency
        payers = self.rng.sample(company.accounts, min(len(company.accounts), 2))
        h = {name: f"{name}:{k}" for name in ("contract", "project", "tm", "fixed", "m1", "m2")}
        contract = Ref(h["contract"])
        late = self.adv and i == 0
        header = _dv("contract", "POST", "salesorders", h["contract"], {
            "ordernumber": k, "name": f"Contract {k}", "customerid": Ref(f"account:{company.code}/{payers[0]}"),
            "msdyn_owningcompany": co, "transactioncurrencyid": cur, "statecode": 0})
        funding = [_dv("funding source", "POST", "msdyn_projectcontractsplitbillingrules", f"fs{n}:{k}", {
            "msdyn_name": f"{payer} {100 // len(payers)}%", "msdyn_customer": Ref(f"account:{company.code}/{payer}"),
            "msdyn_percentage": 100 // len(payers), "statecode": 0}) for n, payer in enumerate(payers)]
        project = _dv("project", "POST", "msdyn_projects", h["project"], {
            "msdyn_projectnumber": number, "msdyn_subject": f"Implementation {number}",
            "msdyn_customer": Ref(f"account:{company.code}/{payers[0]}"), "msdyn_salesorderid": contract,
            "msdyn_owningcompany": co, "msdyn_scheduledstart": "2027-01-04", "msdyn_finish": "2027-06-30",
            "transactioncurrencyid": cur, "statecode": 0})
        amount = float(self.rng.randrange(20, 200) * 500)

        def line(handle: str, n: int, method: int, what: str, with_project: bool) -> Op:
            body: dict[str, Any] = {
                "salesorderid": contract, "msdyn_linenumber": str(n), "productdescription": f"{what} {k}",
                "msdyn_billingmethod": method, "priceperunit": amount, "extendedamount": amount,
                "transactioncurrencyid": cur, "msdyn_owningcompany": co}
            if with_project:
                body["msdyn_project"] = Ref(h["project"])
            return _dv("contract line", "POST", "salesorderdetails", h[handle], body)

        def milestone(handle: str, n: int, with_line: bool) -> Op:
            body: dict[str, Any] = {"msdyn_contract": contract, "msdyn_name": f"Milestone {n} {k}",
                                    "msdyn_amount": amount / 2, "msdyn_invoicedate": f"2027-0{2 * n}-26",
                                    "msdyn_invoicestatus": 192350000, "transactioncurrencyid": cur}
            if with_line:
                body["msdyn_contractlineid"] = Ref(h["fixed"])
            return _dv("milestone", "POST", "msdyn_contractlinescheduleofvalues", h[handle], body)

        def task(wbs: str, parent: str | None, bind_parent: bool = True) -> Op:
            body: dict[str, Any] = {"msdyn_project": Ref(h["project"]), "msdyn_wbsid": wbs,
                                    "msdyn_subject": f"{_TASKS[wbs]} {number}", "msdyn_isleaf": "." in wbs,
                                    "msdyn_scheduledstart": "2027-01-04", "msdyn_scheduledend": "2027-03-31"}
            if parent is not None and bind_parent:
                body["msdyn_parenttask"] = Ref(f"task{parent}:{k}")
            return _dv("project task", "POST", "msdyn_projecttasks", f"task{wbs}:{k}", body)

        wbs = (("1", None), ("1.1", "1"), ("1.2", "1"), ("2", None), ("2.1", "2"))
        chunks: list[Chunk]
        if not self.adv:
            chunks = [[header], *([_with(f, msdyn_salesorder=contract)] for f in funding), [project],
                      *([task(w, p)] for w, p in wbs),
                      [line("tm", 1, 192350000, "Consulting", True)], [line("fixed", 2, 192350001, "Go-live", True)],
                      [milestone("m1", 1, True)], [milestone("m2", 2, True)]]
        else:
            before = [*([f] for f in funding), [header],
                      *([_dv("funding source", "PATCH", f.table, _row(f), {"msdyn_salesorder": contract})]
                        for f in funding),
                      [milestone("m1", 1, False)],
                      [line("fixed", 2, 192350001, "Go-live", False)], [line("tm", 1, 192350000, "Consulting", False)],
                      [_dv("milestone", "PATCH", "msdyn_contractlinescheduleofvalues", h["m1"],
                           {"msdyn_contractlineid": Ref(h["fixed"])})],
                      [milestone("m2", 2, True)]]
            after = [[project],
                     *([_dv("contract line", "PATCH", "salesorderdetails", h[n], {"msdyn_project": Ref(h["project"])})]
                       for n in ("tm", "fixed")),
                     [task("1.1", "1", bind_parent=False)], [task("1", None)],
                     [_dv("project task", "PATCH", "msdyn_projecttasks", f"task1.1:{k}",
                          {"msdyn_parenttask": Ref(f"task1:{k}")})],
                     [task("2", None)], [task("2.1", "2")], [task("1.2", "1")]]
            chunks = before + [[_late(op) for op in c] if late else c for c in after]
        edits: list[Chunk] = [] if i % 4 == 1 else self._time(k, number, cur, h["project"], h["tm"], company.code)
        if edits:  # the approved time billed: a proforma invoice on the contract, confirmed
            edits.append(self._invoice(k, co, cur, contract, Ref(f"account:{company.code}/{payers[0]}")))
        if i % 4 != 1 and company.code in self._procuring():
            edits += self._expense_report(i, number, company.code, cur)
            edits += self._vendor_invoice(i, number, company.code, cur)
        edits += [
            [_dv("project", "PATCH", "msdyn_projects", h["project"], {"msdyn_subject": f"Implementation {number} rev {r}"})
             for r in range(1, (5 if self.adv else 1) + 1)],
            [_dv("contract line", "PATCH", "salesorderdetails", h["tm"],
                 {"priceperunit": amount * 1.1, "extendedamount": amount * 1.1})],
            [_dv("contract", "PATCH", "salesorders", h["contract"], {"name": f"Contract {k} (signed)"})],
            [_dv("project task", "DELETE", "msdyn_projecttasks", f"task1.2:{k}")],
            [_dv("milestone", "DELETE", "msdyn_contractlinescheduleofvalues", h["m2"])],
        ]
        if i % 4 == 1:  # torn down, children before parents
            edits += [[_dv(kind, "DELETE", table, row)] for kind, table, row in (
                ("milestone", "msdyn_contractlinescheduleofvalues", h["m1"]),
                ("contract line", "salesorderdetails", h["tm"]), ("contract line", "salesorderdetails", h["fixed"]),
                *(("funding source", "msdyn_projectcontractsplitbillingrules", _row(f)) for f in funding),
                ("project task", "msdyn_projecttasks", f"task2.1:{k}"),
                ("project task", "msdyn_projecttasks", f"task1.1:{k}"),
                ("project task", "msdyn_projecttasks", f"task2:{k}"), ("project task", "msdyn_projecttasks", f"task1:{k}"),
                ("project", "msdyn_projects", h["project"]), ("contract", "salesorders", h["contract"]))]
        elif i % 2 == 0:
            edits.append([_dv("project", "PATCH", "msdyn_projects", h["project"], {"statecode": 1})])
        if late:
            edits = [[_late(op) for op in c] for c in edits]
        return chunks + edits


    def _time(self, k: str, number: str, currency: str, project: str, line: str, company: str) -> list[Chunk]:
        """The team on task 2.1 of an open project: an hour estimate, a material estimate (its
        cost and sales lines) of a product released in the company when Dataverse has one, and
        a day of time on the T&M line, approved (an approved entry can no longer change: one chunk)."""
        if self.team is None:
            return []
        team, task = self.team, Ref(f"task2.1:{k}")
        people = {"msdyn_bookableresource": Ref(team.resource), "msdyn_resourcecategory": Ref(team.role)}
        cost, sales = float(self.rng.randrange(40, 90)), float(self.rng.randrange(100, 200))
        assignment = _dv("resource assignment", "POST", "msdyn_resourceassignments", f"assignment:{k}", {
            "msdyn_projectid": Ref(project), "msdyn_taskid": task, "msdyn_bookableresourceid": Ref(team.resource),
            "msdyn_resourcecategory": Ref(team.role), "msdyn_hours": 40.0, "msdyn_plannedcost": 40 * cost,
            "msdyn_plannedsales": 40 * sales, "msdyn_scheduledstart": "2027-01-11",
            "msdyn_scheduledend": "2027-01-15", "transactioncurrencyid": currency})
        entry = _dv("time entry", "POST", "msdyn_timeentries", f"time:{k}", {
            "msdyn_project": Ref(project), "msdyn_projecttask": task, **people,
            "msdyn_transactioncategory": Ref(team.category), "msdyn_salescontractline": Ref(line),
            "msdyn_date": "2027-01-11", "msdyn_duration": 480, "msdyn_entrystatus": ENTRY_DRAFT,
            "msdyn_description": f"Sprint work on {number}", "msdyn_costprice": cost, "msdyn_salesprice": sales,
            "transactioncurrencyid": currency})
        approve = Op("time entry", "dataverse", "POST", "msdyn_timeentries", row=Ref(f"time:{k}"),
                     action="msdyn_ApproveTimeEntry")
        product = min((p for c, p in self.world.products if c == company), default=None)
        material = [] if product is None else [[_dv("material estimate", "POST", "msdyn_estimatelines", f"{side}:{k}", {
            "msdyn_project": Ref(project), "msdyn_task": task, "msdyn_transactioncategory": Ref(team.category),
            "msdyn_product": Ref(f"product:{product}"), "msdyn_transactionclassification": 192350002,
            "msdyn_transactiontypecode": code, "msdyn_billingtype": 192350001, "msdyn_quantity": 4.0,
            "msdyn_price": price, "msdyn_documentdate": "2027-01-11", "transactioncurrencyid": currency})
            for side, code, price in (("material-cost", 192350000, cost), ("material-sales", 192350005, sales))]]
        return [[assignment], *material, [entry, approve]]


    def _expense_report(self, i: int, number: str, company: str, currency: str) -> list[Chunk]:
        """An expense report on task 2.1 of the project (two categories) and a line of no
        project, entered, approved, then posted: Finance exports the project lines
        (``ProjectExpenses``). The worker is a person Dataverse has a bookable resource for in
        the company, when there is one (the expense line binds it)."""
        report = f"{self.p}-E{i + 1:04d}"
        worker = min((n for c, n in self.world.workers if c == company), default=None)
        categories = [f"{self.p}-X{n}" for n in range(1, min(2, len(self.world.expense_categories)) + 1)]
        lines = [{"ProjectId": number, "ActivityNumber": "2.1", "ExpenseCategoryId": category}
                 for category in categories] + [{"ExpenseCategoryId": categories[0]}]
        entered = [_fo("expense line", "POST", "ExpenseReportLines", {
            "dataAreaId": company, "ExpenseNumber": report, "LineNum": n, "Worker": worker, **line,
            "Date": "2027-01-12", "Amount": float(self.rng.randrange(50, 900)), "Currency": currency,
            "NonRecoverableTax": float(self.rng.randrange(0, 40)), "Status": "Draft"},
            awaits=("ProjectsV2", {"dataAreaId": company, "ProjectId": number}) if n == 1 else None)
            for n, line in enumerate(lines, 1)]
        approved = [_fo("expense line", "PATCH", "ExpenseReportLines", {"Status": "Approved"},
                        {"dataAreaId": company, "ExpenseNumber": report, "LineNum": n})
                    for n in range(1, len(lines) + 1)]
        posted = _fo("expense report", "POST", "ExpenseReportLines", {"dataAreaId": company, "ExpenseNumber": report},
                     action="PostExpenseReport")
        return [entered, [*approved, posted]]

    def _vendor_invoice(self, i: int, number: str, company: str, currency: str) -> list[Chunk]:
        """A pending vendor invoice from a new vendor, for a new released product in a new unit:
        two project lines on task 2.1 (category ``<p>-MAT``) and one line of no project, posted
        (Finance exports the header and the project lines). Natural order sets up the vendor,
        unit and product first; adversarial posts the invoice before the unit and the product
        exist (the vendor only just before: Finance refuses an unknown vendor), so the
        invoice's lines wait in the pipeline until they arrive."""
        vendor, unit, item = f"{self.p}-PV{i + 1:04d}", f"{self.p}M{i + 1}", f"{self.p}-M{i + 1:04d}"
        invoice = f"{self.p}-VI{i + 1:04d}"
        price = float(self.rng.randrange(10, 300))
        made_vendor = [_fo("vendor", "POST", "VendorsV2", {
            "dataAreaId": company, "VendorAccountNumber": vendor, "Name": f"Supplier {vendor}",
            "VendorGroupId": "10", "CurrencyCode": currency})]
        made_unit = [_fo("unit", "POST", "Units", {
            "UnitSymbol": unit, "Description": f"Box of {self.p}", "UnitClass": "Quantity", "DecimalPrecision": 0})]
        made_item = [_fo("released product", "POST", "ReleasedProductsV2", {
            "dataAreaId": company, "ItemNumber": item, "ProductNumber": item, "ProductName": f"Material {item}",
            "ProductType": "Item", "SalesUnitSymbol": unit, "SalesPrice": price * 1.5, "UnitCost": price})]
        lines: list[dict[str, Any]] = [
            {"ProjectId": number, "ActivityNumber": "2.1", "ProjectCategoryId": f"{self.p}-MAT", "ItemId": item,
             "Unit": unit, "Quantity": float(q), "UnitPrice": price, "Amount": q * price}
            for q in (self.rng.randrange(1, 10), self.rng.randrange(1, 10))]
        lines.append({"Quantity": 1.0, "UnitPrice": 75.0, "Amount": 75.0})  # office supplies, no project
        entered = [_fo("vendor invoice", "POST", "PendingVendorInvoices", {
            "dataAreaId": company, "InvoiceId": invoice, "VendorAccount": vendor, "InvoiceNumber": f"INV-{invoice}",
            "InvoiceDate": "2027-01-15", "Currency": currency},
            awaits=("ProjectsV2", {"dataAreaId": company, "ProjectId": number})),
            *(_fo("vendor invoice line", "POST", "PendingVendorInvoiceLines", {
                "dataAreaId": company, "ExternalInvoiceLine": f"{invoice}-{n}", "InvoiceId": invoice,
                "LineNumber": n, **line}) for n, line in enumerate(lines, 1))]
        posted = [_fo("vendor invoice", "POST", "PendingVendorInvoices", {},
                      {"dataAreaId": company, "InvoiceId": invoice}, action="Post")]
        if self.adv:
            return [made_vendor, entered, posted, made_unit, made_item]
        return [made_vendor, made_unit, made_item, entered, posted]

    @staticmethod
    def _invoice(k: str, company: Ref, currency: str, contract: Ref, customer: Ref) -> Chunk:
        """A proforma invoice for the contract's unbilled time, confirmed (Dataverse bills the
        unbilled-sales actuals: billed-sales actuals and their connections)."""
        draft = _dv("invoice", "POST", "invoices", f"invoice:{k}", {
            "invoicenumber": f"{k}-INV", "name": f"Proforma {k}", "customerid": customer, "salesorderid": contract,
            "msdyn_owningcompany": company, "transactioncurrencyid": currency, "statuscode": 1})
        return [draft, Op("invoice", "dataverse", "POST", "invoices", row=Ref(f"invoice:{k}"),
                          action="msdyn_ConfirmInvoice")]


def _row(op: Op) -> str:
    assert op.row is not None
    return op.row.handle


def _with(op: Op, **binds: Ref) -> Op:
    return replace(op, body={**op.body, **binds})


def _late(op: Op) -> Op:
    return replace(op, late=True)


_CURRENCIES = ("USD", "EUR", "GBP", "CAD")
_FIRST = ("Alice", "Bob", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ines", "Jonas")
_LAST = ("Adams", "Brown", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Huang", "Ito", "Jensen")
_CATEGORIES = ("Design", "Development", "Travel", "Hardware", "Training", "Support")
_ROLES = ("Solution Architect", "Developer", "Consultant", "Tester", "Project Manager")
_TASKS = {"1": "Design", "1.1": "Workshops", "1.2": "Specification", "2": "Build", "2.1": "Sprint 1"}
ENTRY_DRAFT = 192350000  # msdyn_entrystatus


def plan(world: World, seed: int, size: SizeName, order: Order) -> list[Op]:
    """The run's requests, in order. Natural: finance, then setup, then contracts, each unit
    whole; adversarial: the units' chunks drawn at random (seeded), so companies interleave."""
    planner = _Planner(world, seed, SIZES[size], order is Order.adversarial)
    units = [*planner.finance_units(), *planner.setup_units(), *planner.contract_units()]
    if order is Order.natural:
        return [*planner.prelude, *(op for unit in units for chunk in unit for op in chunk)]
    ops: list[Op] = list(planner.prelude)
    queues = [list(u) for u in units if u]
    while queues:
        queue = planner.rng.choice(queues)
        ops.extend(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return ops


def summary(done: Iterable[Op]) -> str:
    """``contract 2 created 3 updated, ...``: changes per kind, in first-seen order."""
    counts = Counter((op.kind, op.verb) for op in done)
    kinds = dict.fromkeys(kind for kind, _ in counts)
    return ", ".join(kind + " " + " ".join(f"{counts[kind, verb]} {verb}" for verb in dict.fromkeys((*VERBS.values(), *ACTIONS.values()))
                                           if counts[kind, verb]) for kind in kinds)
