import re

import pytest

from streams.maps import CUSTOMERS, LEGAL_ENTITIES, PROJECT_TASKS, PROJECTS, present_fact, row_fact
from streams.maps.model import Endpoint, FieldMap, TableMap
from streams.transform import (
    Filtered,
    Mapped,
    NeedFacts,
    TransformError,
    observed_fields,
    transform,
    written_back,
)
from tests.unit.streams import rows
from topics import target_key

pytestmark = pytest.mark.unit

PROJECT_FACTS = {rows.COMPANY_FACT: {"cdm_companycode": "usmf"},
                 rows.ACCOUNT_FACT: {"accountnumber": "US-001"}}


def test_legal_entity_maps_to_cdm_company():
    out = transform(LEGAL_ENTITIES, rows.legal_entity(), {})
    assert isinstance(out, Mapped)
    assert out.entity == "cdm_companies"
    assert out.key == {"cdm_companycode": "usmf"}
    assert out.fields == {"cdm_companycode": "usmf", "cdm_name": "Contoso USA",
                          "accountingcurrency": "USD"}
    assert out.record_key == "cdm_companies(cdm_companycode='usmf')"


def test_legal_entity_default_currency_when_ledger_missing():
    out = transform(LEGAL_ENTITIES, rows.legal_entity(AccountingCurrency=None), {})
    assert isinstance(out, Mapped) and out.fields["accountingcurrency"] == "USD"


def test_an_empty_text_column_takes_the_field_default_and_an_empty_date_is_null():
    out = transform(LEGAL_ENTITIES, rows.legal_entity(AccountingCurrency=""), {})
    assert isinstance(out, Mapped) and out.fields["accountingcurrency"] == "USD"
    assert LEGAL_ENTITIES.forward_flow[1][2].plain  # the column read as it is, inline
    project = transform(PROJECTS, rows.project(msdyn_scheduledstart=""), PROJECT_FACTS)
    assert isinstance(project, Mapped) and project.fields["ProjectedStartDate"] is None


def test_legal_entity_filter_rejects_rows_without_company():
    assert isinstance(transform(LEGAL_ENTITIES, rows.legal_entity(dataAreaId=""), {}), Filtered)


def test_customer_waits_for_its_legal_entity_in_dataverse():
    out = transform(CUSTOMERS, rows.customer(), {})
    assert out == NeedFacts((rows.COMPANY_PRESENT,))


def test_customer_binds_the_company_guid():
    out = transform(CUSTOMERS, rows.customer(), {rows.COMPANY_PRESENT: {"target_id": rows.COMPANY}})
    assert isinstance(out, Mapped)
    assert out.key == {"accountnumber": "US-001", "_msdyn_company_value": rows.COMPANY}
    assert out.fields == {"accountnumber": "US-001", "name": "Adatum",
                          "msdyn_customergroupid": "30", "transactioncurrencyid": "USD",
                          "msdyn_company@odata.bind": f"/cdm_companies({rows.COMPANY})"}
    # The readable view is what Dataverse's feed shows: the GUID, not the bind path.
    assert out.readable["_msdyn_company_value"] == rows.COMPANY
    assert observed_fields(CUSTOMERS, rows.account_in_dataverse()) == out.readable


def test_customer_reverse_writes_only_two_way_fields_to_finance():
    row = rows.account_in_dataverse(name="Adatum Corp", msdyn_customergroupid="99")
    assert transform(CUSTOMERS, row, {}, reverse=True) == NeedFacts((rows.COMPANY_FACT,))
    out = transform(CUSTOMERS, row, {rows.COMPANY_FACT: {"cdm_companycode": "usmf"}}, reverse=True)
    assert isinstance(out, Mapped)
    assert out.entity == "CustomersV3"
    assert out.key == {"dataAreaId": "usmf", "CustomerAccount": "US-001"}
    assert out.fields == {"dataAreaId": "usmf", "CustomerAccount": "US-001", "Name": "Adatum Corp"}


def test_project_needs_company_and_customer_lookups():
    out = transform(PROJECTS, rows.project(), {})
    assert out == NeedFacts((rows.COMPANY_FACT, rows.ACCOUNT_FACT))


def test_project_maps_value_maps_dates_and_lookups():
    out = transform(PROJECTS, rows.project(statecode=1), PROJECT_FACTS)
    assert isinstance(out, Mapped)
    assert out.key == {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}
    assert out.fields == {
        "dataAreaId": "usmf", "ProjectId": "PRJ-1", "ProjectName": "Rollout",
        "ProjectStage": "Finished", "ProjectedStartDate": "2026-01-05",
        "ProjectedEndDate": "2026-06-30", "CustomerAccountNumber": "US-001",
        "ProjectContractId": None, "ProjectGroupId": "TM", "ProjectManagerPersonnelNumber": None,
        "IntegrationSourceDataId": rows.PROJECT}


