"""Prerequisite (platform) maps, Finance-mastered and flowing to Dataverse (domain.md 1.1, 2).

Dual-write runs these before any Project Operations map, all with Finance as master: CDS
exchange rates, ledger, vendors V2, workers, units and released products (legal entities and
customers live in `streams.maps.setup`). Field names follow Microsoft's published map templates
("CDS Exchange Rates to msdyn_currencyexchangerates", "Ledger to msdyn_ledgers", "Vendors V2
to msdyn_vendors", "Worker to cdm_workers", "Units to uoms", "CDS released distinct products to
products"); fields of those templates the emulators do not hold (addresses, payment terms,
financial dimensions, product dimensions, ...) are not mapped.

Dependency order (1.7): a company-specific row (ledger, vendor, released product) is written
only once its legal entity exists in Dataverse: its key holds the company's GUID, which only
exists then (the ``present`` lookup on ``cdm_companies``). A released product also waits for
its sales unit (``present`` on ``uoms`` by symbol), which it binds as ``defaultuomid``.
Exchange rates, workers and units are global.

Choices where Microsoft's template names no single answer:

- Vendors, workers: the templates are two-way (``=``); here they flow Finance -> Dataverse
  only, Finance being the master of prerequisites (domain.md 1.1 step 1).
- Released products: Dataverse's ``products`` key ``productnumber`` is documented as the
  concatenation of company and product number; we write ``<dataAreaId>-<ItemNumber>`` (the
  separator keeps ``us`` + ``mf01`` apart from ``usmf`` + ``01``), bind ``msdyn_company`` and
  keep the bare number in ``msdyn_productnumber``, so one item released in two legal entities
  is two Dataverse products, as in dual-write.
- Worker type option values (``cdm_type``) and product type values are emulator choices.
"""

from __future__ import annotations

from streams.maps.model import Condition, Endpoint, FieldMap, Lookup, TableMap
from streams.maps.to_dataverse import COMPANY, bind, company_key, present, to_dv

__all__ = [
    "EXCHANGE_RATES",
    "LEDGERS",
    "PREREQUISITE_MAPS",
    "RELEASED_PRODUCTS",
    "UNITS",
    "VENDORS",
    "WORKERS",
]


EXCHANGE_RATES = TableMap(
    name="exchange_rates",
    source=Endpoint(system="finance", table="ExchangeRates"),
    target=Endpoint(system="dataverse", table="msdyn_currencyexchangerates",
                    primary_key="msdyn_currencyexchangerateid"),
    key=(
        to_dv("msdyn_exchangeratetypename", "RateType"),
        to_dv("msdyn_fromcurrencycode", "FromCurrency"),
        to_dv("msdyn_tocurrencycode", "ToCurrency"),
        # Finance renders a date at 12:00 UTC (2020-01-01T12:00:00Z); Dataverse as a date.
        to_dv("msdyn_validfrom", "ValidFrom", kind="date"),
    ),
    fields=(
        to_dv("msdyn_exchangerate", "Rate"),
        to_dv("msdyn_validto", "ValidTo", kind="date"),
    ),
    filter=present("RateType", "FromCurrency", "ToCurrency", "ValidFrom", "Rate"),
    target_id_column="msdyn_currencyexchangerateid",
)

LEDGERS = TableMap(
    name="ledgers",
    source=Endpoint(system="finance", table="Ledgers", company="LegalEntityId"),
    target=Endpoint(system="dataverse", table="msdyn_ledgers", primary_key="msdyn_ledgerid",
                    company_lookup="_msdyn_company_value"),
    # One ledger per legal entity: the company is the whole key.
    key=(company_key(),),
    fields=(
        to_dv("msdyn_name", "Name"),
        to_dv("msdyn_description", "Description"),
        to_dv("msdyn_accountingcurrency", "AccountingCurrency"),
        to_dv("msdyn_reportingcurrency", "ReportingCurrency"),
        to_dv("msdyn_chartofaccounts", "ChartOfAccounts"),
        to_dv("msdyn_fiscalcalendar", "FiscalCalendar"),
        bind("msdyn_company", "company", "cdm_companies"),
    ),
    lookups=(COMPANY.model_copy(update={"column": "LegalEntityId"}),),
    filter=present("LegalEntityId", "AccountingCurrency"),
    target_id_column="msdyn_ledgerid",
)

