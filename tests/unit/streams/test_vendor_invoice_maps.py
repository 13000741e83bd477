"""The vendor invoice maps (Finance -> Dataverse): a posted invoice's header and project lines
become Dataverse rows bound to what they reference; a line binds its header by the alternate key
the header's map wrote (so both go in one change set) and waits only for that key, not for the
header's GUID; every documented prerequisite parks the row naming the missing record."""

from __future__ import annotations

from typing import Any

import pytest

from streams.maps import default_registry, key_fact, present_fact, row_fact
from streams.maps.vendor_invoices import VENDOR_INVOICE_LINES, VENDOR_INVOICES
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

USMF = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
VENDOR, PROJECT, TASK, TC, PRODUCT, UNIT = "v-guid", "p-guid", "t-guid", "tc-guid", "pr-guid", "u-guid"
TCN = "TCN-0000001003-C3D4E"


def present(table: str, **key: Any) -> str:
    return present_fact(target_key(table, key))


COMPANY = present("cdm_companies", cdm_companycode="usmf")
VENDOR_PRESENT = present("msdyn_vendors", msdyn_vendoraccountnumber="US-101", _msdyn_company_value=USMF)
HEADER_ROW = row_fact("finance", "ProjectVendorInvoices", "usmf|VI-1")
HEADER_KEY = key_fact("vendor_invoices", "usmf|VI-1")
PROJECT_PRESENT = present("msdyn_projects", msdyn_projectnumber="PRJ-1", _msdyn_owningcompany_value=USMF)
TASK_PRESENT = present("msdyn_projecttasks", msdyn_wbsid="1", _msdyn_project_value=PROJECT)
PROJECT_CATEGORY = row_fact("finance", "ProjectCategories", "usmf|MAT")
SHARED = row_fact("finance", "SharedCategories", f"{TCN}-3")
TC_PRESENT = present("msdyn_transactioncategories", msdyn_integrationid=TCN)
PRODUCT_PRESENT = present("products", productnumber="usmf-M0001")
UNIT_PRESENT = present("uoms", msdyn_symbol="ea")
FACTS: dict[str, dict[str, Any]] = {
    COMPANY: {"target_id": USMF}, VENDOR_PRESENT: {"target_id": VENDOR},
    HEADER_ROW: {"Currency": "USD"},
    HEADER_KEY: {"msdyn_externalinvoice": "VI-1", "_msdyn_owningcompany_value": USMF},
    PROJECT_PRESENT: {"target_id": PROJECT}, TASK_PRESENT: {"target_id": TASK},
    PROJECT_CATEGORY: {"SharedCategoryId": f"{TCN}-3"}, SHARED: {"TransactionCategoryId": TCN},
    TC_PRESENT: {"target_id": TC}, PRODUCT_PRESENT: {"target_id": PRODUCT},
    UNIT_PRESENT: {"target_id": UNIT}}


def header(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "InvoiceId": "VI-1", "VendorAccount": "US-101",
            "InvoiceNumber": "INV-4711", "InvoiceDate": "2026-11-05T12:00:00Z", "Currency": "USD",
            "Voucher": "VIV-000001", **extra}


def line(**extra: Any) -> dict[str, Any]:
    return {"dataAreaId": "usmf", "ExternalInvoiceLine": "VI-1-1", "InvoiceId": "VI-1",
            "ProjectId": "PRJ-1", "ActivityNumber": "1", "ProjectCategoryId": "MAT",
            "ItemId": "M0001", "Unit": "ea", "Quantity": 4.0, "UnitPrice": 25.0, "Amount": 100.0,
            "IntercompanyFlag": "No", **extra}


def mapped(out: object) -> Mapped:
    assert isinstance(out, Mapped), out
    return out


def test_the_header_is_keyed_by_invoice_and_company_and_binds_its_vendor_in_msdyn_vendors() -> None:
    out = mapped(transform(VENDOR_INVOICES, header(), FACTS))
    assert (out.entity, out.key) == ("msdyn_projectvendorinvoices",
                                     {"msdyn_externalinvoice": "VI-1", "_msdyn_owningcompany_value": USMF})
    assert out.fields == {
        "msdyn_externalinvoice": "VI-1", "msdyn_invoicenumber": "INV-4711",
        "msdyn_invoicedate": "2026-11-05", "transactioncurrencyid": "USD",
        "msdyn_vendor@odata.bind": f"/msdyn_vendors({VENDOR})",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})"}


def test_a_header_whose_vendor_is_not_in_dataverse_waits_naming_account_and_company() -> None:
    facts = {k: v for k, v in FACTS.items() if k != VENDOR_PRESENT}
    assert transform(VENDOR_INVOICES, header(), facts) == NeedFacts((VENDOR_PRESENT,))


