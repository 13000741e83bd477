"""The demo tenant's Finance reference data (loaded with ``--seed`` into an empty database).

Two legal entities like the Contoso demo data: ``usmf`` (USD) and ``demf`` (EUR), with their
ledgers, exchange rates between their currencies, customers, vendors (also the two the
Dataverse seed holds), units, workers, released products, resource roles and the
category chain a project accountant sets up: transaction categories (with their automatic
shared categories), project categories per legal entity, expense categories. Seeding goes
through the normal ``Writer``, so the rows also appear in the change feed (principal
``seed``), from which a source connector can run the initial sync of FO-mastered data.
"""

from __future__ import annotations

from emulators.common.store import Store
from emulators.finance import categories
from emulators.finance.entities import entity_named
from emulators.finance.writer import Row, Writer

__all__ = ["LEGAL_ENTITIES", "seed"]

LEGAL_ENTITIES = (("usmf", "Contoso Entertainment System USA", "USD"),
                  ("demf", "Contoso Entertainment System Germany", "EUR"))

_RATES = (("EUR", "USD", 1.0850), ("USD", "EUR", 0.9217), ("GBP", "USD", 1.2650),
          ("GBP", "EUR", 1.1660), ("CAD", "USD", 0.7390), ("CAD", "EUR", 0.6810))

_CUSTOMERS = {
    "usmf": (("US-001", "Contoso Retail San Diego", "30", "USD"),
             ("US-002", "Contoso Retail Los Angeles", "30", "USD"),
             ("US-003", "Forest Wholesales", "10", "USD"),
             ("US-004", "Cave Wholesales", "10", "USD"),
             ("US-005", "Contoso Europe", "80", "EUR")),
    "demf": (("DE-001", "Contoso Europe", "10", "EUR"),
             ("DE-002", "Fabrikam Deutschland", "10", "EUR"),
             ("DE-003", "Northwind Traders GmbH", "20", "EUR")),
}
_VENDORS = {
    "usmf": (("US-101", "Fabrikam Electronics", "10", "USD"),
             ("US-102", "Litware Consulting", "20", "USD"),
             ("US-104", "Tailspin Parts", "10", "USD")),
    "demf": (("DE-01001", "Contoso Büroartikel", "10", "EUR"),
             ("DE-01002", "Adatum Hardware", "10", "EUR")),
}
# Vendors the Dataverse seed already holds, with the same values: the vendors map finds them.
_SHARED_VENDORS = {"usmf": (("USPM-000001", "Fabrikam Supplies", "10", "USD"),),
                   "demf": (("DEPM-000001", "Fabrikam Europe", "10", "EUR"),)}
# (legal entity, chart of accounts, fiscal calendar)
_LEDGERS = (("usmf", "Shared", "Fiscal"), ("demf", "Shared", "Fiscal"))
# The people behind the Dataverse seed's bookable resources (msdyn_personnelnumber).
_WORKERS = (("000101", "Alice", "Adams", "Employee"), ("000102", "Bob", "Brown", "Contractor"))
# (company, item number, name, type, sales unit, sales price, unit cost)
_PRODUCTS = (("usmf", "D0001", "Cable kit", "Item", "ea", 25.0, 11.5),
             ("usmf", "S0001", "Installation service", "Service", "h", 95.0, 60.0),
             ("demf", "D0001", "Cable kit", "Item", "ea", 23.0, 10.5))
_UNITS = (("ea", "Each", "Quantity"), ("h", "Hours", "Time"), ("day", "Days", "Time"),
          ("km", "Kilometers", "Length"))
_ROLES = ("Project Manager", "Solution Architect", "Consultant", "Developer", "Tester")
# (name, project category id, transaction type of the project category, expense type,
# transaction category id). The expense ones came from Dataverse, as in a live deployment
# (Dataverse masters transaction categories): their ids are the Dataverse seed's integration ids,
# so the expense categories on them reach Dataverse. The others are Finance's own (ids assigned).
_CATEGORIES = (("Design", "DESIGN", "Hour", None, None), ("Development", "DEVELOP", "Hour", None, None),
               ("Travel", "TRAVEL", "Expense", "Travel", "TCN-0000001001-A1B2C"),
               ("Hotel", "HOTEL", "Expense", "Hotel", "TCN-0000001010-E1F2A"),
               ("Hardware", "HARDWARE", "Item", None, None), ("Setup fee", "SETUPFEE", "Fee", None, None))
_SHARED_SUFFIX = {"Hour": 1, "Fee": 2, "Item": 3, "Expense": 4}


