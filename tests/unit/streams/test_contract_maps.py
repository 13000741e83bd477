"""The contract and configuration maps (Dataverse -> Finance): realistic Dataverse rows with the
facts their lookups name become the expected Finance key and fields, and each change waits for
the Finance rows it references (domain.md 1.7)."""

from __future__ import annotations

from typing import Any

import pytest

from streams.maps import MapRegistry, default_registry, key_fact, present_fact
from streams.maps.contracts import (
    CONTRACT_HEADERS,
    CONTRACT_LINES,
    CONTRACT_MAPS,
    CONTRACT_MILESTONES,
    TRANSACTION_CATEGORIES,
    WORKER_RESOURCES,
)
from streams.maps.setup import PROJECTS, SETUP_MAPS
from streams.pending import Emit, Need, Pending, Step, plan
from streams.transform import Filtered, Mapped, NeedFacts, TransformError, transform
from tests.unit.streams import rows
from topics import CommandSource, target_key

pytestmark = pytest.mark.unit

MAPS = MapRegistry((*SETUP_MAPS, *CONTRACT_MAPS))

ORDER = "so-guid-1"
LINE = "sod-guid-1"
MILESTONE = "ms-guid-1"
RULE = "sbr-guid-1"
RESOURCE = "br-guid-1"
CONTRACT_KEY: dict[str, Any] = {"dataAreaId": "usmf", "ProjectContractId": "PC-0001"}
LINE_KEY: dict[str, Any] = {**CONTRACT_KEY, "ContractLineId": LINE}
PROJECT_KEY = {"dataAreaId": "usmf", "ProjectId": "PRJ-1"}

COMPANY = {rows.COMPANY_FACT: {"cdm_companycode": "usmf"}}
CUSTOMER = {rows.ACCOUNT_FACT: {"accountnumber": "US-001"}}
CONTRACT_KEY_FACT = key_fact("contract_headers", ORDER)
LINE_KEY_FACT = key_fact("contract_lines", LINE)
HEADER_PRESENT = present_fact(target_key("ProjectContractHeaders", CONTRACT_KEY))
LINE_PRESENT = present_fact(target_key("ProjectContractLines", LINE_KEY))


def salesorder(**extra: Any) -> dict[str, Any]:
    return {"salesorderid": ORDER, "ordernumber": "PC-0001", "name": "Rollout contract",
            "_customerid_value": rows.ACCOUNT, "_msdyn_owningcompany_value": rows.COMPANY,
            "transactioncurrencyid": "USD", "statecode": 0, **extra}


def split_billing_rule(**extra: Any) -> dict[str, Any]:
    return {"msdyn_projectcontractsplitbillingruleid": RULE, "msdyn_name": "Adatum 100%",
            "_msdyn_salesorder_value": ORDER, "_msdyn_customer_value": rows.ACCOUNT,
            "msdyn_percentage": 100.0, **extra}


def salesorderdetail(**extra: Any) -> dict[str, Any]:
    return {"salesorderdetailid": LINE, "_salesorderid_value": ORDER,
            "_msdyn_project_value": rows.PROJECT, "msdyn_linenumber": "1",
            "productdescription": "Implementation", "msdyn_billingmethod": 192350001,
            "priceperunit": 25000.0, "extendedamount": 25000.0, "transactioncurrencyid": "USD",
            **extra}


def milestone(**extra: Any) -> dict[str, Any]:
    return {"msdyn_contractlinescheduleofvalueid": MILESTONE, "_msdyn_contract_value": ORDER,
            "_msdyn_contractlineid_value": LINE, "msdyn_name": "Go-live",
            "msdyn_amount": 12500.0, "msdyn_invoicedate": "2026-03-31T00:00:00Z",
            "msdyn_invoicestatus": 192350000, "transactioncurrencyid": "USD", **extra}


def pending(map_name: str, row: dict[str, Any], record_id: str) -> Pending:
    source = CommandSource(system="dataverse", table=MAPS[map_name].source.table, id=record_id,
                           version=5, ts_ms=1_000)
    return Pending(id=f"{map_name}:{record_id}:5", map=map_name, op="upsert", row=row,
                   source=source, born_ms=0)


def walk(item: Pending, facts: dict[str, dict[str, Any]]) -> tuple[list[str], Step]:
    return rows.walk(item, facts, MAPS)


def test_a_transaction_category_is_keyed_by_its_integration_id() -> None:
    row = {"msdyn_transactioncategoryid": "tc-guid-1", "msdyn_integrationid": "TCN-0000001000-D3B43",
           "msdyn_name": "Hours", "statecode": 0}
    out = transform(TRANSACTION_CATEGORIES, row, {})
    assert isinstance(out, Mapped)
    assert out.entity == "TransactionCategories"
    assert out.key == {"CategoryId": "TCN-0000001000-D3B43"}
    assert out.fields == {"CategoryId": "TCN-0000001000-D3B43", "Name": "Hours",
                          "IntegrationId": "tc-guid-1"}
    assert isinstance(transform(TRANSACTION_CATEGORIES, {**row, "msdyn_integrationid": None}, {}),
                      Filtered)


