"""`streams.status.awaited`: the map that would bring what a parked change waits for (issue 12),
and `oldest_by_map`, the worker's gauge of the oldest parked change per map.

The waited-for keys are built by the real maps' lookups and dependencies, as the gate builds them.
"""

from __future__ import annotations

import pytest

from streams.maps import CUSTOMERS, PROJECT_TASKS, default_registry, present_fact
from streams.maps.actuals import ACTUALS
from streams.maps.expenses import PROJECT_EXPENSES
from streams.status import awaited, oldest_by_map, parked_entries
from topics import target_key

pytestmark = pytest.mark.unit

MAPS = default_registry()
COMPANY_GUID = "fa6c3d24-010e-5071-b3f7-0bcf3ddb1a96"


def test_a_present_lookup_of_a_dataverse_table_a_map_writes_names_that_map() -> None:
    # A customer waits for its legal entity in Dataverse, which the legal_entities map writes.
    waits = CUSTOMERS.lookup("company").fact_for("usmf")
    why = awaited(MAPS, waits)
    assert why.brought_by == ("legal_entities",)
    assert why.hint == "the legal_entities map brings it: run its initial sync or create the row"


def test_a_present_lookup_of_a_dataverse_table_no_map_writes_says_where_to_create_it() -> None:
    # A Finance expense line waits for its project in Dataverse: projects are born there.
    waits = PROJECT_EXPENSES.lookup("project").fact_for(
        "P-1", {"_msdyn_owningcompany_value": COMPANY_GUID})
    why = awaited(MAPS, waits)
    assert why.brought_by == ()
    assert why.hint == "no map brings it: create the row in dataverse (msdyn_projects)"


def test_a_key_of_a_finance_table_names_the_map_that_writes_it() -> None:
    # A task waits for its project in Finance (its dependency), and for the key the projects
    # map computed (its lookup).
    [project_dep, _parent] = PROJECT_TASKS.depends
    present = present_fact(target_key(project_dep.entity, {"dataAreaId": "usmf", "ProjectId": "P-1"}))
    assert awaited(MAPS, present).brought_by == ("projects",)
    assert awaited(MAPS, PROJECT_TASKS.lookup("project").fact_for("p-guid")).brought_by == ("projects",)


def test_a_transaction_category_is_brought_by_the_transaction_categories_map() -> None:
    category_dep = next(d for d in ACTUALS.depends if d.entity == "TransactionCategories")
    present = present_fact(target_key(category_dep.entity, {"CategoryId": "TCN-0000001000-D3B43"}))
    why = awaited(MAPS, present)
    assert why.brought_by == ("transaction_categories",)
    assert "the transaction_categories map brings it" in why.hint
    # The actual's lookup of the category's Finance key: the same map.
    assert awaited(MAPS, ACTUALS.lookup("category").fact_for("tc-guid")).brought_by == (
        "transaction_categories",)


def test_a_source_row_is_brought_by_the_map_writing_its_table_or_created_by_hand() -> None:
    # A project reads its customer's Dataverse row: the customers map writes accounts.
    customer = next(lk for lk in default_registry()["projects"].lookups if lk.name == "customer")
    assert awaited(MAPS, customer.fact_for("a-guid")).brought_by == ("customers",)
    # A child task reads its parent task's row: tasks are born in Dataverse.
    parent = PROJECT_TASKS.lookup("parent").fact_for("t-guid")
    assert awaited(MAPS, parent).hint == "no map brings it: create the row in dataverse (msdyn_projecttasks)"


def test_a_finance_row_no_map_writes_is_created_in_finance() -> None:
    # A contract header waits for its customer in Finance; the customers map only reads it there.
    present = present_fact(target_key("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "US-9"}))
    assert awaited(MAPS, present).hint == "no map brings it: create the row in finance (CustomersV3)"


def test_paused_maps_and_open_transactions_say_what_releases_them() -> None:
    assert awaited(MAPS, "paused:projects@2").hint == "map projects is paused: `dualwrite maps resume projects`"
    assert "TX_TIMEOUT_MS" in awaited(MAPS, "tx:dataverse:t-1").hint
    assert awaited(MAPS, "tx:dataverse:t-1").brought_by == ()


def test_oldest_by_map_is_zero_without_waits_and_ignores_deletes_never_written() -> None:
    table = {
        "present:ProjectsV2(ProjectId='P1',dataAreaId='usmf')": {"waiting": [
            {"id": "project_tasks:t2:3", "map": "project_tasks", "parked_ms": 9_000},
            {"id": "project_tasks:t1:1", "map": "project_tasks", "parked_ms": 4_000}]},
        "key:customers:c7": {"waiting": [
            {"id": "customers:c7:2", "map": "customers", "op": "delete", "source": {"id": "c7"},
             "parked_ms": 1_000}]},
    }
    ages = oldest_by_map(parked_entries(table.items(), now_ms=10_000), ["projects", "customers"])
    assert ages == {"projects": 0.0, "customers": 0.0, "project_tasks": 6.0}
