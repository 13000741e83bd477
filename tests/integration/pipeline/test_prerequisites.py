"""The prerequisite maps through the real pipeline: Finance rows (the seeded tenant at start-up,
then a new legal entity with its ledger, a vendor, a worker, a unit, a rate and a released
product) reach Dataverse with the mapped values, company-specific rows after their company,
and nothing reaches the DLQ. One stack for the module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dualwrite.apiclient import ApiSession
from dualwrite.stack import Stack
from tests.support.pipeline import read_topic, running_stack, wait_for
from topics import read_headers

pytestmark = pytest.mark.integration

ARRIVE = 180.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("prerequisites")) as running:
        yield running


def dlq(stack: Stack) -> list[tuple[str | None, ...]]:
    """Every dead letter as (stage, map, error class, message): the assertion shows them all."""
    letters = [read_headers(m.headers()) for m in read_topic(stack.env["DUALWRITE_KAFKA__BOOTSTRAP_SERVERS"],
                                                             "sync.dlq")]
    return [tuple(h.get(k) for k in ("dlq.stage", "dlq.map", "dlq.error.class", "dlq.error.message"))
            for h in letters]


def one(dv: ApiSession, entity_set: str, odata_filter: str, what: str) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return dv.get_all(entity_set, {"$filter": odata_filter})

    rows: list[dict[str, Any]] = wait_for(found, ARRIVE, what)
    (row,) = rows
    return row


def company_id(dv: ApiSession, code: str) -> str:
    return str(one(dv, "cdm_companies", f"cdm_companycode eq '{code}'", f"legal entity {code}")["cdm_companyid"])


def post(fo: ApiSession, collection: str, row: dict[str, Any]) -> None:
    response = fo.request("POST", collection, json=row)
    assert response.status_code < 300, response.text


def test_the_seeded_finance_tenant_flows_to_dataverse_at_start_up(stack: Stack) -> None:
    dv = stack.dataverse()
    usmf, demf = company_id(dv, "usmf"), company_id(dv, "demf")

    ledger = one(dv, "msdyn_ledgers", f"_msdyn_company_value eq {demf}", "the demf ledger")
    assert (ledger["msdyn_accountingcurrency"], ledger["msdyn_name"]) == ("EUR", "DEMF")

    rate = one(dv, "msdyn_currencyexchangerates",
               "msdyn_fromcurrencycode eq 'EUR' and msdyn_tocurrencycode eq 'USD'", "the EUR->USD rate")
    assert (rate["msdyn_exchangerate"], rate["msdyn_validfrom"]) == (1.085, "2020-01-01")

    worker = one(dv, "cdm_workers", "cdm_workernumber eq '000102'", "worker 000102")
    assert (worker["cdm_fullname"], worker["cdm_type"]) == ("Bob Brown", 754400001)

    # The seeded Dataverse unit "Each" carries symbol ea: the Units map updates it, no duplicate.
    def each_renamed() -> list[dict[str, Any]]:
        return dv.get_all("uoms", {"$filter": "msdyn_symbol eq 'ea' and msdyn_description eq 'Each'"})

    (each,) = wait_for(each_renamed, ARRIVE, "unit ea updated from Finance")
    assert each["name"] == "ea"
    assert len(dv.get_all("uoms", {"$filter": "msdyn_symbol eq 'ea'"})) == 1

    vendor = one(dv, "msdyn_vendors", f"msdyn_vendoraccountnumber eq 'US-101' and _msdyn_company_value eq {usmf}",
                 "vendor US-101")
    assert (vendor["msdyn_vendorname"], vendor["transactioncurrencyid"]) == ("Fabrikam Electronics", "USD")

    # One item released in two legal entities: two products, each bound to its company and unit.
    for code, guid, price in (("usmf", usmf, 25.0), ("demf", demf, 23.0)):
        product = one(dv, "products", f"productnumber eq '{code}-D0001'", f"product {code}-D0001")
        assert (product["_msdyn_company_value"], product["msdyn_productnumber"], product["price"]) == \
            (guid, "D0001", price)
        assert product["_defaultuomid_value"] == each["uomid"]

    assert dlq(stack) == []


def test_a_new_legal_entity_and_its_prerequisites_reach_dataverse_in_order(stack: Stack) -> None:
    fo, dv = stack.finance(), stack.dataverse()
    post(fo, "LegalEntities", {"dataAreaId": "fitn", "Name": "Fabrikam Italy Networks",
                               "AccountingCurrency": "EUR"})
    post(fo, "VendorsV2", {"dataAreaId": "fitn", "VendorAccountNumber": "IT-001",
                           "Name": "Rete Cavi", "VendorGroupId": "20", "CurrencyCode": "EUR"})
    post(fo, "Ledgers", {"LegalEntityId": "fitn", "Name": "FITN", "Description": "Ledger FITN",
                         "AccountingCurrency": "EUR", "ReportingCurrency": "USD",
                         "ChartOfAccounts": "Shared", "FiscalCalendar": "Fiscal"})
    post(fo, "Workers", {"PersonnelNumber": "000199", "FirstName": "Carla", "LastName": "Conti",
                         "Name": "Carla Conti", "WorkerType": "Employee",
                         "PrimaryContactEmail": "carla@fabrikam.it"})
    post(fo, "ExchangeRates", {"RateType": "Default", "FromCurrency": "SEK", "ToCurrency": "EUR",
                               "ValidFrom": "2026-01-01T12:00:00Z", "Rate": 0.087})
    post(fo, "Units", {"UnitSymbol": "box", "Description": "Box", "UnitClass": "Quantity",
                       "DecimalPrecision": 2})
    post(fo, "ReleasedProductsV2", {"dataAreaId": "fitn", "ItemNumber": "B0001", "ProductNumber": "B0001",
                                    "ProductName": "Boxed cable", "ProductType": "Item",
                                    "SalesUnitSymbol": "box", "SalesPrice": 40.0, "UnitCost": 20.0})

    company = one(dv, "cdm_companies", "cdm_companycode eq 'fitn'", "the new legal entity")
    assert (company["cdm_name"], company["accountingcurrency"]) == ("Fabrikam Italy Networks", "EUR")
    fitn = str(company["cdm_companyid"])

    vendor = one(dv, "msdyn_vendors", "msdyn_vendoraccountnumber eq 'IT-001'", "the new company's vendor")
    assert (vendor["_msdyn_company_value"], vendor["msdyn_vendorname"], vendor["msdyn_vendorgroupid"],
            vendor["transactioncurrencyid"]) == (fitn, "Rete Cavi", "20", "EUR")
    # Written after its company (versionnumber is one increasing sequence over all tables).
    assert int(vendor["versionnumber"]) > int(company["versionnumber"])

    ledger = one(dv, "msdyn_ledgers", f"_msdyn_company_value eq {fitn}", "the new company's ledger")
    assert (ledger["msdyn_accountingcurrency"], ledger["msdyn_reportingcurrency"],
            ledger["msdyn_description"]) == ("EUR", "USD", "Ledger FITN")

    worker = one(dv, "cdm_workers", "cdm_workernumber eq '000199'", "the new worker")
    assert (worker["cdm_firstname"], worker["cdm_lastname"], worker["cdm_type"],
            worker["cdm_primaryemailaddress"]) == ("Carla", "Conti", 754400000, "carla@fabrikam.it")

    rate = one(dv, "msdyn_currencyexchangerates", "msdyn_fromcurrencycode eq 'SEK'", "the new rate")
    assert (rate["msdyn_exchangeratetypename"], rate["msdyn_tocurrencycode"], rate["msdyn_exchangerate"],
            rate["msdyn_validfrom"], rate["msdyn_validto"]) == ("Default", "EUR", 0.087, "2026-01-01", None)

    box = one(dv, "uoms", "msdyn_symbol eq 'box'", "the new unit")
    assert (box["name"], box["msdyn_description"], box["msdyn_externalunitclassname"],
            box["msdyn_decimalprecision"]) == ("box", "Box", "Quantity", 2)

    product = one(dv, "products", "productnumber eq 'fitn-B0001'", "the new released product")
    assert (product["_msdyn_company_value"], product["_defaultuomid_value"], product["name"],
            product["producttypecode"], product["price"], product["currentcost"]) == \
        (fitn, box["uomid"], "Boxed cable", 1, 40.0, 20.0)
    assert int(product["versionnumber"]) > max(int(company["versionnumber"]), int(box["versionnumber"]))

    assert dlq(stack) == []