def test_a_mapped_row_names_the_fact_each_lookup_read():
    """What `streams.pending` checks dependencies against, without working the lookups out again."""
    out = transform(PROJECTS, rows.project(), PROJECT_FACTS)
    assert isinstance(out, Mapped)
    assert dict(out.lookups) == {"company": rows.COMPANY_FACT, "customer": rows.ACCOUNT_FACT}


def test_project_stage_default_and_no_customer():
    out = transform(PROJECTS, rows.project(statecode=None, _msdyn_customer_value=None),
                    {rows.COMPANY_FACT: {"cdm_companycode": "usmf"}})
    assert isinstance(out, Mapped)
    assert out.fields["ProjectStage"] == "InProcess"
    assert out.fields["CustomerAccountNumber"] is None


def test_project_unknown_state_is_a_transform_error():
    with pytest.raises(TransformError, match="value map"):
        transform(PROJECTS, rows.project(statecode=2), PROJECT_FACTS)


def test_project_without_number_is_filtered():
    assert isinstance(transform(PROJECTS, rows.project(msdyn_projectnumber=None), {}), Filtered)


@pytest.mark.parametrize(("bad", "named"), [
    ({"statecode": [0]}, "field 'ProjectStage' must be a scalar, got list"),  # value-mapped
    ({"statecode": {"v": 0}}, "field 'ProjectStage' must be a scalar, got dict"),
    ({"msdyn_projectnumber": {"a": 1}}, "field 'ProjectId' must be a scalar, got dict"),  # key
    ({"msdyn_projectnumber": ["PRJ-1"]}, "field 'ProjectId' must be a scalar, got list"),
    ({"msdyn_subject": ["Rollout"]}, "field 'ProjectName' must be a scalar, got list"),
    ({"_msdyn_owningcompany_value": [rows.COMPANY]}, "lookup column '_msdyn_owningcompany_value'"),
    ({"_msdyn_customer_value": {"id": rows.ACCOUNT}}, "lookup column '_msdyn_customer_value'"),
    ({"_msdyn_customer_value": True}, "lookup column '_msdyn_customer_value'"),
])
def test_a_list_or_object_where_a_scalar_belongs_is_a_transform_error_naming_the_field(bad, named):
    with pytest.raises(TransformError, match=re.escape(named)):
        transform(PROJECTS, rows.project(**bad), PROJECT_FACTS)


def test_a_lookup_fact_holding_a_list_is_a_transform_error_naming_the_key_field():
    facts = {**PROJECT_FACTS, rows.COMPANY_FACT: {"cdm_companycode": ["usmf"]}}
    with pytest.raises(TransformError, match="field 'dataAreaId' must be a scalar"):
        transform(PROJECTS, rows.project(), facts)


def test_task_takes_its_key_from_the_mapped_project_and_parent_wbs():
    facts = {rows.PROJECT_KEY_FACT: {"dataAreaId": "usmf", "ProjectId": "PRJ-1"},
             "row:dataverse:msdyn_projecttasks:t-parent": {"msdyn_wbsid": "1"}}
    out = transform(PROJECT_TASKS, rows.task(_msdyn_parenttask_value="t-parent"), facts)
    assert isinstance(out, Mapped)
    assert out.key == {"dataAreaId": "usmf", "ProjectId": "PRJ-1", "Task": "1.2"}
    assert out.fields == {"dataAreaId": "usmf", "ProjectId": "PRJ-1", "Task": "1.2",
                          "ParentTask": "1", "WorkBreakdownStructureID": "1.2", "Name": "Design"}


def test_task_key_error_when_project_key_lacks_a_field():
    with pytest.raises(TransformError, match="ProjectId"):
        transform(PROJECT_TASKS, rows.task(), {rows.PROJECT_KEY_FACT: {"dataAreaId": "usmf"}})


def test_observed_finance_dates_compare_with_mapped_dates():
    out = transform(PROJECTS, rows.project(), PROJECT_FACTS)
    assert isinstance(out, Mapped)
    finance_row = {**out.fields, "ProjectedStartDate": "2026-01-05T12:00:00Z", "RecId": 5637144576}
    assert observed_fields(PROJECTS, finance_row) == out.readable


