"""Project actuals and the links between them, Dataverse -> Finance staging (domain.md 1.2, 1.7, 2).

    actuals                    msdyn_actuals                -> ActualsStaging (ProjCDSActualsImport)
    transaction_relationships  msdyn_transactionconnections -> TransactionRelationships

Dependency order (1.7, level 6 and 7): an actual is written only once Finance holds its project,
its task and contract line (when it has them), its bookable resource (``ProjectWorkerResources``),
its role in the project's legal entity (``ResourceRoles``), its transaction category and its
unit (``Units``, learned from Finance's own feed: no map writes it). An unset optional lookup
waits for nothing. Project, task, contract, line, resource and category are found through
``key`` lookups, so the Finance keys are exactly the ones their maps wrote (and the actual also
waits until they are written at all). The role is a fan-out map's row (one per legal entity,
`streams.maps.roles`), which has no single key fact: it is found by the Dataverse role's name,
its Finance ``RoleId``, in the project's company. The unit is found by its symbol on the
Dataverse ``uoms`` row (the integration key of the Units map). A transaction connection waits
until both actuals it links are in ``ActualsStaging`` (or are written in the same change set).

Filters:

- An actual is sent only while its Skip Sync flag is false; unset counts as false (Dataverse
  sets the flag when it creates the actual, and a Boolean column left unset is false). Skip
  Sync rows are intercompany cost actuals and the negative unbilled-sales reversals of a
  proforma confirmation: Finance recreates or does not need them.
- A connection whose second transaction is a *reversal* is not sent: its reversal is exactly
  such a Skip Sync actual, never in Finance, so the connection could never be linked there and
  would wait for ever. The original -> billed connection of the same confirmation is sent. A
  connection to any other Skip Sync actual (Dataverse creates none today) would wait, parked
  and named in `dualwrite status`: the connection row does not say its actuals' flag.

Deletes: actuals are immutable in Project Operations (a correction is a new, reversing actual),
so Dataverse deletes one only when it rolls back the business event that created it. Finance's
prevalidation treats a staged actual that no longer exists in Dataverse as invalid so that no
journal is built from it; deleting the staging row is the same outcome, and keeps reconcile from
reporting a row no source holds. So a delete follows the map's usual rule: it deletes the staging
row the actual's map wrote. Connections are deleted likewise.

Accounting write-back, Finance -> Dataverse (``write_back``): Voucher, AmountMST, ExchangeRate
and SalesTaxAmount, filled when Finance posts the integration journal or the invoice proposal, go
onto the same Dataverse actual's voucher number, accounting amount, exchange rate and sales tax,
update-only. No echo either way: the Dataverse change they make maps to the same staging fields
(a no-op), and Finance's posting changes no field written forward.

Not mapped, and why:

- ``ImportStatus`` / ``ImportError`` are Finance's own (the Import from staging job).
- Forward, ``ExchangeRateDate``, ``UnitPriceMST``, ``ContractingUnit``, ``StartDate``,
  ``EndDate``, ``AdjustmentStatus``: the emulator entity does not hold them, or Finance computes
  them at import (``ExchangeRate`` too: it comes back with the write-back).
- Transaction types without a Finance staging type (project contract, resourcing unit cost,
  inter-organizational sales) have no value map entry: such an actual is dead-lettered with the
  reason, never written with a guessed type.
"""

from __future__ import annotations

from streams.maps.contracts import contract_key, waits_for_contract
from streams.maps.model import Condition, Dependency, Endpoint, FieldMap, Lookup, TableMap

__all__ = ["ACTUALS", "ACTUAL_MAPS", "TRANSACTION_RELATIONSHIPS"]

# Dataverse choice values (domain.md 5, emulators/dataverse/options.py) -> Finance enum values.
TRANSACTION_TYPES = ((192350000, "Cost"), (192350005, "UnbilledSales"), (192350006, "BilledSales"))
TRANSACTION_CLASSES = ((192350000, "Time"), (192350001, "Expense"), (192350002, "Material"),
                       (192350003, "Milestone"), (192350004, "Fee"))
# Finance's line property names for the billing types (the PMA parameter mapping).
BILLING_TYPES = ((192350000, "NonChargeable"), (192350001, "Chargeable"),
                 (192350002, "Complimentary"), (192350003, "NotAvailable"))
