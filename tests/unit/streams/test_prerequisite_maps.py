"""The prerequisite maps (Finance -> Dataverse): each turns a realistic Finance row, with the
facts its lookups name, into the Dataverse key and fields dual-write's template gives; filters
refuse what cannot be a row; the default registry captures their tables."""

from __future__ import annotations

from typing import Any

import pytest

from streams.maps import default_registry, present_fact
from streams.maps.prerequisites import (
    EXCHANGE_RATES,
    LEDGERS,
    PREREQUISITE_MAPS,
    RELEASED_PRODUCTS,
    UNITS,
    VENDORS,
    WORKERS,
)
from streams.transform import (
    Filtered,
    Mapped,
    NeedFacts,
    TransformError,
    observed_fields,
    transform,
)
from topics import target_key

pytestmark = pytest.mark.unit

USMF = "fa6c3d24-010e-5071-b3f7-0bcf3ddb1a96"
DEMF = "fed30eb7-d7ba-50ac-b2a3-f2d470786a12"
EACH = "27bf2f0a-6f61-51e2-8ada-dd546fe263bf"
USMF_PRESENT = present_fact(target_key("cdm_companies", {"cdm_companycode": "usmf"}))
DEMF_PRESENT = present_fact(target_key("cdm_companies", {"cdm_companycode": "demf"}))
EACH_PRESENT = present_fact(target_key("uoms", {"msdyn_symbol": "ea"}))
FACTS: dict[str, dict[str, Any] | None] = {
    USMF_PRESENT: {"target_id": USMF}, DEMF_PRESENT: {"target_id": DEMF},
    EACH_PRESENT: {"target_id": EACH}}


def mapped(out: object) -> Mapped:
    assert isinstance(out, Mapped), out
    return out


def rate(**extra: Any) -> dict[str, Any]:
    return {"RateType": "Default", "FromCurrency": "EUR", "ToCurrency": "USD",
            "ValidFrom": "2020-01-01T12:00:00Z", "ValidTo": None, "Rate": 1.085,
            "RecId": 5637144577, "RecVersion": 1, **extra}


def ledger(**extra: Any) -> dict[str, Any]:
    return {"LegalEntityId": "usmf", "Name": "USMF", "Description": "Ledger USMF",
            "AccountingCurrency": "USD", "ReportingCurrency": "EUR", "ChartOfAccounts": "Shared",
            "FiscalCalendar": "Fiscal", **extra}


def vendor(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "VendorAccountNumber": "US-101", "Name": "Fabrikam Electronics",
            "VendorGroupId": "10", "CurrencyCode": "USD", "Language": "en-us", **extra}


def worker(**extra: Any) -> dict[str, Any]:
    return {"PersonnelNumber": "000101", "FirstName": "Alice", "MiddleName": None,
            "LastName": "Adams", "Name": "Alice Adams", "WorkerType": "Contractor",
            "PrimaryContactEmail": "alice@contoso.com", **extra}


def unit(**extra: Any) -> dict[str, Any]:
    return {"UnitSymbol": "ea", "Description": "Each", "UnitClass": "Quantity",
            "DecimalPrecision": None, **extra}


def product(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "ItemNumber": "D0001", "ProductNumber": "D0001",
            "ProductName": "Cable kit", "ProductDescription": "Cat 6, 2 m", "ProductType": "Service",
            "SalesUnitSymbol": "ea", "SalesPrice": 25.0, "UnitCost": 11.5, **extra}


def test_exchange_rate_keys_on_type_currencies_and_the_date_it_starts() -> None:
    out = mapped(transform(EXCHANGE_RATES, rate(), {}))
    assert out.entity == "msdyn_currencyexchangerates"
    assert out.key == {"msdyn_exchangeratetypename": "Default", "msdyn_fromcurrencycode": "EUR",
                       "msdyn_tocurrencycode": "USD", "msdyn_validfrom": "2020-01-01"}
    assert out.fields == {**out.key, "msdyn_exchangerate": 1.085, "msdyn_validto": None}


def test_exchange_rate_without_its_rate_or_start_is_filtered() -> None:
    assert isinstance(transform(EXCHANGE_RATES, rate(Rate=None), {}), Filtered)
    assert isinstance(transform(EXCHANGE_RATES, rate(ValidFrom=""), {}), Filtered)


