"""The demo tenant's reference data, loaded on start when asked and the database is empty.

GUIDs are deterministic: ``seed_id(entity_set, natural_key)`` is
``uuid5(SEED_NAMESPACE, f"{entity_set}:{natural_key}")``, so tests and demos can address rows
without reading them first (a unit test keeps this table in step with the code):

    entity set                   natural key             guid
    cdm_companies                usmf                    fa6c3d24-010e-5071-b3f7-0bcf3ddb1a96
    cdm_companies                demf                    fed30eb7-d7ba-50ac-b2a3-f2d470786a12
    accounts                     usmf/US-001             02d191a1-db53-5419-a499-fabcf0bce9a0
    accounts                     usmf/US-002             9cff1e77-c299-546b-96f8-0dab8b10e5d2
    accounts                     demf/DE-001             c0803813-6c62-53a5-add0-a8fff3e918ed
    accounts                     usmf/USPM-000001        e30dce41-b6e0-5493-a17e-a89cf90717bd
    msdyn_vendors                usmf/USPM-000001        c4f471e0-7b84-5d06-bf9e-0c50f251ce23
    msdyn_vendors                demf/DEPM-000001        c2bddb8e-215f-50da-987c-e6eb04c2d88a
    uoms                         Hour                    6a9158ab-e27f-58c2-9600-9398990c1448
    uoms                         Each                    27bf2f0a-6f61-51e2-8ada-dd546fe263bf
    uoms                         Day                     e93c5b2f-0b13-5af8-a601-4a296c4a3fcb
    products                     P-0001                  150be822-e070-5ce0-bf12-3bfd5bd68b04
    products                     P-0002                  619beb7a-b10c-5862-9ec6-0a28c7b756ce
    msdyn_organizationalunits    Contoso US              b475f042-7581-5092-ac9f-ecb59aa8a818
    msdyn_organizationalunits    Contoso DE              bc681e59-10be-5a8b-bc36-43e7b5b2d733
    bookableresourcecategories   Project Manager         f1d67c7a-77f0-57bf-aec3-b4ac9d1c5a02
    bookableresourcecategories   Developer               892dfb61-f21c-5186-9b29-72ec3c4ecc87
    bookableresourcecategories   Consultant              98cea012-4869-5835-8b68-b83bbf10d927
    systemusers                  alice@contoso.example   4de45e4f-b6cb-5aae-9996-af89d8955215
    systemusers                  bob@contoso.example     2085f742-8f9d-5b57-908e-818f51e00978
    systemusers                  carla@contoso.example   b0c43f97-4b2c-50d7-9f3c-45c7c818bb71
    bookableresources            Alice Adams             c9e64011-2bee-59fe-9dd5-63e2e3821061
    bookableresources            Bob Brown               e255d99c-0a7e-5bbf-9287-ac5e66468a67
    msdyn_transactioncategories  TCN-0000001000-D3B43    6c1746f0-fc30-5e9a-a0ac-f78bc75bd90b
    msdyn_transactioncategories  TCN-0000001001-A1B2C    184235f9-2d8a-58f0-aadc-f82402269b6a
    msdyn_transactioncategories  TCN-0000001002-C3D4E    17ce15ea-04ff-53f6-a24f-5e81e537257f
    msdyn_transactioncategories  TCN-0000001010-E1F2A    62478b58-2e4c-570c-bb65-71757825291e
    msdyn_transactioncategories  TCN-0000001099-E5F6A    2a2acd06-466a-50a3-b404-3ab4f6d1125a
    msdyn_expensecategories      usmf/Travel             3c6386ab-1dde-563f-bca9-729a35e4dbf6
    msdyn_expensecategories      demf/Travel             02244fd0-0228-5311-bdd5-6b05cc853088

Accounts ``US-001``, ``US-002``, ``DE-001`` are customers (``customertypecode`` 3);
``USPM-000001`` is a vendor as account (11); vendor invoices bind ``msdyn_vendors`` (its row there).
Alice and Bob are users with a bookable resource each (``userid``, personnel numbers 000101 and
000102); Carla is a user without one. ``TCN-0000001099-E5F6A`` (Retired) is inactive. Travel and Hotel are also in the Finance seed
(as if synced before), with the Travel expense categories Finance masters. Currencies: usmf USD, demf EUR.
"""

from __future__ import annotations

import uuid

from emulators.common.store import Store
from emulators.dataverse.records import Records
from emulators.dataverse.schema import BY_SET

SEED_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/dualwrite/emulators/dataverse")
SEED_PRINCIPAL = "seed"


def seed_id(entity_set: str, natural_key: str) -> str:
    return str(uuid.uuid5(SEED_NAMESPACE, f"{entity_set}:{natural_key}"))


def _company(code: str) -> str:
    return seed_id("cdm_companies", code)


