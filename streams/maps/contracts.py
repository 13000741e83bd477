"""Project Operations setup maps born in Dataverse and flowing to Finance (domain.md 1.1, 1.7, 2).

    transaction_categories  msdyn_transactioncategories            -> TransactionCategories
    contract_headers        salesorders                            -> ProjectContractHeaders
    funding_sources         msdyn_projectcontractsplitbillingrules -> ProjectFundingSources
    contract_lines          salesorderdetails                      -> ProjectContractLines
    contract_milestones     msdyn_contractlinescheduleofvalues     -> OnAccountTransactions
    worker_resources        bookableresources                      -> ProjectWorkerResources

Dependency order (1.7), whatever order changes arrive in: a contract header waits for its
company and for its customer in Finance; a funding source for its contract header and its
customer in Finance; a contract line for its header and its project in Finance; a milestone for its
contract line in Finance. A child finds its parent's Finance key through a ``key`` lookup (the
key the parent's map wrote), so it also waits until the parent is written at all.

Deletes: every row here is Dataverse-mastered, and its delete deletes the Finance row its map
wrote. Dataverse deletes a contract's customers, lines and their milestones with the contract
(children first, one transaction) and unlinks its projects; the sink writes that transaction as
one change set in the same order, so Finance never sees a referenced row deleted first.

What is not mapped, and why:

- The customer a header or funding source names is found through its Dataverse row (the
  ``accounts`` row, whose account number fills the Finance field) and waited for in Finance
  (``CustomersV3``, learned from its own feed): a Dataverse-only account parks the contract,
  named in `dualwrite status`, until Finance has the customer.
- Split-billing percentages stay in Dataverse (domain.md 1.1 step 4); which funding source is
  primary is not a Dataverse column (Finance defaults it).
- Transaction categories sync only with their integration id (``TCN-...``), the Finance
  ``CategoryId``: Finance creates the shared categories itself (`emulators.finance.categories`).
- Worker resource import: Microsoft publishes only the map's label; the Finance entity
  ``ProjectWorkerResources`` (company, bookable resource id, name, personnel number) is this
  project's choice, keyed by ``bookableresourceid`` as the map's integration key requires.
"""

from __future__ import annotations

from streams.maps.model import Condition, Dependency, Endpoint, FieldMap, Lookup, TableMap

__all__ = [
    "CONTRACT_HEADERS",
    "CONTRACT_LINES",
    "CONTRACT_MAPS",
    "CONTRACT_MILESTONES",
    "FUNDING_SOURCES",
    "TRANSACTION_CATEGORIES",
    "WORKER_RESOURCES",
    "contract_key",
    "waits_for_contract",
]

# Dataverse choice values of salesorderdetail.msdyn_billingmethod (domain.md 5) -> Finance enum.
BILLING_METHODS = ((192350000, "TimeAndMaterial"), (192350001, "FixedPrice"))


def _company(column: str) -> Lookup:
    """The row's legal entity code, from the ``cdm_companies`` row its lookup column names."""
    return Lookup(name="company", column=column, ref="row", table="cdm_companies",
                  fields=("cdm_companycode",))


def contract_key(column: str) -> Lookup:
    """The Finance key (dataAreaId, ProjectContractId) the contract headers map wrote."""
    return Lookup(name="contract", column=column, ref="key", table="contract_headers")


def _customer(column: str) -> Lookup:
    return Lookup(name="customer", column=column, ref="row", table="accounts", fields=("accountnumber",))


def waits_for_contract(column: str) -> Dependency:
    return Dependency(entity="ProjectContractHeaders",
                      key=(("dataAreaId", "contract", "dataAreaId"),
                           ("ProjectContractId", "contract", "ProjectContractId")),
                      same_tx_column=column)


def waits_for_customer(company: str, company_field: str) -> Dependency:
    """The customer in Finance (``CustomersV3``): its account number from the Dataverse account,
    its company from ``company``'s ``company_field``. Its presence is learned from the Finance
    customers feed (no map writes there: `MapRegistry.presence_keys`)."""
    return Dependency(entity="CustomersV3",
                      key=(("dataAreaId", company, company_field),
                           ("CustomerAccount", "customer", "accountnumber")))