VENDORS = TableMap(
    name="vendors",
    source=Endpoint(system="finance", table="VendorsV2", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="msdyn_vendors", primary_key="msdyn_vendorid",
                    company_lookup="_msdyn_company_value"),
    key=(to_dv("msdyn_vendoraccountnumber", "VendorAccountNumber"), company_key()),
    fields=(
        to_dv("msdyn_vendorname", "Name"),
        to_dv("msdyn_vendorgroupid", "VendorGroupId"),
        to_dv("transactioncurrencyid", "CurrencyCode"),
        bind("msdyn_company", "company", "cdm_companies"),
    ),
    lookups=(COMPANY,),
    filter=present("dataAreaId", "VendorAccountNumber"),
    target_id_column="msdyn_vendorid",
)

WORKERS = TableMap(
    name="workers",
    source=Endpoint(system="finance", table="Workers"),
    target=Endpoint(system="dataverse", table="cdm_workers", primary_key="cdm_workerid"),
    key=(to_dv("cdm_workernumber", "PersonnelNumber"),),
    fields=(
        to_dv("cdm_firstname", "FirstName"),
        to_dv("cdm_middlename", "MiddleName"),
        to_dv("cdm_lastname", "LastName"),
        to_dv("cdm_fullname", "Name"),
        to_dv("cdm_type", "WorkerType", kind="int",
               value_map=(("Employee", 754400000), ("Contractor", 754400001))),
        to_dv("cdm_primaryemailaddress", "PrimaryContactEmail"),
    ),
    filter=present("PersonnelNumber"),
    target_id_column="cdm_workerid",
)

UNITS = TableMap(
    name="units",
    source=Endpoint(system="finance", table="Units"),
    target=Endpoint(system="dataverse", table="uoms", primary_key="uomid"),
    # msdyn_symbol is the documented integration key of units; the template also writes the
    # symbol as the unit's name.
    key=(to_dv("msdyn_symbol", "UnitSymbol"),),
    fields=(
        to_dv("name", "UnitSymbol"),
        to_dv("msdyn_description", "Description"),
        to_dv("msdyn_externalunitclassname", "UnitClass"),
        to_dv("msdyn_decimalprecision", "DecimalPrecision", kind="int", default=0),
    ),
    filter=present("UnitSymbol"),
    target_id_column="uomid",
)

RELEASED_PRODUCTS = TableMap(
    name="released_products",
    source=Endpoint(system="finance", table="ReleasedProductsV2", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="products", primary_key="productid",
                    company_lookup="_msdyn_company_value"),
    key=(FieldMap(target="productnumber", compose="{dataAreaId}-{ItemNumber}",
                  direction="to_dataverse"),),
    fields=(
        to_dv("msdyn_productnumber", "ProductNumber"),
        to_dv("msdyn_itemnumber", "ItemNumber"),
        to_dv("name", "ProductName"),
        to_dv("description", "ProductDescription"),
        to_dv("producttypecode", "ProductType", kind="int",
               value_map=(("Item", 1), ("Service", 3))),
        to_dv("price", "SalesPrice"),
        to_dv("currentcost", "UnitCost"),
        FieldMap(target="defaultuomid@odata.bind", lookup="unit", lookup_field="target_id",
                 template="/uoms({})", read_as="_defaultuomid_value", direction="to_dataverse"),
        bind("msdyn_company", "company", "cdm_companies"),
    ),
    lookups=(
        COMPANY,
        Lookup(name="unit", column="SalesUnitSymbol", ref="present", table="uoms",
               key_field="msdyn_symbol"),
    ),
    filter=present("dataAreaId", "ItemNumber"),
    # Products made in Dataverse without a legal entity are not released products.
    target_scope=(Condition(column="_msdyn_company_value", op="present"),),
    target_id_column="productid",
)

PREREQUISITE_MAPS: tuple[TableMap, ...] = (
    EXCHANGE_RATES, LEDGERS, WORKERS, UNITS, VENDORS, RELEASED_PRODUCTS)