def test_a_line_binds_everything_it_references_and_its_header_by_alternate_key() -> None:
    out = mapped(transform(VENDOR_INVOICE_LINES, line(), FACTS))
    assert (out.entity, out.key) == ("msdyn_projectvendorinvoicelines",
                                     {"msdyn_externalinvoiceline": "VI-1-1"})
    assert out.fields == {
        "msdyn_externalinvoiceline": "VI-1-1",
        "msdyn_vendorinvoice@odata.bind":
            f"/msdyn_projectvendorinvoices(_msdyn_owningcompany_value={USMF},msdyn_externalinvoice='VI-1')",
        "msdyn_project@odata.bind": f"/msdyn_projects({PROJECT})",
        "msdyn_projecttask@odata.bind": f"/msdyn_projecttasks({TASK})",
        "msdyn_transactioncategory@odata.bind": f"/msdyn_transactioncategories({TC})",
        "msdyn_product@odata.bind": f"/products({PRODUCT})", "msdyn_unit@odata.bind": f"/uoms({UNIT})",
        "msdyn_quantity": 4.0, "msdyn_unitprice": 25.0, "msdyn_amount": 100.0,
        "msdyn_intercompany": False, "transactioncurrencyid": "USD",
        "msdyn_owningcompany@odata.bind": f"/cdm_companies({USMF})"}


def test_the_header_binding_is_not_compared_since_dataverse_shows_its_guid() -> None:
    out = mapped(transform(VENDOR_INVOICE_LINES, line(), FACTS))
    assert not [name for name in out.readable if "vendorinvoice" in name]
    assert not [name for name in observed_fields(VENDOR_INVOICE_LINES, {}) if "vendorinvoice" in name]
    assert out.readable["_msdyn_product_value"] == PRODUCT


def test_a_line_waits_for_the_key_its_header_map_wrote_not_for_the_header_in_dataverse() -> None:
    facts = {k: v for k, v in FACTS.items() if k != HEADER_KEY}
    assert transform(VENDOR_INVOICE_LINES, line(), facts) == NeedFacts((HEADER_KEY,))


@pytest.mark.parametrize("missing", [UNIT_PRESENT, PRODUCT_PRESENT, TC_PRESENT, PROJECT_PRESENT])
def test_a_line_waits_naming_the_missing_dataverse_record(missing: str) -> None:
    facts = {k: v for k, v in FACTS.items() if k != missing}
    out = transform(VENDOR_INVOICE_LINES, line(), facts)
    assert isinstance(out, NeedFacts) and missing in out.keys


def test_the_category_is_found_through_the_project_category_and_its_shared_category() -> None:
    facts = {k: v for k, v in FACTS.items() if k not in (SHARED, TC_PRESENT)}
    assert transform(VENDOR_INVOICE_LINES, line(), facts) == NeedFacts((SHARED,))


def test_a_line_without_a_project_is_not_synced() -> None:
    assert isinstance(transform(VENDOR_INVOICE_LINES, line(ProjectId=""), FACTS), Filtered)
    assert isinstance(transform(VENDOR_INVOICE_LINES, line(ProjectId=None), FACTS), Filtered)


def test_an_intercompany_line_says_so() -> None:
    out = mapped(transform(VENDOR_INVOICE_LINES, line(IntercompanyFlag="Yes"), FACTS))
    assert out.fields["msdyn_intercompany"] is True


@pytest.mark.parametrize("invoice", ["VI/1", "VI%2F1", "VI?1"])
def test_a_header_key_dataverse_cannot_take_in_a_url_is_refused_not_bound_elsewhere(invoice: str) -> None:
    facts = {**FACTS, HEADER_KEY: {"msdyn_externalinvoice": invoice, "_msdyn_owningcompany_value": USMF}}
    with pytest.raises(TransformError, match="msdyn_projectvendorinvoices cannot be referenced"):
        transform(VENDOR_INVOICE_LINES, line(), facts)


def test_a_header_key_is_quoted_and_percent_encoded() -> None:
    facts = {**FACTS, HEADER_KEY: {"msdyn_externalinvoice": "O'Neil Ünï", "_msdyn_owningcompany_value": USMF}}
    out = mapped(transform(VENDOR_INVOICE_LINES, line(), facts))
    assert out.fields["msdyn_vendorinvoice@odata.bind"].endswith(
        "msdyn_externalinvoice='O''Neil%20%C3%9Cn%C3%AF')")


def test_the_registry_runs_both_maps_after_the_expense_maps_and_captures_project_categories() -> None:
    names = [m.name for m in default_registry().maps]
    assert names.index("project_expenses") < names.index("vendor_invoices") < names.index("vendor_invoice_lines")
    endpoint = default_registry().endpoint("finance", "ProjectCategories")
    assert endpoint.company == "dataAreaId"
    assert default_registry().indexed("finance", "ProjectVendorInvoices") == ("Currency",)