def test_a_contract_header_takes_its_company_and_customer_account_from_lookups() -> None:
    assert transform(CONTRACT_HEADERS, salesorder(), {}) == \
        NeedFacts((rows.COMPANY_FACT, rows.ACCOUNT_FACT))
    out = transform(CONTRACT_HEADERS, salesorder(), {**COMPANY, **CUSTOMER})
    assert isinstance(out, Mapped)
    assert out.record_key == "ProjectContractHeaders(ProjectContractId='PC-0001',dataAreaId='usmf')"
    assert out.fields == {"dataAreaId": "usmf", "ProjectContractId": "PC-0001",
                          "Name": "Rollout contract", "CustomerAccountNumber": "US-001",
                          "SalesCurrencyCode": "USD", "IntegrationSourceDataId": ORDER}


def test_a_contract_without_number_or_company_is_not_synced() -> None:
    assert isinstance(transform(CONTRACT_HEADERS, salesorder(ordernumber=None), {}), Filtered)
    assert isinstance(transform(CONTRACT_HEADERS, salesorder(_msdyn_owningcompany_value=None), {}),
                      Filtered)


CUSTOMER_IN_FINANCE = "present:CustomersV3(CustomerAccount='US-001',dataAreaId='usmf')"


def test_a_contract_header_waits_for_its_customer_in_finance_then_publishes_its_key() -> None:
    item = pending("contract_headers", salesorder(), ORDER)
    _, step = walk(item, {**COMPANY, **CUSTOMER})
    assert step == Need(CUSTOMER_IN_FINANCE)
    _, step = walk(item, {**COMPANY, **CUSTOMER, CUSTOMER_IN_FINANCE: {"target_id": "5637144576"}})
    assert isinstance(step, Emit)
    assert step.publish == ((CONTRACT_KEY_FACT, CONTRACT_KEY),)


def test_a_funding_source_waits_for_its_contract_then_its_header_in_finance() -> None:
    item = pending("funding_sources", split_billing_rule(), RULE)
    waited, step = walk(item, {CONTRACT_KEY_FACT: CONTRACT_KEY, **CUSTOMER})
    assert waited == [CONTRACT_KEY_FACT, rows.ACCOUNT_FACT]
    assert step == Need(HEADER_PRESENT)
    _, step = walk(item, {CONTRACT_KEY_FACT: CONTRACT_KEY, **CUSTOMER, HEADER_PRESENT: {"target_id": "1"}})
    assert step == Need(CUSTOMER_IN_FINANCE)
    _, step = walk(item, {CONTRACT_KEY_FACT: CONTRACT_KEY, **CUSTOMER, HEADER_PRESENT: {"target_id": "1"},
                          CUSTOMER_IN_FINANCE: {"target_id": "5637144576"}})
    assert isinstance(step, Emit)
    assert step.mapped.key == {"dataAreaId": "usmf", "ProjectContractID": "PC-0001",
                               "FundingSourceId": "US-001"}
    assert step.mapped.fields == {**step.mapped.key, "CustomerOrOrganization": "US-001",
                                  "FundingType": "Customer", "Name": "Adatum 100%"}


def test_a_contract_line_maps_its_billing_method_and_project() -> None:
    facts = {CONTRACT_KEY_FACT: CONTRACT_KEY, rows.PROJECT_KEY_FACT: PROJECT_KEY}
    fixed = transform(CONTRACT_LINES, salesorderdetail(), facts)
    assert isinstance(fixed, Mapped)
    assert fixed.key == LINE_KEY
    assert fixed.fields == {**LINE_KEY, "Description": "Implementation", "BillingMethod": "FixedPrice",
                            "LineProjectId": "PRJ-1", "LineAmount": 25000.0, "LineSequenceNumber": 1}
    tm = transform(CONTRACT_LINES, salesorderdetail(msdyn_billingmethod=192350000), facts)
    assert isinstance(tm, Mapped) and tm.fields["BillingMethod"] == "TimeAndMaterial"
    with pytest.raises(TransformError, match="BillingMethod"):
        transform(CONTRACT_LINES, salesorderdetail(msdyn_billingmethod=7), facts)


def test_a_contract_line_waits_for_its_contract_and_its_project_in_finance() -> None:
    facts = {CONTRACT_KEY_FACT: CONTRACT_KEY, rows.PROJECT_KEY_FACT: PROJECT_KEY,
             HEADER_PRESENT: {"target_id": "1"}, rows.PROJECT_PRESENT: {"target_id": "2"}}
    waited, step = walk(pending("contract_lines", salesorderdetail(), LINE), facts)
    assert waited == [CONTRACT_KEY_FACT, rows.PROJECT_KEY_FACT, HEADER_PRESENT, rows.PROJECT_PRESENT]
    assert isinstance(step, Emit) and step.publish == ((LINE_KEY_FACT, LINE_KEY),)
    # A line without a project waits for its contract only.
    waited, step = walk(pending("contract_lines", salesorderdetail(_msdyn_project_value=None), LINE), facts)
    assert waited == [CONTRACT_KEY_FACT, HEADER_PRESENT] and isinstance(step, Emit)
    assert step.mapped.fields["LineProjectId"] is None


