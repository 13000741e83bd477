"""Project vendor invoices, Finance -> Dataverse (domain.md 1.5, 1.7, 2 maps 18-20, 5.1 items
22-23, 5.2 item 21).

    vendor_invoices       ProjectVendorInvoices (ProjVendInvoiceHeaderExportEntity)
                          -> msdyn_projectvendorinvoices
    vendor_invoice_lines  ProjectVendorInvoiceLines (ProjVendInvoiceLineExportEntity)
                          -> msdyn_projectvendorinvoicelines

Finance is the master: posting a pending vendor invoice writes the export header and its
project lines in one transaction. Dataverse keeps them read-only, approves a new line itself
and creates its Material-class actuals, which the actuals map (`streams.maps.actuals`) carries
back to Finance staging: this module only brings the invoice.

Keys: the header by invoice id (``msdyn_externalinvoice``) and its legal entity's GUID; a line
by ``msdyn_externalinvoiceline`` only, the integration key Microsoft tells to use when the line
map breaks on ``msdyn_owningcompany`` (map 1.0.0.6, intercompany invoices).

The header and its lines are one source transaction and land as one Dataverse change set,
header first (the processor's transactions: `streams.pending`): a line waits only for the key
its header's map wrote (``key`` lookup ``header``, published the moment the header's command is
emitted, in the same change set) and binds the header by that alternate key
(``msdyn_vendorinvoice@odata.bind: /msdyn_projectvendorinvoices(msdyn_externalinvoice=...,
_msdyn_owningcompany_value=<guid>)``, `FieldMap.bind_key`): a GUID would exist only after the
header was written. A header that waits (for its vendor) holds its lines back with it.

Everything else is a Dataverse row bound by its GUID through a ``present`` lookup, so a record
waits, parked and named in `dualwrite status`, until what it binds exists; these are the
documented failure modes of dual-write, which fail the Finance posting there:

- vendor: the emulator's header binds ``msdyn_vendor`` to ``msdyn_vendors`` (the vendor design
  whose table this project's ``vendors`` map writes; domain.md 5.1 item 22 documents the
  accounts design, whose lookup key is the same), found by vendor account number + company
  GUID, the key dual-write's error names ("Unable to lookup accounts with values
  {USPM-000022,<company guid>}"); the vendors map brings it;
- unit: the ``uoms`` row the ``units`` map writes (key ``msdyn_symbol``);
- product: the released product the ``released_products`` map writes (key ``productnumber``,
  ``<dataAreaId>-<ItemId>``);
- transaction category: Finance project category -> its shared category -> the transaction
  category id, the Dataverse row's ``msdyn_integrationid`` (as expense categories find it);
  made in Dataverse, the transaction categories map runs Dataverse -> Finance;
- project (number + company GUID) and task (project GUID + WBS id ``ActivityNumber``), and the
  legal entity.

A refusal no record can fix (an inactive transaction category: "Please select an Active,
Expense Transaction Category.") is Dataverse's answer to the write: a dead letter with its
message.

Filters as documented: a line only with a project id, a header only with its id and company.
The header's rule "at least one line with a project id" is Finance's: its export entity holds
only such invoices (a header cannot see its lines here).

Limits: a line that waits for its own prerequisite (unit, product, category) is written after
its header and the other lines, in a change set of its own. The posting is one change set only
when the Finance source reads both export tables in one feed request: it paces each table on
its own and counts a transaction's events per feed page, so a header read in one request and
its lines in the next become two transactions (header first still: the lines wait for its key). An invoice or category id holding
``|`` or ``\\`` is not found (the Finance source escapes those in record ids); such a line
waits, named. Deletes: Finance never deletes an export row.
"""

from __future__ import annotations

from streams.maps.model import Endpoint, FieldMap, Lookup, TableMap
from streams.maps.to_dataverse import COMPANY, bind, present, to_dv

__all__ = ["VENDOR_INVOICES", "VENDOR_INVOICE_LINES", "VENDOR_INVOICE_MAPS"]

_OWNING_COMPANY = "_msdyn_owningcompany_value"
_IN_COMPANY = (("_msdyn_company_value", "company", "target_id"),)

