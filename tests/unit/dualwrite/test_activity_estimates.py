"""The scenario's material estimates (`dualwrite.activity`): beside each open project's hour
estimate, a cost and a sales line of a product Dataverse holds as released in the project's
company; a company without one gets none (domain.md 1.2 "Material")."""

from __future__ import annotations

import pytest

from dualwrite.activity import Company, Op, Order, Ref, SizeName, World, plan

pytestmark = pytest.mark.unit

WORLD = World(dataverse=(Company("demf", "EUR", ("DE-001",)), Company("usmf", "USD", ("US-001", "US-002"))),
              finance=(("demf", "EUR"), ("usmf", "USD")), resources=("Alice Adams",), roles=("Developer",),
              dataverse_categories=("TCN-0000001000-B2289",),
              time_categories=(("TCN-0000001000-B2289", "Design"),),
              products=(("usmf", "usmf-D0001"), ("usmf", "usmf-S0001")))


def _project(op: Op) -> str:
    ref = op.body["msdyn_project"]
    assert isinstance(ref, Ref)
    return ref.handle


@pytest.mark.parametrize("order", list(Order))
def test_each_open_project_of_a_company_with_a_product_gets_a_material_cost_and_sales_line(order: Order) -> None:
    ops = plan(WORLD, 3, SizeName.medium, order)
    lines = [op for op in ops if op.table == "msdyn_estimatelines"]
    usmf = {op.row.handle for op in ops if op.table == "msdyn_projects" and op.method == "POST" and op.row
            and op.body.get("msdyn_owningcompany") == Ref("company:usmf")}
    estimated = {op.body["msdyn_projectid"] for op in ops if op.table == "msdyn_resourceassignments"}
    in_usmf = {p for p in usmf if Ref(p) in estimated}  # the open ones (the others get no time)
    assert in_usmf and len(in_usmf) < len(estimated)  # demf's projects too, without a product there
    assert sorted(_project(op) for op in lines) == sorted([*in_usmf, *in_usmf])
    for project in in_usmf:
        pair = [op for op in lines if _project(op) == project]
        assert sorted(op.body["msdyn_transactiontypecode"] for op in pair) == [192350000, 192350005]
        assert {(op.body["msdyn_transactionclassification"], op.body["msdyn_product"], op.body["msdyn_task"],
                 op.body["msdyn_documentdate"], op.body["msdyn_quantity"]) for op in pair} == {
            (192350002, Ref("product:usmf-D0001"), Ref(f"task2.1:{project.split(':', 1)[1]}"), "2027-01-11", 4.0)}