def test_a_milestone_waits_for_its_contract_line_in_finance() -> None:
    item = pending("contract_milestones", milestone(), MILESTONE)
    assert plan(item, MAPS) == Need(LINE_KEY_FACT)  # arrived before its line was written
    waited, step = walk(item, {LINE_KEY_FACT: LINE_KEY, LINE_PRESENT: {"target_id": "3"}})
    assert waited == [LINE_KEY_FACT, LINE_PRESENT]
    assert isinstance(step, Emit)
    assert step.mapped.record_key == f"OnAccountTransactions(TransactionId='{MILESTONE}',dataAreaId='usmf')"
    assert step.mapped.fields == {"dataAreaId": "usmf", "TransactionId": MILESTONE,
                                  "ProjectContractId": "PC-0001", "ContractLineRef": LINE,
                                  "InvoiceDate": "2026-03-31", "Description": "Go-live",
                                  "CurrencyId": "USD", "Amount": 12500.0}
    assert isinstance(transform(CONTRACT_MILESTONES, milestone(_msdyn_contractlineid_value=None), {}),
                      Filtered)


def test_a_bookable_resource_becomes_a_worker_resource_of_its_company() -> None:
    row = {"bookableresourceid": RESOURCE, "name": "Alice Adams", "resourcetype": 3,
           "msdyn_personnelnumber": "000101", "_msdyn_company_value": rows.COMPANY}
    out = transform(WORKER_RESOURCES, row, COMPANY)
    assert isinstance(out, Mapped)
    assert out.record_key == f"ProjectWorkerResources(ResourceId='{RESOURCE}',dataAreaId='usmf')"
    assert out.fields == {"dataAreaId": "usmf", "ResourceId": RESOURCE, "Name": "Alice Adams",
                          "PersonnelNumber": "000101"}
    assert isinstance(transform(WORKER_RESOURCES, {**row, "_msdyn_company_value": None}, {}), Filtered)


def test_a_project_on_a_contract_carries_it_and_waits_for_it_in_finance() -> None:
    project = rows.project(_msdyn_salesorderid_value=ORDER)
    facts = {**COMPANY, **CUSTOMER, CONTRACT_KEY_FACT: CONTRACT_KEY, HEADER_PRESENT: {"target_id": "1"}}
    waited, step = walk(pending("projects", project, rows.PROJECT), facts)
    assert waited == [rows.COMPANY_FACT, rows.ACCOUNT_FACT, CONTRACT_KEY_FACT, HEADER_PRESENT]
    assert isinstance(step, Emit)
    assert step.mapped.fields["ProjectContractId"] == "PC-0001"
    assert step.mapped.fields["ProjectGroupId"] == "TM"
    # Without a contract a project waits for none (and clears none).
    waited, step = walk(pending("projects", rows.project(), rows.PROJECT), facts)
    assert waited == [rows.COMPANY_FACT, rows.ACCOUNT_FACT] and isinstance(step, Emit)
    assert transform(PROJECTS, rows.project(statecode=1), facts).fields["ProjectStage"] == "Finished"  # type: ignore[union-attr]


def test_the_default_registry_captures_the_new_tables_with_their_keys() -> None:
    registry = default_registry()
    dataverse = {ep.table: ep for ep in registry.captured("dataverse")}
    assert dataverse["salesorders"].primary_key == "salesorderid"
    assert dataverse["salesorders"].company_lookup == "_msdyn_owningcompany_value"
    assert dataverse["msdyn_projectcontractsplitbillingrules"].primary_key == \
        "msdyn_projectcontractsplitbillingruleid"
    assert dataverse["salesorderdetails"].primary_key == "salesorderdetailid"
    assert dataverse["msdyn_contractlinescheduleofvalues"].primary_key == \
        "msdyn_contractlinescheduleofvalueid"
    assert dataverse["msdyn_transactioncategories"].primary_key == "msdyn_transactioncategoryid"
    assert dataverse["bookableresources"].company_lookup == "_msdyn_company_value"
    finance = {ep.table: ep for ep in registry.captured("finance")}
    for table in ("ProjectContractHeaders", "ProjectFundingSources", "ProjectContractLines",
                  "OnAccountTransactions", "ProjectWorkerResources"):
        assert finance[table].company == "dataAreaId"
    assert finance["TransactionCategories"].company is None
    assert [m.name for m in CONTRACT_MAPS if m.name not in registry] == []


def test_every_contract_map_flows_from_dataverse_to_finance() -> None:
    assert {m.direction for m in CONTRACT_MAPS} == {"to_finance"}
    assert all(not m.two_way for m in CONTRACT_MAPS)