# [inf] Finance's billing status ids are not published: the Dataverse labels as ids of at most
# 20 characters (the staging field's size; "Cust" as in Finance's own names).
BILLING_STATUSES = ((192350000, "UnbilledSalesCreated"), (192350001, "CustInvoiceCreated"),
                    (192350002, "CustInvoicePosted"), (192350003, "Canceled"),
                    (192350004, "ReadyToInvoice"))
# [inf] msdyn_transactionconnection roles and types (emulator option values).
CONNECTION_ROLES = ((192350000, "Original"), (192350001, "Reversal"), (192350002, "Billed"))
CONNECTION_TYPES = ((192350000, "Actual"),)
ROLE_REVERSAL = 192350001


def _key(name: str, column: str, map_name: str) -> Lookup:
    """The Finance key the map ``map_name`` wrote for the row ``column`` names."""
    return Lookup(name=name, column=column, ref="key", table=map_name)


def _waits(entity: str, lookup: str, fields: tuple[str, ...],
           same_tx_column: str | None = None) -> Dependency:
    """The Finance row ``entity`` keyed by ``fields`` of ``lookup``'s fact: a ``key`` fact holds
    the Finance key its map wrote, under the same field names."""
    return Dependency(entity=entity, key=tuple((f, lookup, f) for f in fields),
                      same_tx_column=same_tx_column)


ACTUALS = TableMap(
    name="actuals",
    source=Endpoint(system="dataverse", table="msdyn_actuals", primary_key="msdyn_actualid",
                    company_lookup="_msdyn_owningcompany_value"),
    target=Endpoint(system="finance", table="ActualsStaging", company="ProjectDataAreaId"),
    key=(
        # The project's legal entity, as the projects map wrote it (an actual without a project
        # has none: a dead letter, never a guessed company).
        FieldMap(target="ProjectDataAreaId", lookup="project", lookup_field="dataAreaId"),
        FieldMap(target="ActualId", source="msdyn_actualid"),
    ),
    fields=(
        FieldMap(target="TransType", source="msdyn_transactiontypecode", value_map=TRANSACTION_TYPES),
        FieldMap(target="TransactionClassification", source="msdyn_transactionclassification",
                 value_map=TRANSACTION_CLASSES),
        FieldMap(target="ProjectId", lookup="project", lookup_field="ProjectId"),
        FieldMap(target="TaskId", lookup="task", lookup_field="Task"),
        FieldMap(target="ContractId", lookup="contract", lookup_field="ProjectContractId"),
        FieldMap(target="ContractLine", lookup="line", lookup_field="ContractLineId"),
        FieldMap(target="ResourceId", lookup="resource", lookup_field="ResourceId"),
        FieldMap(target="TransactionCategory", lookup="category", lookup_field="CategoryId"),
        FieldMap(target="Quantity", source="msdyn_quantity"),
        FieldMap(target="UnitOfMeasure", lookup="unit", lookup_field="msdyn_symbol"),
        FieldMap(target="UnitPrice", source="msdyn_price"),
        FieldMap(target="Amount", source="msdyn_amount"),
        FieldMap(target="TransactionCurrencyId", source="transactioncurrencyid"),
        FieldMap(target="DocumentDate", source="msdyn_documentdate", kind="date"),
        FieldMap(target="AccountingDate", source="msdyn_accountingdate", kind="date"),
        FieldMap(target="BillingType", source="msdyn_billingtype", value_map=BILLING_TYPES),
        FieldMap(target="BillingStatusId", source="msdyn_billingstatus", value_map=BILLING_STATUSES),
        # The proforma invoice a billed-sales actual belongs to (Finance finds the invoice
        # proposal by this Dataverse id at import).
        FieldMap(target="InvoiceId", source="_msdyn_invoice_value"),
    ),
    lookups=(
        _key("project", "_msdyn_project_value", "projects"),
        _key("task", "_msdyn_task_value", "project_tasks"),
        contract_key("_msdyn_salescontract_value"),
        _key("line", "_msdyn_salescontractline_value", "contract_lines"),
        _key("resource", "_msdyn_bookableresource_value", "worker_resources"),
        Lookup(name="role", column="_msdyn_resourcecategory_value", ref="row",
               table="bookableresourcecategories", fields=("name",)),
        _key("category", "_msdyn_transactioncategory_value", "transaction_categories"),
        Lookup(name="unit", column="_msdyn_unit_value", ref="row", table="uoms",
               fields=("msdyn_symbol",)),
        _key("invoice", "_msdyn_invoice_value", "invoices"),
    ),
    filter=(Condition(column="msdyn_skipsync", op="ne", value=True),),
    depends=(
        _waits("ProjectsV2", "project", ("dataAreaId", "ProjectId"), "_msdyn_project_value"),
        _waits("ProjectTasks", "task", ("dataAreaId", "ProjectId", "Task"), "_msdyn_task_value"),
        waits_for_contract("_msdyn_salescontract_value"),
        _waits("ProjectContractLines", "line", ("dataAreaId", "ProjectContractId", "ContractLineId"),
               "_msdyn_salescontractline_value"),
        _waits("ProjectWorkerResources", "resource", ("dataAreaId", "ResourceId")),
        # Roles are per legal entity: the role in the project's company.
        Dependency(entity="ResourceRoles", key=(("dataAreaId", "project", "dataAreaId"),
                                                ("RoleId", "role", "name"))),
        _waits("TransactionCategories", "category", ("CategoryId",)),
        Dependency(entity="Units", key=(("UnitSymbol", "unit", "msdyn_symbol"),)),
        # A billed-sales actual after its invoice proposal (written first in the same change set).
        _waits("InvoiceProposals", "invoice", ("dataAreaId", "InvoiceProposalId"), "_msdyn_invoice_value"),
    ),
    # Accounting write-back: posting the integration journal or the invoice proposal fills
    # these on the staging row; they go onto the same Dataverse actual, update-only (a deleted
    # actual is a dead letter, "Unable to write data to entity msdyn_actuals" in dual-write).
    reverse_key=(FieldMap(target="msdyn_actualid", source="ActualId", in_fields=False),),
    write_back=(
        FieldMap(target="Voucher", source="msdyn_vouchernumber"),
        FieldMap(target="AmountMST", source="msdyn_accountingamount"),
        FieldMap(target="ExchangeRate", source="msdyn_exchangerate"),
        FieldMap(target="SalesTaxAmount", source="msdyn_salestaxamount"),
    ),
)