def test_ledger_waits_for_its_legal_entity_and_is_keyed_by_it() -> None:
    assert transform(LEDGERS, ledger(), {}) == NeedFacts((USMF_PRESENT,))
    out = mapped(transform(LEDGERS, ledger(), FACTS))
    assert out.entity == "msdyn_ledgers"
    assert out.key == {"_msdyn_company_value": USMF}
    assert out.fields == {
        "msdyn_name": "USMF", "msdyn_description": "Ledger USMF", "msdyn_accountingcurrency": "USD",
        "msdyn_reportingcurrency": "EUR", "msdyn_chartofaccounts": "Shared",
        "msdyn_fiscalcalendar": "Fiscal", "msdyn_company@odata.bind": f"/cdm_companies({USMF})"}
    assert out.readable["_msdyn_company_value"] == USMF


def test_ledger_without_accounting_currency_is_filtered() -> None:
    assert isinstance(transform(LEDGERS, ledger(AccountingCurrency=None), FACTS), Filtered)


def test_vendor_is_company_specific_and_waits_for_its_company() -> None:
    assert transform(VENDORS, vendor(), {}) == NeedFacts((USMF_PRESENT,))
    out = mapped(transform(VENDORS, vendor(), FACTS))
    assert out.key == {"msdyn_vendoraccountnumber": "US-101", "_msdyn_company_value": USMF}
    assert out.fields == {"msdyn_vendoraccountnumber": "US-101",
                          "msdyn_vendorname": "Fabrikam Electronics", "msdyn_vendorgroupid": "10",
                          "transactioncurrencyid": "USD",
                          "msdyn_company@odata.bind": f"/cdm_companies({USMF})"}
    # The same account in another company is another Dataverse row.
    other = mapped(transform(VENDORS, vendor(dataAreaId="demf"), FACTS))
    assert other.record_key != out.record_key
    # What Dataverse's feed shows for the written row reads back as the same fields (no echo loop).
    feed = {"msdyn_vendorid": "v-1", "msdyn_vendoraccountnumber": "US-101", "_msdyn_company_value": USMF,
            "msdyn_vendorname": "Fabrikam Electronics", "msdyn_vendorgroupid": "10",
            "transactioncurrencyid": "USD"}
    assert observed_fields(VENDORS, feed) == out.readable


@pytest.mark.parametrize("missing", ["dataAreaId", "VendorAccountNumber"])
def test_vendor_without_company_or_account_is_filtered(missing: str) -> None:
    assert isinstance(transform(VENDORS, vendor(**{missing: ""}), FACTS), Filtered)


def test_worker_maps_names_and_value_maps_the_worker_type() -> None:
    out = mapped(transform(WORKERS, worker(), {}))
    assert out.entity == "cdm_workers"
    assert out.key == {"cdm_workernumber": "000101"}
    assert out.fields == {"cdm_workernumber": "000101", "cdm_firstname": "Alice",
                          "cdm_middlename": None, "cdm_lastname": "Adams",
                          "cdm_fullname": "Alice Adams", "cdm_type": 754400001,
                          "cdm_primaryemailaddress": "alice@contoso.com"}
    assert mapped(transform(WORKERS, worker(WorkerType="Employee"), {})).fields["cdm_type"] == 754400000


def test_worker_with_an_unknown_worker_type_is_a_transform_error() -> None:
    with pytest.raises(TransformError, match="cdm_type"):
        transform(WORKERS, worker(WorkerType="Intern"), {})


def test_worker_without_personnel_number_is_filtered() -> None:
    assert isinstance(transform(WORKERS, worker(PersonnelNumber=None), {}), Filtered)


def test_unit_keys_on_its_symbol_with_the_documented_default_precision() -> None:
    out = mapped(transform(UNITS, unit(), {}))
    assert out.entity == "uoms"
    assert out.record_key == "uoms(msdyn_symbol='ea')"
    assert out.fields == {"msdyn_symbol": "ea", "name": "ea", "msdyn_description": "Each",
                          "msdyn_externalunitclassname": "Quantity", "msdyn_decimalprecision": 0}
    assert mapped(transform(UNITS, unit(DecimalPrecision=2), {})).fields["msdyn_decimalprecision"] == 2
    assert isinstance(transform(UNITS, unit(UnitSymbol=""), {}), Filtered)