def _finance(table: str, company: str | None = "dataAreaId") -> Endpoint:
    return Endpoint(system="finance", table=table, company=company)


TRANSACTION_CATEGORIES = TableMap(
    name="transaction_categories",
    source=Endpoint(system="dataverse", table="msdyn_transactioncategories",
                    primary_key="msdyn_transactioncategoryid"),
    target=_finance("TransactionCategories", company=None),  # global, as in Dataverse
    key=(FieldMap(target="CategoryId", source="msdyn_integrationid"),),
    fields=(
        FieldMap(target="Name", source="msdyn_name"),
        FieldMap(target="IntegrationId", source="msdyn_transactioncategoryid"),
    ),
    filter=(Condition(column="msdyn_integrationid", op="present"),),
    # Finance's own categories (no Dataverse id) are not this map's rows.
    target_scope=(Condition(column="IntegrationId", op="present"),),
    target_id_column="RecId",
)

CONTRACT_HEADERS = TableMap(
    name="contract_headers",
    source=Endpoint(system="dataverse", table="salesorders", primary_key="salesorderid",
                    company_lookup="_msdyn_owningcompany_value"),
    target=_finance("ProjectContractHeaders"),
    key=(
        FieldMap(target="dataAreaId", lookup="company", lookup_field="cdm_companycode"),
        FieldMap(target="ProjectContractId", source="ordernumber"),
    ),
    fields=(
        FieldMap(target="Name", source="name"),
        FieldMap(target="CustomerAccountNumber", lookup="customer", lookup_field="accountnumber"),
        FieldMap(target="SalesCurrencyCode", source="transactioncurrencyid"),
        FieldMap(target="IntegrationSourceDataId", source="salesorderid"),
    ),
    lookups=(_company("_msdyn_owningcompany_value"), _customer("_customerid_value")),
    filter=(Condition(column="ordernumber", op="present"),
            Condition(column="_msdyn_owningcompany_value", op="present")),
    depends=(waits_for_customer("company", "cdm_companycode"),),
    target_id_column="RecId",
)

FUNDING_SOURCES = TableMap(
    name="funding_sources",
    source=Endpoint(system="dataverse", table="msdyn_projectcontractsplitbillingrules",
                    primary_key="msdyn_projectcontractsplitbillingruleid"),
    target=_finance("ProjectFundingSources"),
    key=(
        FieldMap(target="dataAreaId", lookup="contract", lookup_field="dataAreaId"),
        FieldMap(target="ProjectContractID", lookup="contract", lookup_field="ProjectContractId"),
        # Finance names a customer's funding source by the customer account.
        FieldMap(target="FundingSourceId", lookup="customer", lookup_field="accountnumber"),
    ),
    fields=(
        FieldMap(target="CustomerOrOrganization", lookup="customer", lookup_field="accountnumber"),
        FieldMap(target="FundingType", const="Customer"),
        FieldMap(target="Name", source="msdyn_name"),
    ),
    lookups=(contract_key("_msdyn_salesorder_value"), _customer("_msdyn_customer_value")),
    filter=(Condition(column="_msdyn_salesorder_value", op="present"),
            Condition(column="_msdyn_customer_value", op="present")),
    depends=(waits_for_contract("_msdyn_salesorder_value"),
             waits_for_customer("contract", "dataAreaId")),
    target_id_column="RecId",
)

