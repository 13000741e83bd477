"""`dualwrite scenario`: its options, the plan it makes (`dualwrite.activity.plan`, no I/O), and
how `dualwrite.activity_run.run` holds the late ops back (a recording fake session).

The plan is checked against what Dataverse requires of any order (a bind names a row that exists,
a row is deleted only once nothing bound to it is left) and against what each order promises:
natural creates every parent before its children; adversarial creates children first, bursts,
interleaves companies and holds a project back.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import groupby, pairwise
from typing import Any

import pytest
from typer.testing import CliRunner

from dualwrite import activity, activity_run, finance_jobs
from dualwrite.activity import Company, Op, Order, SizeName, World, plan, summary
from dualwrite.activity_run import run
from dualwrite.cli import app

pytestmark = pytest.mark.unit

WORLD = World(dataverse=(Company("demf", "EUR", ("DE-001",)), Company("usmf", "USD", ("US-001", "US-002")),
                         Company("empty", "USD", ())),
              finance=(("demf", "EUR"), ("usmf", "USD")))
KNOWN = {"company:demf", "company:usmf", "company:empty", "account:demf/DE-001", "account:usmf/US-001",
         "account:usmf/US-002"}
# ... with people and a category Finance imports time under (Design), not yet in Dataverse.
STAFFED = World(WORLD.dataverse, WORLD.finance, resources=("Bob Brown", "Alice Adams"),
                roles=("Consultant", "Developer"), dataverse_categories=("TCN-0000000001-AAAAA",),
                time_categories=(("TCN-0000001001-F322B", "Development"), ("TCN-0000001000-B2289", "Design")))
STAFF = {"resource:Alice Adams", "resource:Bob Brown", "known-role:Consultant", "known-role:Developer"}


def _first(ops: list[Op], pred: Callable[[Op], bool]) -> int:
    return next(i for i, op in enumerate(ops) if pred(op))


def _post(table: str, handle: str) -> Callable[[Op], bool]:
    return lambda op: op.method == "POST" and op.table == table and op.row is not None and op.row.handle == handle


# -- options -----------------------------------------------------------------------------------

def test_help_names_every_option() -> None:
    result = CliRunner().invoke(app, ["scenario", "--help"])
    assert result.exit_code == 0
    for option in ("--seed", "--rate", "--size", "--seconds", "--order", "adversarial", "large"):
        assert option in result.output


@pytest.mark.parametrize("args", [["--order", "random"], ["--size", "huge"], ["--rate", "-1"],
                                  ["--seed", "100000"], ["--seconds", "0"]])
def test_bad_option_values_are_usage_errors(args: list[str]) -> None:
    assert CliRunner().invoke(app, ["scenario", *args]).exit_code == 2


def test_options_reach_the_plan_and_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(activity_run, "read_world", lambda sessions: (WORLD, {}))

    def fake_run(ops: list[Op], sessions: object, ids: object, **kw: Any) -> list[Op]:
        seen.update(kw, ops=ops)
        return ops[:3]

    monkeypatch.setattr(activity_run, "run", fake_run)
    rounds: list[object] = []

    def fake_round(session: object, company: str | None = None) -> finance_jobs.JobRound:
        rounds.append(session)
        return finance_jobs.JobRound(imported=2, journals_posted=("PJ-000001",))

    monkeypatch.setattr(finance_jobs, "run_round", fake_round)
    result = CliRunner().invoke(app, ["scenario", "--seed", "5", "--rate", "4", "--size", "medium",
                                      "--seconds", "20", "--order", "adversarial"])
    assert result.exit_code == 0, result.output
    assert seen["ops"] == plan(WORLD, 5, SizeName.medium, Order.adversarial)
    assert (seen["seed"], seen["rate"], seen["seconds"], seen["late_s"]) == (5, 4.0, 20.0, 5.0)
    assert f"3 of {len(seen['ops'])} changes" in result.stdout
    # Finance's jobs ran once at the end of the run (the fake run took no time: no round before).
    assert len(rounds) == 1
    assert "finance jobs: 1 rounds, 2 actuals imported, 0 invalid, 1 journals posted" in result.stdout


# -- the plan ----------------------------------------------------------------------------------

@pytest.mark.parametrize("order", list(Order))
def test_same_seed_same_plan_other_seed_other_rows(order: Order) -> None:
    assert plan(WORLD, 7, SizeName.small, order) == plan(WORLD, 7, SizeName.small, order)
    assert plan(WORLD, 7, SizeName.small, order) != plan(WORLD, 8, SizeName.small, order)


@pytest.mark.parametrize("world", [WORLD, STAFFED], ids=["no-team", "team"])
@pytest.mark.parametrize("order", list(Order))
@pytest.mark.parametrize("size", list(SizeName))
def test_binds_name_live_rows_and_deletes_go_children_first(order: Order, size: SizeName, world: World) -> None:
    """What Dataverse enforces: a bind or an address names an existing row; and deletes go
    children before parents (no live row still bound to the deleted one)."""
    live = set(KNOWN) | (STAFF if world is STAFFED else set())
    bound: dict[str, dict[str, str]] = {}  # row -> column -> handle it is bound to
    for op in plan(world, 3, size, order):
        if op.system == "finance":
            continue
        assert op.row is not None
        assert set(op.binds()) <= live, op
        if op.method == "POST":
            live.add(op.row.handle)
        else:
            assert op.row.handle in live, op
        bound.setdefault(op.row.handle, {}).update(
            {k: v.handle for k, v in op.body.items() if isinstance(v, activity.Ref)})
        if op.method == "DELETE":
            children = [r for r in live if op.row.handle in bound.get(r, {}).values()]
            assert not children, (op, children)
            live.discard(op.row.handle)


def test_natural_creates_parents_first_adversarial_children_first() -> None:
    natural = plan(WORLD, 3, SizeName.small, Order.natural)
    adversarial = plan(WORLD, 3, SizeName.small, Order.adversarial)
    k = "S3-K0001"
    pairs = [  # (child, parent)
        (_post("msdyn_projectcontractsplitbillingrules", f"fs0:{k}"), _post("salesorders", f"contract:{k}")),
        (_post("salesorderdetails", f"tm:{k}"), _post("msdyn_projects", f"project:{k}")),
        (_post("msdyn_contractlinescheduleofvalues", f"m1:{k}"), _post("salesorderdetails", f"fixed:{k}")),
        (_post("msdyn_projecttasks", f"task1.1:{k}"), _post("msdyn_projecttasks", f"task1:{k}")),
    ]
    for child, parent in pairs:
        assert _first(natural, parent) < _first(natural, child)
        assert _first(adversarial, child) < _first(adversarial, parent)
    # ... and each such child is bound to its parent later.
    rebinds = {(op.table, op.row.handle if op.row else "") for op in adversarial
               if op.method == "PATCH" and op.binds()}
    assert {("msdyn_projectcontractsplitbillingrules", f"fs0:{k}"), ("salesorderdetails", f"tm:{k}"),
            ("msdyn_contractlinescheduleofvalues", f"m1:{k}"), ("msdyn_projecttasks", f"task1.1:{k}")} <= rebinds


def _contract_of(op: Op) -> str | None:
    handle = op.row.handle if op.row else ""
    return handle.split(":", 1)[1] if ":" in handle and "-K" in handle else None


def test_adversarial_interleaves_companies_bursts_and_holds_a_project_back() -> None:
    for order in Order:
        ops = plan(WORLD, 3, SizeName.medium, order)
        contracts = [c for c in map(_contract_of, ops) if c]
        # one contract's changes at a time (natural) or mixed with another's (adversarial)
        switches = sum(1 for a, b in pairwise(contracts) if a != b)
        distinct = len(set(contracts))
        if order is Order.natural:
            assert switches == distinct - 1
            assert not any(op.late for op in ops)
        else:
            assert switches > 3 * distinct
            late = [op for op in ops if op.late]
            assert late[0].table == "msdyn_projects" and late[0].method == "POST"
            finance_companies = [str(op.body["dataAreaId"]) for op in ops if op.table == "CustomersV3"
                                 and op.method == "POST"]
            assert finance_companies != sorted(finance_companies)
        # a burst: updates to one row back to back
        updates = [(op.table, op.row.handle if op.row else str(op.key)) if op.method == "PATCH" else i
                   for i, op in enumerate(ops)]
        assert max(sum(1 for _ in g) for _, g in groupby(updates)) == (
            5 if order is Order.adversarial else 1)


def test_every_kind_is_created_in_its_system() -> None:
    ops = plan(WORLD, 3, SizeName.small, Order.natural)
    created = {(op.system, op.table) for op in ops if op.method == "POST"}
    assert created == {
        ("finance", t) for t in ("LegalEntities", "Ledgers", "ExchangeRates", "CustomersV3", "VendorsV2",
                                 "Workers", "Units")} | {
        ("dataverse", t) for t in ("msdyn_transactioncategories", "bookableresourcecategories", "salesorders",
                                   "salesorderdetails", "msdyn_contractlinescheduleofvalues",
                                   "msdyn_projectcontractsplitbillingrules", "msdyn_projects",
                                   "msdyn_projecttasks")}
    assert any(op.table == "msdyn_projects" and op.body.get("statecode") == 1 for op in ops)


@pytest.mark.parametrize("order", list(Order))
def test_the_team_estimates_and_logs_approved_time_on_every_open_project(order: Order) -> None:
    ops = plan(STAFFED, 3, SizeName.medium, order)
    # Finance's Design category, unknown to Dataverse, is created there first with Finance's id.
    assert ops[0].table == "msdyn_transactioncategories" and dict(ops[0].body) == {
        "msdyn_integrationid": "TCN-0000001000-B2289", "msdyn_name": "Design", "statecode": 0}
    contracts = sorted({c for c in map(_contract_of, ops) if c})
    torn_down = {c for c in contracts if any(op.method == "DELETE" and op.table == "msdyn_projects"
                                             and _contract_of(op) == c for op in ops)}
    assert torn_down and len(torn_down) < len(contracts)
    for k in contracts:
        mine = [(i, op) for i, op in enumerate(ops) if _contract_of(op) == k]
        entries = [(i, op) for i, op in mine if op.table == "msdyn_timeentries"]
        assignments = [op for _, op in mine if op.table == "msdyn_resourceassignments"]
        if k in torn_down:  # Dataverse refuses to delete a project that carries actuals
            assert not entries and not assignments
            assert not [op for _, op in mine if op.table == "invoices"]
            continue
        (at, entry), (approved_at, approve) = entries
        assert entry.action is None and approve.action == "msdyn_ApproveTimeEntry"
        assert approve.row == entry.row and approved_at == at + 1  # approved straight away
        assert {k2: v.handle for k2, v in entry.body.items() if isinstance(v, activity.Ref)} == {
            "msdyn_project": f"project:{k}", "msdyn_projecttask": f"task2.1:{k}",
            "msdyn_bookableresource": "resource:Alice Adams", "msdyn_resourcecategory": "known-role:Developer",
            "msdyn_transactioncategory": "category:TCN-0000001000-B2289", "msdyn_salescontractline": f"tm:{k}"}
        [assignment] = assignments
        assert assignment.body["msdyn_taskid"] == activity.Ref(f"task2.1:{k}")
        closed = [i for i, op in mine if op.table == "msdyn_projects" and op.body.get("statecode") == 1]
        assert all(approved_at < i for i in closed)  # time is recorded only on an open project
        # ... and billed: a proforma invoice on the contract, confirmed after the approval.
        invoices = [(i, op) for i, op in mine if op.table == "invoices"]
        (made_at, draft), (confirmed_at, confirm) = invoices
        assert draft.body["salesorderid"] == activity.Ref(f"contract:{k}") and draft.body["statuscode"] == 1
        assert confirm.action == "msdyn_ConfirmInvoice" and confirm.row == draft.row
        assert approved_at < made_at and confirmed_at == made_at + 1


def test_a_category_dataverse_holds_is_used_as_it_is_and_no_team_means_no_time() -> None:
    known = World(STAFFED.dataverse, STAFFED.finance, STAFFED.resources, STAFFED.roles,
                  dataverse_categories=("TCN-0000001000-B2289",), time_categories=STAFFED.time_categories)
    ops = plan(known, 3, SizeName.small, Order.natural)
    assert not [op for op in ops if op.table == "msdyn_transactioncategories"
                and op.body.get("msdyn_integrationid") == "TCN-0000001000-B2289"]
    assert any(op.body.get("msdyn_transactioncategory") == activity.Ref("category:TCN-0000001000-B2289")
               for op in ops)
    for world in (WORLD, World(WORLD.dataverse, WORLD.finance, STAFFED.resources, STAFFED.roles)):
        assert not [op for op in plan(world, 3, SizeName.small, Order.natural)
                    if op.table in ("msdyn_timeentries", "msdyn_resourceassignments")]


def test_no_company_with_customers_is_a_typed_error() -> None:
    with pytest.raises(activity.NothingToWorkOn, match="no company with a customer account"):
        plan(World((Company("usmf", "USD", ()),), ()), 1, SizeName.small, Order.natural)


# -- the run -----------------------------------------------------------------------------------

class _Resp:
    def __init__(self, status: int = 204, entity: str = "") -> None:
        self.status_code, self.text = status, ""
        self.headers = {"OData-EntityId": entity} if entity else {}


class _Session:
    """Records requests; answers a Dataverse POST with a fresh entity id."""

    api_url, client_id = "http://api", "me"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def request(self, method: str, url: str, **kw: Any) -> _Resp:
        self.log.append(f"{method} {url}")
        n = len(self.log)
        return _Resp(entity=f"http://api/{url}(00000000-0000-0000-0000-{n:012d})" if method == "POST" else "")


def test_run_holds_late_ops_back_in_order_while_the_rest_goes_on() -> None:
    ops = [Op("a", "dataverse", "POST", "t1", row=activity.Ref("a")),
           Op("b", "dataverse", "POST", "t2", row=activity.Ref("b"), late=True),
           Op("c", "dataverse", "PATCH", "t2", {"x": activity.Ref("a")}, row=activity.Ref("b"), late=True),
           Op("d", "finance", "POST", "T3", {"k": 1})]
    log: list[str] = []
    session = _Session(log)
    done = run(ops, {"dataverse": session, "finance": session}, {}, seed=1, rate=0, seconds=None,  # type: ignore[dict-item]
               late_s=0.2)
    assert [op.kind for op in done] == ["a", "d", "b", "c"]
    assert log[:3] == ["POST t1", "POST T3", "POST t2"] and log[3].startswith("PATCH t2(")
    assert summary(done) == "a 1 created, d 1 created, b 1 created, c 1 updated"


def test_run_calls_a_bound_action_at_the_row_s_address_and_counts_it_as_approved() -> None:
    ops = [Op("time entry", "dataverse", "POST", "msdyn_timeentries", {"msdyn_duration": 480},
              row=activity.Ref("time:1")),
           Op("time entry", "dataverse", "POST", "msdyn_timeentries", row=activity.Ref("time:1"),
              action="msdyn_ApproveTimeEntry")]
    log: list[str] = []
    session = _Session(log)
    done = run(ops, {"dataverse": session, "finance": session}, {}, seed=1, rate=0, seconds=None,  # type: ignore[dict-item]
               late_s=0)
    assert log == ["POST msdyn_timeentries",
                   "POST msdyn_timeentries(00000000-0000-0000-0000-000000000001)/"
                   "Microsoft.Dynamics.CRM.msdyn_ApproveTimeEntry"]
    assert summary(done) == "time entry 1 created 1 approved"


# -- expenses and vendor invoices (domain.md 1.4, 1.5) ----------------------------------------

PROCURING = World(WORLD.dataverse, WORLD.finance, expense_categories=(
    ("TCN-0000001001-A1B2C-4", "Travel"), ("TCN-0000001010-E1F2A-4", "Hotel")),
    item_categories=(("TCN-0000001001-A1B2C-3", "Travel (Item)"), ("TCN-0000001002-C3D4E-3", "Materials (Item)")),
    workers=(("usmf", "000102"), ("usmf", "000101")))


@pytest.mark.parametrize("order", list(Order))
def test_finance_posts_expenses_and_vendor_invoices_on_open_projects_once_they_are_in_finance(order: Order) -> None:
    ops = plan(PROCURING, 3, SizeName.medium, order)
    setup = [op for op in ops if op.table in ("ExpenseCategories", "ProjectCategories")]
    assert ops[:len(setup)] == setup  # the accountant's setup comes before anything else
    assert {(op.body["dataAreaId"], op.body["CategoryId"], op.body["SharedCategoryId"]) for op in setup} == {
        (c, *pair) for c in ("demf", "usmf") for pair in (("S3-X1", "TCN-0000001010-E1F2A-4"),
                                                          ("S3-X2", "TCN-0000001001-A1B2C-4"),
                                                          ("S3-MAT", "TCN-0000001002-C3D4E-3"))}
    numbers = {op.body["msdyn_projectnumber"]: op for op in ops if op.table == "msdyn_projects" and op.method == "POST"}
    deleted = {op.row.handle for op in ops if op.table == "msdyn_projects" and op.method == "DELETE" and op.row}
    for number, created in numbers.items():
        on = [op for op in ops if number in (op.body.get("ProjectId"), op.awaits and op.awaits[1]["ProjectId"])]
        expense = [op for op in on if op.table == "ExpenseReportLines"]
        invoice = [op for op in on if op.table.startswith("PendingVendorInvoice")]
        assert created.row is not None
        if created.row.handle in deleted:
            assert not expense and not invoice
            continue
        # the first request on the project waits for it in Finance; then lines on task 2.1
        assert expense[0].awaits == ("ProjectsV2", {"dataAreaId": expense[0].body["dataAreaId"], "ProjectId": number})
        assert invoice[0].awaits == ("ProjectsV2", {"dataAreaId": invoice[0].body["dataAreaId"], "ProjectId": number})
        assert {op.body["ActivityNumber"] for op in expense + invoice[1:]} == {"2.1"}
        report = expense[0].body["ExpenseNumber"]
        mine = [(i, op) for i, op in enumerate(ops) if report in (op.body.get("ExpenseNumber"),
                                                                   (op.key or {}).get("ExpenseNumber"))]
        kinds = [(op.method, op.action, op.body.get("Status")) for _, op in mine]
        assert kinds == [("POST", None, "Draft")] * 3 + [("PATCH", None, "Approved")] * 3 + [
            ("POST", "PostExpenseReport", None)]  # entered (one line of no project), approved, posted
        assert [op.body.get("ProjectId") for _, op in mine[:3]] == [number, number, None]
        company = expense[0].body["dataAreaId"]
        assert {op.body["Worker"] for _, op in mine[:3]} == {"000101" if company == "usmf" else None}
        closed = [i for i, op in enumerate(ops) if op is not created and op.row == created.row
                  and op.body.get("statecode") == 1]
        assert all(mine[-1][0] < i for i in closed)  # posted while the project is open
        # the vendor invoice: posted with its bound action; its vendor, unit and product
        key = {"dataAreaId": company, "InvoiceId": invoice[0].body["InvoiceId"]}
        (post_at,) = [i for i, op in enumerate(ops) if op.key == key and op.action == "Post"]
        lines = [op.body for op in ops if op.table == "PendingVendorInvoiceLines"
                 and op.body["InvoiceId"] == key["InvoiceId"]]
        assert [bool(b.get("ProjectId")) for b in lines] == [True, True, False]
        made = {op.table: i for i, op in enumerate(ops) if op.method == "POST" and (
            op.body.get("VendorAccountNumber") == invoice[0].body["VendorAccount"]
            or op.body.get("UnitSymbol") == lines[0]["Unit"] or op.body.get("ItemNumber") == lines[0]["ItemId"])}
        header_at = ops.index(invoice[0])
        assert made["VendorsV2"] < header_at
        if order is Order.natural:
            assert max(made.values()) < header_at
        else:  # the unit and the product arrive only after the invoice was posted
            assert post_at < made["Units"] < made["ReleasedProductsV2"]


def test_no_expense_or_item_category_dataverse_holds_means_no_expenses_or_invoices() -> None:
    assert not [op for op in plan(WORLD, 3, SizeName.small, Order.natural) if op.table in (
        "ExpenseCategories", "ProjectCategories", "ExpenseReportLines", "PendingVendorInvoices")]


class _Finance(_Session):
    """Answers GETs of a row 404 until it has been asked `after` times."""

    def __init__(self, log: list[str], after: int) -> None:
        super().__init__(log)
        self.after = after

    def request(self, method: str, url: str, **kw: Any) -> _Resp:
        if method == "GET":
            self.log.append(f"GET {url}")
            self.after -= 1
            return _Resp(404 if self.after >= 0 else 200)
        return super().request(method, url, **kw)


def test_run_calls_finance_actions_on_the_set_or_the_row_after_the_row_it_awaits_is_there(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(activity_run, "POLL_S", 0.0)
    project = ("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-1"})
    ops = [Op("expense line", "finance", "POST", "ExpenseReportLines", {"ExpenseNumber": "E-1"}, awaits=project),
           Op("expense report", "finance", "POST", "ExpenseReportLines", {"dataAreaId": "usmf", "ExpenseNumber": "E-1"},
              action="PostExpenseReport"),
           Op("vendor invoice", "finance", "POST", "PendingVendorInvoices", {},
              key={"dataAreaId": "usmf", "InvoiceId": "VI-1"}, action="Post")]
    log: list[str] = []
    session = _Finance(log, after=2)
    done = run(ops, {"dataverse": session, "finance": session}, {}, seed=1, rate=0, seconds=None,  # type: ignore[dict-item]
               late_s=0)
    assert log == ["GET ProjectsV2(dataAreaId='usmf',ProjectId='P-1')"] * 3 + [
        "POST ExpenseReportLines", "POST ExpenseReportLines/Microsoft.Dynamics.DataEntities.PostExpenseReport",
        "POST PendingVendorInvoices(dataAreaId='usmf',InvoiceId='VI-1')/Microsoft.Dynamics.DataEntities.Post"]
    assert summary(done) == "expense line 1 created, expense report 1 posted, vendor invoice 1 posted"


def test_a_row_that_never_arrives_is_a_typed_error_unless_the_run_s_time_is_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(activity_run, "POLL_S", 0.01)
    ops = [Op("expense line", "finance", "POST", "ExpenseReportLines", {},
              awaits=("ProjectsV2", {"dataAreaId": "usmf", "ProjectId": "P-1"}))]
    sessions = {"dataverse": _Finance([], after=10**6), "finance": _Finance([], after=10**6)}
    with pytest.raises(activity_run.NotArrived, match=r"P-1.*is the pipeline running"):
        run(ops, sessions, {}, seed=1, rate=0, seconds=None, late_s=0, wait_s=0.05)  # type: ignore[arg-type]
    assert run(ops, sessions, {}, seed=1, rate=0, seconds=0.05, late_s=0, wait_s=60) == []  # type: ignore[arg-type]
