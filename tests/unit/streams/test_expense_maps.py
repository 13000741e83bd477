"""The expense maps (Finance -> Dataverse): an expense category and a posted expense line become
the Dataverse rows of their company, bound by GUID to what they reference, found through chained
`present` lookups; a reference not yet in Dataverse parks the row, naming the missing fact; the
worker learns the referenced Dataverse rows' presence from their own feeds."""

from __future__ import annotations

from typing import Any

import pytest

from dualwrite.reconcile import reconcile
from streams.maps import Lookup, TableMap, default_registry, present_fact, row_fact
from streams.maps.expenses import EXPENSE_CATEGORIES, PROJECT_EXPENSES
from streams.pending import Emit, Need, Pending
from streams.route import route_change
from streams.transform import Filtered, Mapped, NeedFacts, TransformError, transform
from streams.wire import FactMsg
from tests.unit.streams import rows
from topics import ChangeEvent, CommandSource, target_key

pytestmark = pytest.mark.unit

MAPS = default_registry()
USMF, DEMF = "c-usmf", "c-demf"
TC, PROJECT, TASK, CATEGORY, ALICE = "tc-guid", "p-guid", "t-guid", "ec-guid", "br-guid"


def present(table: str, **key: Any) -> str:
    return present_fact(target_key(table, key))


COMPANY_USMF = present("cdm_companies", cdm_companycode="usmf")
COMPANY_DEMF = present("cdm_companies", cdm_companycode="demf")
SHARED = row_fact("finance", "SharedCategories", "TCN-0000001001-A1B2C-4")
TC_PRESENT = present("msdyn_transactioncategories", msdyn_integrationid="TCN-0000001001-A1B2C")
PROJECT_PRESENT = present("msdyn_projects", msdyn_projectnumber="PRJ-1", _msdyn_owningcompany_value=USMF)
TASK_PRESENT = present("msdyn_projecttasks", msdyn_wbsid="1.1", _msdyn_project_value=PROJECT)
CATEGORY_PRESENT = present("msdyn_expensecategories", msdyn_categoryid="TRAVEL",
                           _msdyn_company_value=USMF)
ALICE_PRESENT = present("bookableresources", msdyn_personnelnumber="000101", _msdyn_company_value=USMF)
FACTS: dict[str, dict[str, Any]] = {
    COMPANY_USMF: {"target_id": USMF}, COMPANY_DEMF: {"target_id": DEMF},
    SHARED: {"TransactionCategoryId": "TCN-0000001001-A1B2C"}, TC_PRESENT: {"target_id": TC},
    PROJECT_PRESENT: {"target_id": PROJECT}, TASK_PRESENT: {"target_id": TASK},
    CATEGORY_PRESENT: {"target_id": CATEGORY}, ALICE_PRESENT: {"target_id": ALICE}}


def category(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "CategoryId": "TRAVEL", "Name": "Travel",
            "SharedCategoryId": "TCN-0000001001-A1B2C-4", "ExpenseType": "Travel", **extra}


def expense(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "ExpenseLineId": "EXP-1-1", "ExpenseNumber": "EXP-1",
            "Worker": "000101", "ProjectId": "PRJ-1", "ActivityNumber": "1.1",
            "ExpenseCategoryId": "TRAVEL", "TransactionDate": "2026-11-04T12:00:00Z",
            "Quantity": 1.0, "Amount": 212.5, "SalesTaxAmount": 12.5, "Currency": "USD",
            "Voucher": "EXV-000001", **extra}


def mapped(out: object) -> Mapped:
    assert isinstance(out, Mapped), out
    return out


def pending(map_name: str, row: dict[str, Any]) -> Pending:
    source = CommandSource(system="finance", table=MAPS[map_name].source.table, id="usmf|x",
                           version=5, ts_ms=1_000)
    return Pending(id=f"{map_name}:usmf|x:5", map=map_name, op="upsert", row=row, source=source,
                   born_ms=0)


def test_expense_category_is_written_for_its_company_bound_to_its_transaction_category() -> None:
    out = mapped(transform(EXPENSE_CATEGORIES, category(), FACTS))
    assert (out.entity, out.key) == ("msdyn_expensecategories",
                                     {"msdyn_categoryid": "TRAVEL", "_msdyn_company_value": USMF})
    assert out.fields == {"msdyn_categoryid": "TRAVEL", "msdyn_name": "Travel",
                          "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({TC})",
                          "msdyn_company@odata.bind": f"/cdm_companies({USMF})"}
    assert out.readable["_msdyn_transactioncategory_value"] == TC
    # The same category of another legal entity is another Dataverse row, in that company.
    other = mapped(transform(EXPENSE_CATEGORIES, category(dataAreaId="demf"), FACTS))
    assert other.key == {"msdyn_categoryid": "TRAVEL", "_msdyn_company_value": DEMF}
    assert other.record_key != out.record_key