def _actual(name: str, column: str) -> Lookup:
    return _key(name, column, "actuals")


TRANSACTION_RELATIONSHIPS = TableMap(
    name="transaction_relationships",
    source=Endpoint(system="dataverse", table="msdyn_transactionconnections",
                    primary_key="msdyn_transactionconnectionid"),
    target=Endpoint(system="finance", table="TransactionRelationships"),  # global, keyed by id
    key=(FieldMap(target="ConnectionId", source="msdyn_transactionconnectionid"),),
    fields=(
        # The actual ids as the actuals map wrote them: a connection is written only after both.
        FieldMap(target="Transaction1Id", lookup="first", lookup_field="ActualId"),
        FieldMap(target="Transaction1Role", source="msdyn_transaction1role", value_map=CONNECTION_ROLES),
        FieldMap(target="Transaction1Type", source="msdyn_transaction1type", value_map=CONNECTION_TYPES),
        FieldMap(target="Transaction2Id", lookup="second", lookup_field="ActualId"),
        FieldMap(target="Transaction2Role", source="msdyn_transaction2role", value_map=CONNECTION_ROLES),
        FieldMap(target="Transaction2Type", source="msdyn_transaction2type", value_map=CONNECTION_TYPES),
    ),
    lookups=(_actual("first", "msdyn_transaction1"), _actual("second", "msdyn_transaction2")),
    filter=(Condition(column="msdyn_transaction1", op="present"),
            Condition(column="msdyn_transaction2", op="present"),
            Condition(column="msdyn_transaction2role", op="ne", value=ROLE_REVERSAL)),
    depends=tuple(
        Dependency(entity="ActualsStaging",
                   key=(("ProjectDataAreaId", side, "ProjectDataAreaId"), ("ActualId", side, "ActualId")),
                   same_tx_column=column)
        for side, column in (("first", "msdyn_transaction1"), ("second", "msdyn_transaction2"))),
)

ACTUAL_MAPS: tuple[TableMap, ...] = (ACTUALS, TRANSACTION_RELATIONSHIPS)