@pytest.mark.parametrize("bad, named", [
    ({"msdyn_projectnumber": 12345}, "key field 'ProjectId' must be text, got int 12345"),
    ({"msdyn_projectnumber": 1.5}, "key field 'ProjectId' must be text, got float"),
    ({"msdyn_scheduledstart": "not-a-date"}, "not an ISO date: 'not-a-date'"),
    ({"msdyn_finish": "2026-13-45"}, "not an ISO date"),
])
def test_a_number_for_a_text_key_or_a_date_that_is_no_date_is_a_transform_error(bad, named):
    """'12345' and 12345 are different keys; a date column holding no date is not guessed at."""
    with pytest.raises(TransformError, match=re.escape(named)):
        transform(PROJECTS, rows.project(**bad), PROJECT_FACTS)


def test_a_task_whose_wbs_id_is_a_number_is_a_transform_error():
    facts = {rows.PROJECT_KEY_FACT: {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}}
    with pytest.raises(TransformError, match="key field 'Task' must be text"):
        transform(PROJECT_TASKS, rows.task(msdyn_wbsid=7), facts)


# -- write-back fields -----------------------------------------------------------------------
def _posted(**kw: object) -> TableMap:
    return TableMap.model_validate({
        "name": "posted",
        "source": Endpoint(system="dataverse", table="msdyn_actuals", primary_key="msdyn_actualid"),
        "target": Endpoint(system="finance", table="ActualsStaging"),
        "key": (FieldMap(target="ActualId", source="msdyn_actualid"),),
        "fields": (FieldMap(target="Amount", source="msdyn_amount"),),
        "write_back": (FieldMap(target="Voucher", source="msdyn_vouchernumber"),),
        **kw})


def test_write_back_fields_never_flow_forward_and_flow_back_onto_the_source_row():
    m = _posted(reverse_key=(FieldMap(target="msdyn_actualid", source="ActualId", in_fields=False),))
    forward = transform(m, {"msdyn_actualid": "a-1", "msdyn_amount": 5, "msdyn_vouchernumber": "X"}, {})
    assert isinstance(forward, Mapped) and forward.fields == {"ActualId": "a-1", "Amount": 5}
    back = transform(m, {"ActualId": "a-1", "Amount": 5, "Voucher": "V-1"}, {}, reverse=True)
    assert isinstance(back, Mapped)
    assert (back.entity, back.key, back.fields) == ("msdyn_actuals", {"msdyn_actualid": "a-1"},
                                                    {"msdyn_vouchernumber": "V-1"})
    assert written_back(m, {"Voucher": "V-1", "Amount": 5}) == {"Voucher": "V-1"}


def test_write_back_without_a_reverse_key_is_refused_at_declaration():
    with pytest.raises(ValueError, match="reverse_key"):
        _posted()


MANAGER = "u-guid-alice"
RESOURCE = "r-guid-alice"
MANAGER_PRESENT = present_fact(target_key("bookableresources", {"_userid_value": MANAGER}))
RESOURCE_ROW_FACT = row_fact("dataverse", "bookableresources", RESOURCE)


def test_project_manager_personnel_number_comes_through_the_users_bookable_resource():
    """user -> the bookable resource whose userid names them -> its personnel number."""
    row = rows.project(_msdyn_projectmanager_value=MANAGER)
    first = transform(PROJECTS, row, PROJECT_FACTS)
    # The resource is asked first; the gate does not wait for it (optional).
    assert first == NeedFacts((MANAGER_PRESENT,), optional=(MANAGER_PRESENT,))
    facts = {**PROJECT_FACTS, MANAGER_PRESENT: {"target_id": RESOURCE}}
    # Once the resource is known, its row (not optional: it comes with the resource's presence).
    assert transform(PROJECTS, row, facts) == NeedFacts((RESOURCE_ROW_FACT,))
    out = transform(PROJECTS, row, {**facts, RESOURCE_ROW_FACT: {"msdyn_personnelnumber": "000101"}})
    assert isinstance(out, Mapped) and out.fields["ProjectManagerPersonnelNumber"] == "000101"


def test_a_manager_without_a_bookable_resource_leaves_the_field_empty():
    row = rows.project(_msdyn_projectmanager_value=MANAGER)
    # The gate records the unknown optional fact as known-absent ({}): the chain ends unset.
    out = transform(PROJECTS, row, {**PROJECT_FACTS, MANAGER_PRESENT: {}})
    assert isinstance(out, Mapped) and out.fields["ProjectManagerPersonnelNumber"] is None
    # Reconcile reads every fact there is: a missing optional one is absent, not awaited.
    settled = transform(PROJECTS, row, PROJECT_FACTS, settled=True)
    assert isinstance(settled, Mapped) and settled.fields["ProjectManagerPersonnelNumber"] is None
    # A required fact is still awaited when settled.
    assert transform(PROJECTS, row, {}, settled=True) == NeedFacts((rows.COMPANY_FACT, rows.ACCOUNT_FACT))
