"""Reconcile's comparison on hand-built rows: each outcome names exactly the keys it should.

The maps here are test-only (reconcile must work for any `TableMap`): a Finance-mastered,
company-specific customer map whose company comes from a ``present`` lookup, a Dataverse project
map with ``row`` lookups and a filter, a task map with a ``key`` lookup, and a fan-out map.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dualwrite.reconcile import Facts, expect, reconcile, report_json
from streams.maps import Condition, Endpoint, FanOut, FieldMap, Lookup, MapRegistry, TableMap
from topics import System

pytestmark = pytest.mark.unit

COMPANIES = TableMap(
    name="t_companies",
    source=Endpoint(system="finance", table="LegalEntities", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="cdm_companies", primary_key="cdm_companyid",
                    company="cdm_companycode"),
    key=(FieldMap(target="cdm_companycode", source="dataAreaId", direction="to_dataverse"),),
    fields=(FieldMap(target="cdm_name", source="Name", direction="to_dataverse"),),
    target_id_column="cdm_companyid",
)
CUSTOMERS = TableMap(
    name="t_customers",
    source=Endpoint(system="finance", table="CustomersV3", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="accounts", primary_key="accountid",
                    company_lookup="_msdyn_company_value"),
    key=(FieldMap(target="accountnumber", source="CustomerAccount", direction="to_dataverse"),
         FieldMap(target="_msdyn_company_value", lookup="company", lookup_field="target_id",
                  direction="to_dataverse", in_fields=False)),
    fields=(FieldMap(target="name", source="Name", direction="both"),
            FieldMap(target="msdyn_company@odata.bind", lookup="company", lookup_field="target_id",
                     template="/cdm_companies({})", read_as="_msdyn_company_value",
                     direction="to_dataverse")),
    lookups=(Lookup(name="company", column="dataAreaId", ref="present", table="cdm_companies",
                    key_field="cdm_companycode"),),
    filter=(Condition(column="Blocked", op="ne", value="All"),),
    target_id_column="accountid",
)
PROJECTS = TableMap(
    name="t_projects",
    source=Endpoint(system="dataverse", table="msdyn_projects", primary_key="msdyn_projectid"),
    target=Endpoint(system="finance", table="ProjectsV2", company="dataAreaId"),
    key=(FieldMap(target="dataAreaId", lookup="company", lookup_field="cdm_companycode"),
         FieldMap(target="ProjectId", source="msdyn_projectnumber")),
    fields=(FieldMap(target="ProjectName", source="msdyn_subject"),
            FieldMap(target="ProjectStage", source="statecode",
                     value_map=((0, "InProcess"), (1, "Finished"))),
            FieldMap(target="ProjectedStartDate", source="msdyn_scheduledstart", kind="date")),
    lookups=(Lookup(name="company", column="_msdyn_owningcompany_value", ref="row",
                    table="cdm_companies", fields=("cdm_companycode",)),),
    filter=(Condition(column="msdyn_projectnumber", op="present"),
            Condition(column="msdyn_template", op="ne", value=True)),
    target_id_column="RecId",
)
TASKS = TableMap(
    name="t_tasks",
    source=Endpoint(system="dataverse", table="msdyn_projecttasks", primary_key="msdyn_projecttaskid"),
    target=Endpoint(system="finance", table="ProjectTasks", company="dataAreaId"),
    key=(FieldMap(target="dataAreaId", lookup="project", lookup_field="dataAreaId"),
         FieldMap(target="ProjectId", lookup="project", lookup_field="ProjectId"),
         FieldMap(target="Task", source="msdyn_wbsid")),
    fields=(FieldMap(target="Name", source="msdyn_subject"),),
    lookups=(Lookup(name="project", column="_msdyn_project_value", ref="key", table="t_projects"),),
)
ROLES = TableMap(
    name="t_roles",
    source=Endpoint(system="dataverse", table="bookableresourcecategories",
                    primary_key="bookableresourcecategoryid"),
    target=Endpoint(system="finance", table="ResourceRoles", company="dataAreaId"),
    key=(FieldMap(target="dataAreaId", source="dataAreaId"), FieldMap(target="RoleId", source="name")),
    fields=(FieldMap(target="Name", source="name"),),
    fan_out=FanOut(system="dataverse", table="cdm_companies", column="cdm_companycode", fill="dataAreaId"),
)
REGISTRY = MapRegistry((COMPANIES, CUSTOMERS, PROJECTS, TASKS, ROLES))

US, DE = "guid-us", "guid-de"
KEYS = {"LegalEntities": ("dataAreaId",), "CustomersV3": ("dataAreaId", "CustomerAccount")}


class Rows:
    """`dualwrite.reconcile.Tables` over rows built here ($metadata keys included)."""

    def __init__(self, **tables: list[dict[str, Any]]) -> None:
        self.tables = tables

    def rows(self, system: System, table: str) -> Sequence[dict[str, Any]]:
        return self.tables.get(table, [])

    def key_fields(self, table: str) -> tuple[str, ...]:
        return KEYS.get(table, ())


def dv_companies() -> list[dict[str, Any]]:
    return [{"cdm_companyid": US, "cdm_companycode": "usmf", "cdm_name": "Contoso USA"},
            {"cdm_companyid": DE, "cdm_companycode": "demf", "cdm_name": "Contoso Germany"}]


def in_sync_rows() -> dict[str, list[dict[str, Any]]]:
    """Both systems agreeing on every map."""
    return {
        "LegalEntities": [{"dataAreaId": "usmf", "Name": "Contoso USA"},
                          {"dataAreaId": "demf", "Name": "Contoso Germany"}],
        "cdm_companies": dv_companies(),
        "CustomersV3": [{"dataAreaId": "usmf", "CustomerAccount": "US-001", "Name": "Forest"},
                        {"dataAreaId": "usmf", "CustomerAccount": "US-002", "Name": "Sunset"}],
        "accounts": [{"accountid": "a1", "accountnumber": "US-001", "name": "Forest", "_msdyn_company_value": US},
                     {"accountid": "a2", "accountnumber": "US-002", "name": "Sunset", "_msdyn_company_value": US}],
        "msdyn_projects": [{"msdyn_projectid": "p1", "msdyn_projectnumber": "P-1", "msdyn_subject": "Build",
                            "statecode": 0, "msdyn_scheduledstart": "2026-12-01",
                            "_msdyn_owningcompany_value": US}],
        "ProjectsV2": [{"RecId": 7, "dataAreaId": "usmf", "ProjectId": "P-1", "ProjectName": "Build",
                        "ProjectStage": "InProcess", "ProjectedStartDate": "2026-12-01T00:00:00Z"}],
        "msdyn_projecttasks": [{"msdyn_projecttaskid": "t1", "msdyn_wbsid": "1", "msdyn_subject": "Design",
                                "_msdyn_project_value": "p1"}],
        "ProjectTasks": [{"dataAreaId": "usmf", "ProjectId": "P-1", "Task": "1", "Name": "Design"}],
        "bookableresourcecategories": [{"bookableresourcecategoryid": "r1", "name": "Developer"}],
        "ResourceRoles": [{"dataAreaId": "usmf", "RoleId": "Developer", "Name": "Developer"},
                          {"dataAreaId": "demf", "RoleId": "Developer", "Name": "Developer"}],
    }


def run(tables: dict[str, list[dict[str, Any]]], *names: str) -> dict[str, dict[str, Any]]:
    reports = reconcile(REGISTRY, Rows(**tables), list(names) or None)
    return {m["map"]: m for m in report_json(reports)["maps"]}


def keys(report: dict[str, Any], outcome: str) -> list[str]:
    return [item["key"] for item in report[outcome]]


def test_agreeing_systems_are_in_sync_on_every_map() -> None:
    out = run(in_sync_rows())
    assert {name: r["counts"]["in_sync"] for name, r in out.items()} == {
        "t_companies": 2, "t_customers": 2, "t_projects": 1, "t_tasks": 1, "t_roles": 2}
    assert all(r["in_sync"] for r in out.values())
    assert report_json(reconcile(REGISTRY, Rows(**in_sync_rows())))["in_sync"] is True


def test_a_row_absent_from_the_target_is_missing_with_its_source_id() -> None:
    rows = in_sync_rows()
    rows["accounts"] = rows["accounts"][:1]
    out = run(rows, "t_customers")
    assert out["t_customers"]["missing"] == [
        {"key": f"accounts(_msdyn_company_value='{US}',accountnumber='US-002')", "source_id": "usmf|US-002"}]
    assert keys(out["t_customers"], "different") == keys(out["t_customers"], "extra") == []
    assert out["t_customers"]["in_sync"] is False


def test_a_changed_mapped_field_is_different_with_both_values() -> None:
    rows = in_sync_rows()
    rows["ProjectsV2"][0]["ProjectStage"] = "Finished"
    out = run(rows, "t_projects")
    assert out["t_projects"]["different"] == [{
        "key": "ProjectsV2(ProjectId='P-1',dataAreaId='usmf')", "source_id": "p1",
        "fields": {"ProjectStage": {"expected": "InProcess", "actual": "Finished"}}}]
    assert out["t_projects"]["counts"]["in_sync"] == 0


def test_an_unmapped_column_or_a_date_rendering_is_no_difference() -> None:
    rows = in_sync_rows()
    rows["ProjectsV2"][0]["ProjectManager"] = "someone"  # no map carries it
    rows["accounts"][0]["name"] = "Forest"
    out = run(rows, "t_projects", "t_customers")
    assert out["t_projects"]["counts"]["in_sync"] == 1 and out["t_customers"]["counts"]["in_sync"] == 2


def test_a_target_value_its_kind_cannot_read_differs_alone() -> None:
    rows = in_sync_rows()
    rows["ProjectsV2"][0]["ProjectedStartDate"] = "soon"
    rows["ProjectsV2"][0]["ProjectName"] = "Renamed"
    out = run(rows, "t_projects")
    assert [d["fields"] for d in out["t_projects"]["different"]] == [{
        "ProjectedStartDate": {"expected": "2026-12-01", "actual": "soon"},
        "ProjectName": {"expected": "Build", "actual": "Renamed"}}]
    rows["ProjectsV2"][0]["ProjectName"] = "Build"
    rows["ProjectsV2"][0]["ProjectedStartDate"] = "2026-12-01T00:00:00Z"
    assert run(rows, "t_projects")["t_projects"]["counts"]["in_sync"] == 1


def test_null_and_empty_text_are_one_value_but_true_is_not_one() -> None:
    rows = in_sync_rows()
    rows["msdyn_projecttasks"][0]["msdyn_subject"] = None
    rows["ProjectTasks"][0]["Name"] = ""  # Finance has no null strings
    rows["bookableresourcecategories"][0]["name"] = "1"
    rows["ResourceRoles"] = [{"dataAreaId": a, "RoleId": "1", "Name": True} for a in ("usmf", "demf")]
    out = run(rows, "t_tasks", "t_roles")
    assert out["t_tasks"]["counts"]["in_sync"] == 1
    assert [d["fields"] for d in out["t_roles"]["different"]] == [
        {"Name": {"expected": "1", "actual": True}}] * 2


def test_a_target_row_no_source_row_produces_is_extra() -> None:
    rows = in_sync_rows()
    rows["ProjectsV2"].append({"RecId": 8, "dataAreaId": "usmf", "ProjectId": "P-9", "ProjectName": "Ghost"})
    out = run(rows, "t_projects")
    assert out["t_projects"]["extra"] == [{"key": "ProjectsV2(ProjectId='P-9',dataAreaId='usmf')",
                                           "target_id": "8"}]
    assert out["t_projects"]["counts"]["in_sync"] == 1


def test_extra_counts_only_rows_in_the_maps_scope() -> None:
    rows = in_sync_rows()
    # (1) no key: the processor ignores it too; (4) a company the map has no source row in.
    rows["accounts"] += [{"accountid": "a3", "accountnumber": None, "_msdyn_company_value": US},
                         {"accountid": "a4", "accountnumber": "DE-9", "_msdyn_company_value": DE}]
    # (3) the target row of a source row the filter now refuses left the map's scope with it.
    rows["CustomersV3"].append({"dataAreaId": "usmf", "CustomerAccount": "US-003", "Name": "Old",
                                "Blocked": "All"})
    rows["accounts"].append({"accountid": "a5", "accountnumber": "US-003", "name": "Old",
                             "_msdyn_company_value": US})
    out = run(rows, "t_customers")
    assert out["t_customers"]["extra"] == [] and out["t_customers"]["counts"]["filtered"] == 1
    # ... but a row of a company the map does sync is extra.
    rows["accounts"].append({"accountid": "a6", "accountnumber": "US-077", "_msdyn_company_value": US})
    assert keys(run(rows, "t_customers")["t_customers"], "extra") == [
        f"accounts(_msdyn_company_value='{US}',accountnumber='US-077')"]


def test_target_rows_outside_the_declared_target_scope_are_not_extra() -> None:
    scoped = PROJECTS.model_copy(update={"target_scope": (
        Condition(column="IntegrationSourceDataId", op="present"),)})
    registry = MapRegistry((COMPANIES, scoped))
    rows = in_sync_rows()
    rows["ProjectsV2"] += [
        {"RecId": 8, "dataAreaId": "usmf", "ProjectId": "FO-1", "IntegrationSourceDataId": None},
        {"RecId": 9, "dataAreaId": "usmf", "ProjectId": "P-9", "IntegrationSourceDataId": "p9"}]
    [report] = reconcile(registry, Rows(**rows), ["t_projects"])
    assert report.extra == [("ProjectsV2(ProjectId='P-9',dataAreaId='usmf')", "9")]
    assert report.in_sync == ["ProjectsV2(ProjectId='P-1',dataAreaId='usmf')"]


def test_a_map_whose_key_is_the_company_reports_every_extra_company() -> None:
    rows = in_sync_rows()
    rows["cdm_companies"].append({"cdm_companyid": "guid-gb", "cdm_companycode": "gbsi"})
    out = run(rows, "t_companies")
    assert out["t_companies"]["extra"] == [{"key": "cdm_companies(cdm_companycode='gbsi')",
                                            "target_id": "guid-gb"}]


def test_rows_another_map_writes_into_the_same_entity_are_not_extra() -> None:
    other = CUSTOMERS.model_copy(update={"name": "t_vendor_accounts", "filter": (),
                                         "source": Endpoint(system="finance", table="VendorsV2",
                                                            company="dataAreaId")})
    registry = MapRegistry((*REGISTRY.maps, other))
    rows = in_sync_rows()
    rows["VendorsV2"] = [{"dataAreaId": "usmf", "CustomerAccount": "V-1", "Name": "Supplier"}]
    rows["accounts"].append({"accountid": "v1", "accountnumber": "V-1", "name": "Supplier",
                             "_msdyn_company_value": US})
    reports = {r.map: r for r in reconcile(registry, Rows(**rows), ["t_customers"])}
    assert list(reports) == ["t_customers"]
    assert reports["t_customers"].extra == [] and len(reports["t_customers"].in_sync) == 2


def test_a_lookup_naming_a_missing_row_is_unresolved_with_the_missing_reference() -> None:
    rows = in_sync_rows()
    rows["msdyn_projects"][0]["_msdyn_owningcompany_value"] = "guid-nowhere"
    out = run(rows, "t_projects", "t_tasks")
    assert out["t_projects"]["unresolved"] == [{"source_id": "p1", "reason": "lookup not found",
                                                "missing": ["row:dataverse:cdm_companies:guid-nowhere"]}]
    # The task's project key cannot be computed either: the task names the missing key fact.
    assert out["t_tasks"]["unresolved"] == [{"source_id": "t1", "reason": "lookup not found",
                                             "missing": ["key:t_projects:p1"]}]
    # No source row maps to usmf any more, so its target row is outside the company scope:
    # the drift is the unresolved row, reported once.
    assert keys(out["t_projects"], "extra") == [] and out["t_projects"]["in_sync"] is False


def test_a_present_lookup_waits_for_the_target_row() -> None:
    rows = in_sync_rows()
    rows["cdm_companies"] = rows["cdm_companies"][1:]  # usmf not in Dataverse (yet)
    out = run(rows, "t_customers")
    assert [u["missing"] for u in out["t_customers"]["unresolved"]] == [
        ["present:cdm_companies(cdm_companycode='usmf')"]] * 2


def test_a_row_the_map_refuses_is_unresolved_with_the_reason() -> None:
    rows = in_sync_rows()
    rows["msdyn_projects"][0]["statecode"] = 5  # no value map entry
    out = run(rows, "t_projects")
    [item] = out["t_projects"]["unresolved"]
    assert item["source_id"] == "p1" and "no value map entry for 5" in item["reason"]


def test_two_source_rows_with_one_target_key_keep_the_first() -> None:
    rows = in_sync_rows()
    rows["msdyn_projects"].append({**rows["msdyn_projects"][0], "msdyn_projectid": "p2"})
    out = run(rows, "t_projects")
    assert out["t_projects"]["counts"]["in_sync"] == 1
    assert [(u["source_id"], u["reason"]) for u in out["t_projects"]["unresolved"]] == [
        ("p2", "same target key ProjectsV2(ProjectId='P-1',dataAreaId='usmf') as source row p1")]


def test_a_fan_out_map_expects_a_copy_per_member() -> None:
    rows = in_sync_rows()
    rows["ResourceRoles"] = rows["ResourceRoles"][:1]
    expected = expect(ROLES, rows["bookableresourcecategories"], Facts(REGISTRY, Rows(**rows)))
    assert sorted((sid, m.record_key) for sid, m in expected.rows.values()) == [
        ("r1@demf", "ResourceRoles(RoleId='Developer',dataAreaId='demf')"),
        ("r1@usmf", "ResourceRoles(RoleId='Developer',dataAreaId='usmf')")]
    assert run(rows, "t_roles")["t_roles"]["missing"] == [
        {"key": "ResourceRoles(RoleId='Developer',dataAreaId='demf')", "source_id": "r1@demf"}]


POSTED = TableMap(
    name="t_posted",
    source=Endpoint(system="dataverse", table="msdyn_actuals", primary_key="msdyn_actualid"),
    target=Endpoint(system="finance", table="ActualsStaging"),
    key=(FieldMap(target="ActualId", source="msdyn_actualid"),),
    fields=(FieldMap(target="Amount", source="msdyn_amount"),),
    reverse_key=(FieldMap(target="msdyn_actualid", source="ActualId", in_fields=False),),
    write_back=(FieldMap(target="Voucher", source="msdyn_vouchernumber"),),
)


def test_a_value_the_target_filled_but_the_source_lacks_is_different() -> None:
    def report(source_voucher: str | None, target_voucher: str | None) -> dict[str, Any]:
        tables = Rows(msdyn_actuals=[{"msdyn_actualid": "a1", "msdyn_amount": 5,
                                      "msdyn_vouchernumber": source_voucher}],
                      ActualsStaging=[{"ActualId": "a1", "Amount": 5, "Voucher": target_voucher}])
        return report_json(reconcile(MapRegistry((POSTED,)), tables))["maps"][0]

    assert report(None, None)["in_sync"] is True  # not posted yet: nothing to write back
    assert report("V-1", "V-1")["in_sync"] is True
    lagging = report(None, "V-1")
    assert lagging["different"] == [{"key": "ActualsStaging(ActualId='a1')", "source_id": "a1",
                                     "fields": {"msdyn_vouchernumber": {"expected": "V-1", "actual": None}}}]