def test_expense_category_waits_for_company_shared_category_then_transaction_category() -> None:
    waited, step = rows.walk(pending("expense_categories", category()), FACTS, MAPS)
    assert waited == [COMPANY_USMF, SHARED, TC_PRESENT] and isinstance(step, Emit)
    # A transaction category not in Dataverse (Finance-only): parked for it, named.
    missing = {k: v for k, v in FACTS.items() if k != TC_PRESENT}
    _, step = rows.walk(pending("expense_categories", category()), missing, MAPS)
    assert step == Need(TC_PRESENT)
    # The chained lookup is not asked before the shared category is known.
    assert transform(EXPENSE_CATEGORIES, category(), {COMPANY_USMF: FACTS[COMPANY_USMF]}) == \
        NeedFacts((SHARED,))


def test_expense_category_without_its_shared_category_is_filtered() -> None:
    assert isinstance(transform(EXPENSE_CATEGORIES, category(SharedCategoryId=""), FACTS), Filtered)


def test_posted_expense_line_is_written_with_every_reference_bound() -> None:
    out = mapped(transform(PROJECT_EXPENSES, expense(), FACTS))
    assert (out.entity, out.key) == ("msdyn_expenses", {"msdyn_externalexpenseid": "EXP-1-1",
                                                        "_msdyn_company_value": USMF})
    assert out.fields == {
        "msdyn_externalexpenseid": "EXP-1-1",
        "msdyn_project@odata.bind": f"/msdyn_projects({PROJECT})",
        "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({TASK})",
        "msdyn_expensecategory@odata.bind": f"/msdyn_expensecategories({CATEGORY})",
        "msdyn_bookableresource@odata.bind": f"/bookableresources({ALICE})",
        "msdyn_transactiondate": "2026-11-04", "msdyn_quantity": 1.0, "msdyn_amount": 212.5,
        "msdyn_salestaxamount": 12.5, "transactioncurrencyid": "USD",
        "msdyn_company@odata.bind": f"/cdm_companies({USMF})"}
    assert {out.readable[c] for c in ("_msdyn_project_value", "_msdyn_projecttask_value",
                                      "_msdyn_expensecategory_value", "_msdyn_bookableresource_value")} == \
        {PROJECT, TASK, CATEGORY, ALICE}


def test_expense_line_waits_for_company_project_task_category_and_resource_in_order() -> None:
    waited, step = rows.walk(pending("project_expenses", expense()), FACTS, MAPS)
    assert waited == [COMPANY_USMF, PROJECT_PRESENT, TASK_PRESENT, CATEGORY_PRESENT, ALICE_PRESENT]
    assert isinstance(step, Emit)
    for missing in (PROJECT_PRESENT, TASK_PRESENT, CATEGORY_PRESENT, ALICE_PRESENT):
        _, step = rows.walk(pending("project_expenses", expense()),
                            {k: v for k, v in FACTS.items() if k != missing}, MAPS)
        assert step == Need(missing), missing


def test_project_of_another_company_is_not_taken() -> None:
    # Project PRJ-1 exists in usmf only: a demf line waits for demf's PRJ-1, never binds usmf's.
    _, step = rows.walk(pending("project_expenses", expense(dataAreaId="demf")), FACTS, MAPS)
    assert step == Need(present("msdyn_projects", msdyn_projectnumber="PRJ-1",
                                _msdyn_owningcompany_value=DEMF))


def test_expense_line_without_task_or_worker_binds_none_and_waits_for_none() -> None:
    facts = {k: v for k, v in FACTS.items() if k not in (TASK_PRESENT, ALICE_PRESENT)}
    out = mapped(transform(PROJECT_EXPENSES, expense(ActivityNumber="", Worker=None), facts))
    assert out.fields["msdyn_projecttask@odata.bind"] is None
    assert out.fields["msdyn_bookableresource@odata.bind"] is None


def test_expense_line_bad_values_are_refused_or_filtered() -> None:
    assert isinstance(transform(PROJECT_EXPENSES, expense(ProjectId=None), FACTS), Filtered)
    with pytest.raises(TransformError, match="ActivityNumber"):
        transform(PROJECT_EXPENSES, expense(ActivityNumber=["1.1"]), FACTS)
    # A referenced fact holding a list names no row: refused, never waited on for ever.
    with pytest.raises(TransformError, match="_msdyn_owningcompany_value"):
        transform(PROJECT_EXPENSES, expense(), {**FACTS, COMPANY_USMF: {"target_id": [USMF]}})