VENDOR_INVOICES = TableMap(
    name="vendor_invoices",
    source=Endpoint(system="finance", table="ProjectVendorInvoices", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="msdyn_projectvendorinvoices",
                    primary_key="msdyn_projectvendorinvoiceid", company_lookup=_OWNING_COMPANY),
    key=(to_dv("msdyn_externalinvoice", "InvoiceId"),
         FieldMap(target=_OWNING_COMPANY, lookup="company", lookup_field="target_id",
                  direction="to_dataverse", in_fields=False)),
    fields=(
        to_dv("msdyn_invoicenumber", "InvoiceNumber"),
        to_dv("msdyn_invoicedate", "InvoiceDate", kind="date"),
        to_dv("transactioncurrencyid", "Currency"),
        bind("msdyn_vendor", "vendor", "msdyn_vendors"),
        bind("msdyn_owningcompany", "company", "cdm_companies"),
    ),
    lookups=(
        COMPANY,
        Lookup(name="vendor", column="VendorAccount", ref="present", table="msdyn_vendors",
               key_field="msdyn_vendoraccountnumber", also=_IN_COMPANY),
    ),
    filter=present("dataAreaId", "InvoiceId"),
    target_id_column="msdyn_projectvendorinvoiceid",
)

VENDOR_INVOICE_LINES = TableMap(
    name="vendor_invoice_lines",
    source=Endpoint(system="finance", table="ProjectVendorInvoiceLines", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="msdyn_projectvendorinvoicelines",
                    primary_key="msdyn_projectvendorinvoicelineid", company_lookup=_OWNING_COMPANY),
    key=(to_dv("msdyn_externalinvoiceline", "ExternalInvoiceLine"),),
    fields=(
        FieldMap(target="msdyn_vendorinvoice@odata.bind", lookup="header",
                 bind_key="msdyn_projectvendorinvoices", read_as="_msdyn_vendorinvoice_value",
                 direction="to_dataverse"),
        bind("msdyn_project", "project", "msdyn_projects"),
        bind("msdyn_projecttask", "task", "msdyn_projecttasks"),
        bind("msdyn_transactioncategory", "category", "msdyn_transactioncategories"),
        bind("msdyn_product", "product", "products"),
        bind("msdyn_unit", "unit", "uoms"),
        to_dv("msdyn_quantity", "Quantity"),
        to_dv("msdyn_unitprice", "UnitPrice"),
        to_dv("msdyn_amount", "Amount"),
        to_dv("msdyn_intercompany", "IntercompanyFlag", kind="text",
              value_map=(("Yes", True), ("No", False))),
        FieldMap(target="transactioncurrencyid", lookup="invoice", lookup_field="Currency",
                 direction="to_dataverse"),
        bind("msdyn_owningcompany", "company", "cdm_companies"),
    ),
    lookups=(
        COMPANY,
        Lookup(name="invoice", column="InvoiceId", compose="{dataAreaId}|{InvoiceId}", ref="row",
               system="finance", table="ProjectVendorInvoices", fields=("Currency",)),
        Lookup(name="header", column="InvoiceId", compose="{dataAreaId}|{InvoiceId}", ref="key",
               table="vendor_invoices"),
        Lookup(name="project", column="ProjectId", ref="present", table="msdyn_projects",
               key_field="msdyn_projectnumber",
               also=((_OWNING_COMPANY, "company", "target_id"),)),
        Lookup(name="task", column="ActivityNumber", ref="present", table="msdyn_projecttasks",
               key_field="msdyn_wbsid", also=(("_msdyn_project_value", "project", "target_id"),)),
        Lookup(name="project_category", column="ProjectCategoryId",
               compose="{dataAreaId}|{ProjectCategoryId}", ref="row", system="finance",
               table="ProjectCategories", fields=("SharedCategoryId",)),
        Lookup(name="shared", column="SharedCategoryId", via="project_category", ref="row",
               system="finance", table="SharedCategories", fields=("TransactionCategoryId",)),
        Lookup(name="category", column="TransactionCategoryId", via="shared", ref="present",
               table="msdyn_transactioncategories", key_field="msdyn_integrationid"),
        Lookup(name="product", column="ItemId", compose="{dataAreaId}-{ItemId}", ref="present",
               table="products", key_field="productnumber"),
        Lookup(name="unit", column="Unit", ref="present", table="uoms", key_field="msdyn_symbol"),
    ),
    filter=present("dataAreaId", "ExternalInvoiceLine", "ProjectId"),
    target_id_column="msdyn_projectvendorinvoicelineid",
    reads=(Endpoint(system="finance", table="ProjectCategories", company="dataAreaId"),),
)

VENDOR_INVOICE_MAPS: tuple[TableMap, ...] = (VENDOR_INVOICES, VENDOR_INVOICE_LINES)