def _put(writer: Writer, name: str, row: Row) -> Row:
    return writer.insert(entity_named(name), row)


def seed(store: Store) -> None:
    """Load the demo tenant into an empty database, one transaction per kind of setup data."""
    writer = Writer(store)
    with store.transaction("seed"):
        _companies(writer)
    with store.transaction("seed"):
        _parties(writer)
    with store.transaction("seed"):
        _categories(writer)


def _companies(writer: Writer) -> None:
    for area, name, currency in LEGAL_ENTITIES:
        _put(writer, "LegalEntities", {"dataAreaId": area, "Name": name,
                                       "AccountingCurrency": currency})
    for src, dst, rate in _RATES:
        _put(writer, "ExchangeRates", {"RateType": "Default", "FromCurrency": src,
                                       "ToCurrency": dst, "ValidFrom": "2020-01-01T12:00:00Z",
                                       "ValidTo": None, "Rate": rate})
    for unit, description, unit_class in _UNITS:
        _put(writer, "Units", {"UnitSymbol": unit, "Description": description,
                               "UnitClass": unit_class})
    for area, chart, calendar in _LEDGERS:
        currency = next(c for a, _, c in LEGAL_ENTITIES if a == area)
        _put(writer, "Ledgers", {"LegalEntityId": area, "Name": area.upper(),
                                 "Description": f"Ledger {area.upper()}",
                                 "AccountingCurrency": currency, "ReportingCurrency": "USD",
                                 "ChartOfAccounts": chart, "FiscalCalendar": calendar})
    for number, first, last, kind in _WORKERS:
        _put(writer, "Workers", {"PersonnelNumber": number, "FirstName": first,
                                 "LastName": last, "Name": f"{first} {last}",
                                 "WorkerType": kind,
                                 "PrimaryContactEmail": f"{first.lower()}@contoso.com"})
    for area, item, name, kind, unit, price, cost in _PRODUCTS:
        _put(writer, "ReleasedProductsV2", {"dataAreaId": area, "ItemNumber": item,
                                            "ProductNumber": item, "ProductName": name,
                                            "ProductType": kind, "SalesUnitSymbol": unit,
                                            "SalesPrice": price, "UnitCost": cost})


def _parties(writer: Writer) -> None:
    for area, rows in _CUSTOMERS.items():
        for n, (account, name, group, currency) in enumerate(rows, start=1):
            _put(writer, "CustomersV3", {"dataAreaId": area, "CustomerAccount": account,
                                         "Name": name, "CustomerGroupId": group,
                                         "SalesCurrencyCode": currency,
                                         "PartyNumber": f"{area.upper()}-P{n:05d}"})
    for area in _VENDORS:
        for account, name, group, currency in (*_VENDORS[area], *_SHARED_VENDORS.get(area, ())):
            _put(writer, "VendorsV2", {"dataAreaId": area, "VendorAccountNumber": account,
                                       "Name": name, "VendorGroupId": group,
                                       "CurrencyCode": currency,
                                       "Language": "de" if area == "demf" else "en-us"})
    for area, _, _ in LEGAL_ENTITIES:
        for role in _ROLES:  # the role id is the Dataverse role's name (the roles map's key)
            _put(writer, "ResourceRoles", {"dataAreaId": area, "RoleId": role, "Name": role,
                                           "SourceDataId": None})


def _categories(writer: Writer) -> None:
    shared = entity_named("SharedCategories")
    for name, project_category, ttype, expense_type, given in _CATEGORIES:
        cid = given or categories.new_category_id(writer.conn, name)
        category = _put(writer, "TransactionCategories", {"CategoryId": cid, "Name": name,
                                                          "IntegrationId": None})
        categories.create_shared_categories(writer, category)
        shared_id = f"{cid}-{_SHARED_SUFFIX[ttype]}"
        if expense_type:
            writer.update(shared, {"CategoryId": shared_id},
                          {"CanBeUsedInExpense": "Yes", "ExpenseType": expense_type})
        for area, _, _ in LEGAL_ENTITIES:
            _put(writer, "ProjectCategories", {"dataAreaId": area, "CategoryId": project_category,
                                               "Name": name, "SharedCategoryId": shared_id,
                                               "CategoryGroupId": ttype.upper()[:10],
                                               "TransactionType": ttype})
            if expense_type:
                _put(writer, "ExpenseCategories", {"dataAreaId": area,
                                                   "CategoryId": project_category,
                                                   "Name": name, "SharedCategoryId": shared_id,
                                                   "ExpenseType": expense_type})