CONTRACT_LINES = TableMap(
    name="contract_lines",
    source=Endpoint(system="dataverse", table="salesorderdetails", primary_key="salesorderdetailid"),
    target=_finance("ProjectContractLines"),
    key=(
        FieldMap(target="dataAreaId", lookup="contract", lookup_field="dataAreaId"),
        FieldMap(target="ProjectContractId", lookup="contract", lookup_field="ProjectContractId"),
        FieldMap(target="ContractLineId", source="salesorderdetailid"),
    ),
    fields=(
        FieldMap(target="Description", source="productdescription"),
        # Time and material -> a T&M billing rule; fixed price -> a milestone billing rule.
        FieldMap(target="BillingMethod", source="msdyn_billingmethod", value_map=BILLING_METHODS),
        FieldMap(target="LineProjectId", lookup="project", lookup_field="ProjectId"),
        FieldMap(target="LineAmount", source="extendedamount"),
        # Finance's line number is an integer: a line numbered "A" is refused (dead letter).
        FieldMap(target="LineSequenceNumber", source="msdyn_linenumber", kind="int"),
    ),
    lookups=(contract_key("_salesorderid_value"),
             Lookup(name="project", column="_msdyn_project_value", ref="key", table="projects")),
    filter=(Condition(column="_salesorderid_value", op="present"),),
    depends=(
        waits_for_contract("_salesorderid_value"),
        # A line without a project has no key here and waits for no project.
        Dependency(entity="ProjectsV2",
                   key=(("dataAreaId", "project", "dataAreaId"), ("ProjectId", "project", "ProjectId")),
                   same_tx_column="_msdyn_project_value"),
    ),
    target_id_column="RecId",
)

CONTRACT_MILESTONES = TableMap(
    name="contract_milestones",
    source=Endpoint(system="dataverse", table="msdyn_contractlinescheduleofvalues",
                    primary_key="msdyn_contractlinescheduleofvalueid"),
    target=_finance("OnAccountTransactions"),
    key=(
        FieldMap(target="dataAreaId", lookup="line", lookup_field="dataAreaId"),
        FieldMap(target="TransactionId", source="msdyn_contractlinescheduleofvalueid"),
    ),
    fields=(
        FieldMap(target="ProjectContractId", lookup="line", lookup_field="ProjectContractId"),
        FieldMap(target="ContractLineRef", lookup="line", lookup_field="ContractLineId"),
        FieldMap(target="InvoiceDate", source="msdyn_invoicedate", kind="date"),
        FieldMap(target="Description", source="msdyn_name"),
        FieldMap(target="CurrencyId", source="transactioncurrencyid"),
        FieldMap(target="Amount", source="msdyn_amount"),
    ),
    # The line's Finance key (dataAreaId, ProjectContractId, ContractLineId) as its map wrote it.
    lookups=(Lookup(name="line", column="_msdyn_contractlineid_value", ref="key", table="contract_lines"),),
    filter=(Condition(column="_msdyn_contractlineid_value", op="present"),),
    depends=(Dependency(entity="ProjectContractLines",
                        key=(("dataAreaId", "line", "dataAreaId"),
                             ("ProjectContractId", "line", "ProjectContractId"),
                             ("ContractLineId", "line", "ContractLineId")),
                        same_tx_column="_msdyn_contractlineid_value"),),
    target_id_column="RecId",
)

WORKER_RESOURCES = TableMap(
    name="worker_resources",
    source=Endpoint(system="dataverse", table="bookableresources", primary_key="bookableresourceid",
                    company_lookup="_msdyn_company_value"),
    target=_finance("ProjectWorkerResources"),
    key=(
        FieldMap(target="dataAreaId", lookup="company", lookup_field="cdm_companycode"),
        FieldMap(target="ResourceId", source="bookableresourceid"),
    ),
    fields=(
        FieldMap(target="Name", source="name"),
        FieldMap(target="PersonnelNumber", source="msdyn_personnelnumber"),
    ),
    lookups=(_company("_msdyn_company_value"),),
    filter=(Condition(column="_msdyn_company_value", op="present"),),
    target_id_column="RecId",
)

CONTRACT_MAPS: tuple[TableMap, ...] = (TRANSACTION_CATEGORIES, CONTRACT_HEADERS, FUNDING_SOURCES,
                                       CONTRACT_LINES, CONTRACT_MILESTONES, WORKER_RESOURCES)