def test_released_product_waits_for_its_company_and_its_sales_unit() -> None:
    assert transform(RELEASED_PRODUCTS, product(), {}) == NeedFacts((USMF_PRESENT, EACH_PRESENT))
    only_company = {USMF_PRESENT: FACTS[USMF_PRESENT]}
    assert transform(RELEASED_PRODUCTS, product(), only_company) == NeedFacts((EACH_PRESENT,))


def test_released_product_key_joins_company_and_item_number() -> None:
    out = mapped(transform(RELEASED_PRODUCTS, product(), FACTS))
    assert out.entity == "products"
    assert out.key == {"productnumber": "usmf-D0001"}
    assert out.fields == {
        "productnumber": "usmf-D0001", "msdyn_productnumber": "D0001", "msdyn_itemnumber": "D0001",
        "name": "Cable kit", "description": "Cat 6, 2 m", "producttypecode": 3, "price": 25.0,
        "currentcost": 11.5, "defaultuomid@odata.bind": f"/uoms({EACH})",
        "msdyn_company@odata.bind": f"/cdm_companies({USMF})"}
    assert out.readable["_defaultuomid_value"] == EACH and out.readable["_msdyn_company_value"] == USMF
    # One item released in two legal entities: two Dataverse products.
    demf = mapped(transform(RELEASED_PRODUCTS, product(dataAreaId="demf"), FACTS))
    assert demf.key == {"productnumber": "demf-D0001"}


def test_released_product_without_a_sales_unit_binds_none_and_waits_for_nothing_more() -> None:
    out = mapped(transform(RELEASED_PRODUCTS, product(SalesUnitSymbol=None),
                           {USMF_PRESENT: FACTS[USMF_PRESENT]}))
    assert out.fields["defaultuomid@odata.bind"] is None


@pytest.mark.parametrize("missing", ["dataAreaId", "ItemNumber"])
def test_released_product_without_company_or_item_is_filtered(missing: str) -> None:
    assert isinstance(transform(RELEASED_PRODUCTS, product(**{missing: None}), FACTS), Filtered)


def test_a_composed_key_part_that_is_not_a_scalar_is_a_transform_error() -> None:
    with pytest.raises(TransformError, match="part 'ItemNumber'"):
        transform(RELEASED_PRODUCTS, product(ItemNumber=["D0001"]), FACTS)


def test_the_default_registry_captures_the_prerequisite_tables_with_their_declarations() -> None:
    maps = default_registry()
    assert all(m.name in maps for m in PREREQUISITE_MAPS)
    finance = {ep.table: ep for ep in maps.captured("finance")}
    for table in ("ExchangeRates", "Ledgers", "VendorsV2", "Workers", "Units", "ReleasedProductsV2"):
        assert table in finance
    assert finance["Ledgers"].company == "LegalEntityId"
    assert finance["VendorsV2"].company == finance["ReleasedProductsV2"].company == "dataAreaId"
    assert finance["Units"].company is None and finance["Workers"].company is None
    dataverse = {ep.table: ep for ep in maps.captured("dataverse")}
    assert {t: (dataverse[t].primary_key, dataverse[t].company_lookup) for t in (
        "msdyn_currencyexchangerates", "msdyn_ledgers", "msdyn_vendors", "cdm_workers", "uoms",
        "products")} == {
        "msdyn_currencyexchangerates": ("msdyn_currencyexchangerateid", None),
        "msdyn_ledgers": ("msdyn_ledgerid", "_msdyn_company_value"),
        "msdyn_vendors": ("msdyn_vendorid", "_msdyn_company_value"),
        "cdm_workers": ("cdm_workerid", None),
        "uoms": ("uomid", None),
        "products": ("productid", "_msdyn_company_value")}


def test_every_prerequisite_map_targets_a_dataverse_alternate_key_the_emulator_has() -> None:
    from emulators.dataverse.schema import BY_SET

    for m in PREREQUISITE_MAPS:
        table = BY_SET[m.target.table]
        columns = tuple(sorted(f.target[1:-6] if f.target.startswith("_") else f.target for f in m.key))
        assert columns in {tuple(sorted(k)) for k in table.alternate_keys}, m.name