def test_dataverse_rows_the_expense_maps_bind_yield_presence_with_their_guid() -> None:
    event = ChangeEvent.model_validate({
        "before": None, "op": "c", "ts_ms": 1,
        "after": {"msdyn_projectid": PROJECT, "msdyn_projectnumber": "PRJ-1",
                  "_msdyn_owningcompany_value": USMF},
        "source": {"system": "dataverse", "table": "msdyn_projects", "version": "7", "ts_ms": 1}})
    routed = route_change(MAPS, "dataverse", "msdyn_projects", PROJECT, event, now_ms=1)
    facts = {key: msg.value for key, msg in routed.messages if isinstance(msg, FactMsg)}
    assert facts[PROJECT_PRESENT] == {"target_id": PROJECT}
    # An update of a project whose presence the worker knows sends nothing new to the gate.
    known = {PROJECT_PRESENT: {"target_id": PROJECT}}
    again = route_change(MAPS, "dataverse", "msdyn_projects", PROJECT, event, now_ms=1, known=known.get)
    assert PROJECT_PRESENT not in [key for key, _msg in again.messages]
    gone = ChangeEvent.model_validate({**event.model_dump(), "op": "d", "after": None,
                                       "before": event.after})
    deleted = route_change(MAPS, "dataverse", "msdyn_projects", PROJECT, gone, now_ms=1, known=known.get)
    assert [msg.value for key, msg in deleted.messages if isinstance(msg, FactMsg) and key == PROJECT_PRESENT] == [None]
    tables = set(MAPS.cdc_tables())
    assert {("finance", "ExpenseCategories"), ("finance", "SharedCategories"),
            ("finance", "ProjectExpenses"), ("dataverse", "msdyn_expensecategories"),
            ("dataverse", "msdyn_expenses"), ("dataverse", "bookableresources")} <= tables
    names = [m.name for m in MAPS.maps]
    assert names.index("transaction_categories") < names.index("expense_categories") < \
        names.index("project_expenses") < names.index("actuals")


def test_a_chained_lookup_must_read_an_earlier_lookup() -> None:
    with pytest.raises(ValueError, match="not earlier lookups"):
        TableMap.model_validate({**EXPENSE_CATEGORIES.model_dump(),
                                 "lookups": [lk.model_dump() for lk in reversed(EXPENSE_CATEGORIES.lookups)]})
    with pytest.raises(ValueError, match="'also' key fields need ref 'present'"):
        Lookup(name="x", column="c", ref="row", table="t", also=(("k", "company", "target_id"),))


class Rows:
    """Both systems' rows as reconcile reads them (by table name)."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]]) -> None:
        self.tables = tables

    def rows(self, system: str, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])

    def key_fields(self, table: str) -> tuple[str, ...]:
        return {"ProjectExpenses": ("dataAreaId", "ExpenseLineId")}.get(table, ("dataAreaId",))


def test_reconcile_resolves_the_dataverse_rows_an_expense_line_binds_as_the_worker_does() -> None:
    """The project, task and resource come from tables no map writes: reconcile finds them by the
    keys the worker's presence facts use, so a written line is in sync, not unresolved."""
    written = mapped(transform(PROJECT_EXPENSES, expense(), FACTS))
    target = {"msdyn_expenseid": "x-guid", **written.readable, "_msdyn_company_value": USMF}
    tables = Rows({
        "ProjectExpenses": [expense()],
        "cdm_companies": [{"cdm_companyid": USMF, "cdm_companycode": "usmf"}],
        "msdyn_projects": [{"msdyn_projectid": PROJECT, "msdyn_projectnumber": "PRJ-1",
                            "_msdyn_owningcompany_value": USMF}],
        "msdyn_projecttasks": [{"msdyn_projecttaskid": TASK, "_msdyn_project_value": PROJECT,
                                "msdyn_wbsid": "1.1"}],
        "msdyn_expensecategories": [{"msdyn_expensecategoryid": CATEGORY, "msdyn_categoryid": "TRAVEL",
                                     "_msdyn_company_value": USMF}],
        "bookableresources": [{"bookableresourceid": ALICE, "msdyn_personnelnumber": "000101",
                               "_msdyn_company_value": USMF}],
        "msdyn_expenses": [target]})
    (report,) = reconcile(MAPS, tables, ["project_expenses"])
    assert (report.in_sync, report.unresolved, report.different) == ([written.record_key], [], []), report