# (domainname, fullname): Alice and Bob are bookable resources (type User), Carla is not.
_USERS = (("alice@contoso.example", "Alice Adams"), ("bob@contoso.example", "Bob Brown"),
          ("carla@contoso.example", "Carla Conti"))


def _rows() -> list[tuple[str, str, dict[str, object]]]:
    rows: list[tuple[str, str, dict[str, object]]] = [
        ("cdm_companies", "usmf", {"cdm_companycode": "usmf", "accountingcurrency": "USD",
                                   "cdm_name": "Contoso Entertainment System USA", "statecode": 0}),
        ("cdm_companies", "demf", {"cdm_companycode": "demf", "accountingcurrency": "EUR",
                                   "cdm_name": "Contoso Entertainment System Germany", "statecode": 0}),
    ]
    for company, number, name, currency, kind in (
            ("usmf", "US-001", "Forest Wholesales", "USD", 3),
            ("usmf", "US-002", "Sunset Wholesales", "USD", 3),
            ("demf", "DE-001", "Contoso Europe", "EUR", 3),
            ("usmf", "USPM-000001", "Fabrikam Supplies", "USD", 11)):
        rows.append(("accounts", f"{company}/{number}", {
            "accountnumber": number, "name": name, "msdyn_company": _company(company),
            "transactioncurrencyid": currency, "customertypecode": kind,
            "msdyn_customergroupid": "30" if kind == 3 else None, "statecode": 0}))
    for company, number, name, currency in (("usmf", "USPM-000001", "Fabrikam Supplies", "USD"),
                                             ("demf", "DEPM-000001", "Fabrikam Europe", "EUR")):
        rows.append(("msdyn_vendors", f"{company}/{number}", {
            "msdyn_vendoraccountnumber": number, "msdyn_vendorname": name,
            "msdyn_company": _company(company), "msdyn_vendorgroupid": "10",
            "transactioncurrencyid": currency, "statecode": 0}))
    # msdyn_symbol matches each unit to its Finance unit, as Microsoft asks before dual-write
    # starts (the Units map then updates these rows instead of adding duplicates).
    for name, symbol in (("Hour", "h"), ("Each", "ea"), ("Day", "day")):
        rows.append(("uoms", name, {"name": name, "quantity": 1.0, "msdyn_symbol": symbol}))
    for number, name in (("P-0001", "Cable kit"), ("P-0002", "Server rack")):
        rows.append(("products", number, {"productnumber": number, "name": name, "statecode": 0,
                                          "defaultuomid": seed_id("uoms", "Each")}))
    for name, currency, company in (("Contoso US", "USD", "usmf"), ("Contoso DE", "EUR", "demf")):
        rows.append(("msdyn_organizationalunits", name, {
            "msdyn_name": name, "msdyn_currency": currency, "msdyn_company": _company(company)}))
    for name in ("Project Manager", "Developer", "Consultant"):
        rows.append(("bookableresourcecategories", name, {"name": name, "statecode": 0}))
    for login, name in _USERS:
        rows.append(("systemusers", login, {"fullname": name, "domainname": login,
                                            "internalemailaddress": login, "isdisabled": False}))
    for name, number in (("Alice Adams", "000101"), ("Bob Brown", "000102")):
        login = next(login for login, user in _USERS if user == name)
        rows.append(("bookableresources", name, {
            "name": name, "resourcetype": 3, "statecode": 0, "msdyn_personnelnumber": number,
            "msdyn_company": _company("usmf"), "userid": seed_id("systemusers", login),
            "msdyn_organizationalunit": seed_id("msdyn_organizationalunits", "Contoso US")}))
    for code, name, state in (("TCN-0000001000-D3B43", "Hours", 0),
                              ("TCN-0000001001-A1B2C", "Travel", 0),
                              ("TCN-0000001002-C3D4E", "Materials", 0),
                              ("TCN-0000001010-E1F2A", "Hotel", 0),
                              ("TCN-0000001099-E5F6A", "Retired", 1)):
        rows.append(("msdyn_transactioncategories", code, {
            "msdyn_integrationid": code, "msdyn_name": name, "statecode": state}))
    for company in ("usmf", "demf"):  # as the expense categories map brought them from Finance
        rows.append(("msdyn_expensecategories", f"{company}/Travel", {
            "msdyn_categoryid": "TRAVEL", "msdyn_name": "Travel", "msdyn_expensetype": 192350000,
            "msdyn_company": _company(company), "statecode": 0,
            "msdyn_transactioncategory": seed_id("msdyn_transactioncategories",
                                                 "TCN-0000001001-A1B2C")}))
    return rows


def seed(store: Store) -> bool:
    """Load the reference data unless any company exists; returns whether it loaded."""
    records = Records(store)
    if records.select(BY_SET["cdm_companies"]):
        return False
    with store.transaction(SEED_PRINCIPAL):
        for entity_set, key, values in _rows():
            table = BY_SET[entity_set]
            records.insert(table, {table.primary_key: seed_id(entity_set, key), **values})
    return True
