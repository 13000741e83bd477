"""Project invoices, Dataverse -> Finance (domain.md 1.3, 1.7, 2 map 10 "Project invoice proposals V2").

    invoices  invoices (confirmed proforma invoices) -> InvoiceProposals (ProjInvoiceProposalV2Entity)

A proforma invoice becomes a Finance invoice proposal when it is confirmed: Dataverse then, in
one transaction, creates for every unbilled-sales actual it bills a billed-sales actual, a Skip
Sync reversal and a connection to each, and marks the invoice confirmed. The order Finance needs
(domain.md 1.3, 1.7), whatever order the changes arrive in:

- the header waits for its contract and its funding source (the contract's customer) in
  Finance, and for every unbilled-sales actual it bills to be in Finance's staging table (`Bills`:
  the originals named by the confirmation's original -> billed connections), so that Finance's
  import finds them when it builds the proposal;
- the billed-sales actuals wait for the header (`streams.maps.actuals`: an actual naming an
  invoice waits for its proposal), and each connection waits for both its actuals.

Within the confirmation's change set the header is written first (`streams.pending.change_set_order`).
The header waits outside the change set for the actuals it bills; if they take longer than the
sink's ``tx_wait_s`` the rest of the change set is written without it (the billed actuals are
then imported once the header comes).

Not mapped, and why:

- Draft invoices: only a confirmed proforma invoice is a Finance proposal.
- ``totalamount``: Finance computes the proposal's amounts from its lines, which its import makes
  from the billed-sales actuals (there is no invoice line map: a line is an actual).
- Status: Finance's own (Open, then Posted by its posting job).
"""

from __future__ import annotations

from streams.maps.contracts import contract_key, waits_for_contract
from streams.maps.model import Bills, Condition, Dependency, Endpoint, FieldMap, Lookup, TableMap

__all__ = ["INVOICES", "INVOICE_MAPS"]

# invoice.statuscode of a confirmed proforma invoice [inf: emulator choice, domain.md 5]
CONFIRMED = 100001
# msdyn_transactionconnection.msdyn_transaction2role of the billed-sales side [inf]
ROLE_BILLED = 192350002

INVOICES = TableMap(
    name="invoices",
    source=Endpoint(system="dataverse", table="invoices", primary_key="invoiceid",
                    company_lookup="_msdyn_owningcompany_value"),
    target=Endpoint(system="finance", table="InvoiceProposals", company="dataAreaId"),
    key=(
        FieldMap(target="dataAreaId", lookup="contract", lookup_field="dataAreaId"),
        FieldMap(target="InvoiceProposalId", source="invoicenumber"),
    ),
    fields=(
        # Finance's import finds the proposal of a billed-sales actual by this id.
        FieldMap(target="SourceInvoiceId", source="invoiceid"),
        FieldMap(target="ProjectContractId", lookup="contract", lookup_field="ProjectContractId"),
        FieldMap(target="FundingSourceId", lookup="customer", lookup_field="accountnumber"),
        FieldMap(target="InvoiceDate", source="msdyn_invoicedate", kind="date"),
        FieldMap(target="SalesCurrency", source="transactioncurrencyid"),
        FieldMap(target="InvoiceHeaderText", source="name"),
    ),
    lookups=(contract_key("_salesorderid_value"),
             Lookup(name="customer", column="_customerid_value", ref="row", table="accounts",
                    fields=("accountnumber",))),
    filter=(Condition(column="statuscode", op="eq", value=CONFIRMED),
            Condition(column="invoicenumber", op="present"),
            Condition(column="_salesorderid_value", op="present")),
    depends=(
        waits_for_contract("_salesorderid_value"),
        # The contract's funding source for the invoiced customer (named by its account).
        Dependency(entity="ProjectFundingSources",
                   key=(("dataAreaId", "contract", "dataAreaId"),
                        ("ProjectContractID", "contract", "ProjectContractId"),
                        ("FundingSourceId", "customer", "accountnumber"))),
    ),
    bills=Bills(table="msdyn_transactionconnections", column="msdyn_transaction1", map="actuals",
                where=(Condition(column="msdyn_transaction2role", op="eq", value=ROLE_BILLED),)),
    target_id_column="RecId",
)

INVOICE_MAPS: tuple[TableMap, ...] = (INVOICES,)
