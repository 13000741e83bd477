"""The catalogue of Finance data entities the emulator serves (domain.md section 5.2).

Field names are a contract with the Finance connectors and the stream maps; they follow the FO
public entities (CDM schema docs) where published, otherwise they are emulator choices.
Export entities written by posting (``ProjectExpenses``, ``ProjectVendorInvoices``,
``ProjectVendorInvoiceLines``) are read-only over OData: they stand in for the FO export
entities dual-write pushes to Dataverse when an expense report or a vendor invoice is posted.
"""

from __future__ import annotations

from emulators.finance.schema import Entity, Field, Ref

__all__ = ["ENTITIES", "NOYES", "entity", "entity_named"]

NOYES = ("No", "Yes")
TRANS_TYPES = ("Hour", "Expense", "Item", "Fee", "OnAccount")


def _s(name: str, size: int | None = None, required: bool = False) -> Field:
    return Field(name, "str", size=size, required=required)


def _r(name: str) -> Field:
    return Field(name, "real")


def _d(name: str) -> Field:
    return Field(name, "date")


def _e(name: str, values: tuple[str, ...], default: str | None = None) -> Field:
    return Field(name, "enum", enum=values, default=default)


DAID = _s("dataAreaId", 4, required=True)

ENTITIES: tuple[Entity, ...] = (
    # The company table itself is global: every caller sees every legal entity.
    Entity("LegalEntities", "OMLegalEntity", ("dataAreaId",),
           (DAID, _s("Name", 60), _s("AccountingCurrency", 3, required=True)),
           company_field=None),
    Entity("ExchangeRates", "ExchangeRateEntity", ("RateType", "FromCurrency", "ToCurrency",
                                                   "ValidFrom"),
           (_s("RateType", 20, True), _s("FromCurrency", 3, True), _s("ToCurrency", 3, True),
            _d("ValidFrom"), _d("ValidTo"), _r("Rate")), company_field=None),
    Entity("CustomersV3", "CustCustomerV3Entity", ("dataAreaId", "CustomerAccount"),
           (DAID, _s("CustomerAccount", 20, True), _s("Name", 100), _s("CustomerGroupId", 10),
            _s("SalesCurrencyCode", 3), _s("PartyNumber", 40))),
    Entity("VendorsV2", "VendVendorV2Entity", ("dataAreaId", "VendorAccountNumber"),
           (DAID, _s("VendorAccountNumber", 20, True), _s("Name", 100), _s("VendorGroupId", 10),
            _s("CurrencyCode", 3), _s("Language", 7))),
    Entity("Units", "UnitOfMeasureEntity", ("UnitSymbol",),
           (_s("UnitSymbol", 10, True), _s("Description", 60), _s("UnitClass", 20),
            Field("DecimalPrecision", "int")),
           company_field=None),
    # One ledger per legal entity, keyed by it: the company's accounting currency lives here.
    Entity("Ledgers", "LedgerEntity", ("LegalEntityId",),
           (_s("LegalEntityId", 4, True), _s("Name", 60), _s("Description", 60),
            _s("AccountingCurrency", 3, True), _s("ReportingCurrency", 3),
            _s("ChartOfAccounts", 60), _s("FiscalCalendar", 60)),
           company_field="LegalEntityId"),
    # Workers are global (a person), their employments per legal entity (not modelled).
    Entity("Workers", "HcmWorkerEntity", ("PersonnelNumber",),
           (_s("PersonnelNumber", 25, True), _s("FirstName", 100), _s("MiddleName", 100),
            _s("LastName", 100), _s("Name", 200),
            _e("WorkerType", ("Employee", "Contractor"), "Employee"),
            _s("PrimaryContactEmail", 100)),
           company_field=None),
    Entity("ReleasedProductsV2", "EcoResReleasedProductV2Entity", ("dataAreaId", "ItemNumber"),
           (DAID, _s("ItemNumber", 20, True), _s("ProductNumber", 70), _s("ProductName", 60),
            _s("ProductDescription", 1000), _e("ProductType", ("Item", "Service"), "Item"),
            _s("SalesUnitSymbol", 10), _r("SalesPrice"), _r("UnitCost")),
           refs=(Ref(("SalesUnitSymbol",), "Units", ("UnitSymbol",)),)),
    # Operating units of type department (OMOperatingUnitEntity); no built-in map reads them.
    Entity("OperatingUnits", "OMOperatingUnitEntity", ("OperatingUnitNumber",),
           (_s("OperatingUnitNumber", 20, True), _s("Name", 100),
            _s("OperatingUnitType", 30)),
           company_field=None),
    Entity("ResourceRoles", "ProjResourceRoleEntity", ("dataAreaId", "RoleId"),
           (DAID, _s("RoleId", 30, True), _s("Name", 100), _s("SourceDataId", 36))),
    Entity("TransactionCategories", "ProjCDSCategoryEntity", ("CategoryId",),
           (_s("CategoryId", 30, True), _s("Name", 100), _s("SharedCategory", 30),
            _s("IntegrationId", 36)), company_field=None),
    Entity("SharedCategories", "ProjSharedCategoryEntity", ("CategoryId",),
           (_s("CategoryId", 30, True), _s("Name", 100), _s("TransactionCategoryId", 30),
            _e("TransactionType", TRANS_TYPES), _e("CanBeUsedInExpense", NOYES, "No"),
            _s("ExpenseType", 20)), company_field=None,
           refs=(Ref(("TransactionCategoryId",), "TransactionCategories", ("CategoryId",)),)),
    Entity("ProjectCategories", "ProjCategoryEntity", ("dataAreaId", "CategoryId"),
           (DAID, _s("CategoryId", 30, True), _s("Name", 100), _s("SharedCategoryId", 30),
            _s("CategoryGroupId", 10), _e("TransactionType", TRANS_TYPES)),
           refs=(Ref(("SharedCategoryId",), "SharedCategories", ("CategoryId",)),)),
    Entity("ExpenseCategories", "ProjExpenseCategoryEntity", ("dataAreaId", "CategoryId"),
           (DAID, _s("CategoryId", 30, True), _s("Name", 100), _s("SharedCategoryId", 30),
            _s("ExpenseType", 20)),
           refs=(Ref(("SharedCategoryId",), "SharedCategories", ("CategoryId",)),)),
    Entity("ProjectContractHeaders", "ProjProjectContractHeaderEntity",
           ("dataAreaId", "ProjectContractId"),
           (DAID, _s("ProjectContractId", 100, True), _s("Name", 100),
            _s("CustomerAccountNumber", 20), _s("SalesCurrencyCode", 3),
            _s("SalesTaxGroupCode", 10), _s("DefaultLedgerDimensionDisplayValue", 500),
            _s("TermsOfPayment", 10), _s("IntegrationSourceDataId", 36)),
           refs=(Ref(("CustomerAccountNumber",), "CustomersV3", ("CustomerAccount",)),)),
    Entity("ProjectFundingSources", "ProjFundingSourceEntity",
           ("dataAreaId", "ProjectContractID", "FundingSourceId"),
           (DAID, _s("ProjectContractID", 100, True), _s("FundingSourceId", 30, True),
            _s("CustomerOrOrganization", 20), _e("FundingType", ("Customer", "Grant",
                                                                 "Organization"), "Customer"),
            _e("IsPrimaryFundingSource", NOYES, "No"), _s("PartyNumber", 40), _s("Name", 100)),
           refs=(Ref(("ProjectContractID",), "ProjectContractHeaders", ("ProjectContractId",)),
                 Ref(("CustomerOrOrganization",), "CustomersV3", ("CustomerAccount",)))),
    Entity("ProjectsV2", "ProjProjectV2Entity", ("dataAreaId", "ProjectId"),
           (DAID, _s("ProjectId", 20, True), _s("ProjectName", 200),
            _s("ProjectContractId", 100), _s("CustomerAccountNumber", 20),
            _s("ProjectGroupId", 10), _e("ProjectStage", ("InProcess", "Finished"), "InProcess"),
            _d("ProjectedStartDate"), _d("ProjectedEndDate"),
            _s("ProjectManagerPersonnelNumber", 25), _s("SalesTaxGroupId", 10),
            _s("DimensionDisplayValue", 500), _s("IntegrationSourceDataId", 36)),
           refs=(Ref(("ProjectContractId",), "ProjectContractHeaders", ("ProjectContractId",)),
                 Ref(("CustomerAccountNumber",), "CustomersV3", ("CustomerAccount",)))),
    Entity("ProjectTasks", "ProjCDSTaskEntity", ("dataAreaId", "ProjectId", "Task"),
           (DAID, _s("ProjectId", 20, True), _s("Task", 36, True), _s("ParentTask", 36),
            _s("WorkBreakdownStructureID", 30), _s("Name", 200)),
           refs=(Ref(("ProjectId",), "ProjectsV2", ("ProjectId",)),
                 Ref(("ProjectId", "ParentTask"), "ProjectTasks", ("ProjectId", "Task")))),
    Entity("ProjectContractLines", "ProjProjectContractLineEntity",
           ("dataAreaId", "ProjectContractId", "ContractLineId"),
           (DAID, _s("ProjectContractId", 100, True), _s("ContractLineId", 36, True),
            _s("Description", 200), _e("BillingMethod", ("TimeAndMaterial", "FixedPrice")),
            _s("LineProjectId", 20), _r("LineAmount"), _s("SalesTaxGroupCode", 10),
            _s("DefaultLedgerDimensionDisplayValue", 500), Field("LineSequenceNumber", "int")),
           refs=(Ref(("ProjectContractId",), "ProjectContractHeaders", ("ProjectContractId",)),
                 Ref(("LineProjectId",), "ProjectsV2", ("ProjectId",)))),
    Entity("OnAccountTransactions", "ProjCDSContractLineMilestoneImportEntity",
           ("dataAreaId", "TransactionId"),
           (DAID, _s("TransactionId", 36, True), _s("ProjectContractId", 100),
            _s("ContractLineRef", 36), _d("InvoiceDate"), _s("Description", 200),
            _s("CurrencyId", 3), _r("Amount")),
           refs=(Ref(("ProjectContractId", "ContractLineRef"), "ProjectContractLines",
                     ("ProjectContractId", "ContractLineId")),)),
    # Map "Project worker resource import": Microsoft publishes only its label; the entity and
    # field names are emulator choices. Keyed by the bookable resource id (its integration key).
    Entity("ProjectWorkerResources", "ProjWorkerResourceImportEntity", ("dataAreaId", "ResourceId"),
           (DAID, _s("ResourceId", 36, True), _s("Name", 100), _s("PersonnelNumber", 25))),
    Entity("HourEstimateStaging", "ProjCDSEstimateHoursImport", ("dataAreaId", "SourceId"),
           (DAID, _s("SourceId", 36, True), _s("ProjectId", 20), _s("TaskId", 36),
            _s("ResourceId", 36), _r("Duration"), _r("PlannedCostAmount"),
            _r("PlannedSalesAmount"), _s("SalesCurrency", 3), _r("ExchangeRate"),
            _s("ForecastModel", 10), _d("StartDate")),
           refs=(Ref(("ProjectId",), "ProjectsV2", ("ProjectId",)),)),
    Entity("ExpenseEstimateStaging", "ProjCDSEstimateExpenseImport",
           ("dataAreaId", "EstimateLineId"),
           (DAID, _s("EstimateLineId", 36, True), _s("ProjectId", 20), _s("TaskId", 36),
            _s("TransType", 20), _s("BillingType", 20), _s("TransactionCategory", 30),
            _r("Quantity"), _r("Price"), _s("CurrencyId", 3), _r("ExchangeRate"),
            _s("ModelId", 10), _d("DocumentDate")),
           refs=(Ref(("ProjectId",), "ProjectsV2", ("ProjectId",)),)),
    # Label "Project integration table for material estimates": the expense fields plus the
    # released product's item number and its unit (emulator choices beside the published ones).
    Entity("MaterialEstimateStaging", "ProjForecastSalesImport",
           ("dataAreaId", "EstimateLineId"),
           (DAID, _s("EstimateLineId", 36, True), _s("ProjectId", 20), _s("TaskId", 36),
            _s("TransType", 20), _s("BillingType", 20), _s("TransactionCategory", 30),
            _s("ItemId", 20, True), _r("Quantity"), _s("Unit", 10), _r("Price"), _s("CurrencyId", 3),
            _r("ExchangeRate"), _s("ModelId", 10), _d("DocumentDate")),
           refs=(Ref(("ProjectId",), "ProjectsV2", ("ProjectId",)),
                 Ref(("ItemId",), "ReleasedProductsV2", ("ItemNumber",)))),
    # Forecasts derived by FO from the estimate staging rows (see forecasts.py).
    Entity("HourForecasts", "ProjForecastEmpl", ("dataAreaId", "TransId"),
           (DAID, _s("TransId", 36, True), _s("ProjectId", 20), _s("ActivityNumber", 36),
            _s("ResourceId", 36), _r("Hours"), _r("CostPrice"), _r("SalesPrice"),
            _s("CurrencyCode", 3), _s("ModelId", 10), _d("SchedFromDate")),
           read_only=True),
    Entity("ExpenseForecasts", "ProjForecastCost", ("dataAreaId", "TransId"),
           (DAID, _s("TransId", 36, True), _s("ProjectId", 20), _s("ActivityNumber", 36),
            _s("CategoryId", 30), _r("Qty"), _r("CostPrice"), _r("SalesPrice"),
            _s("CurrencyCode", 3), _s("ModelId", 10), _d("TransDate"),
            _s("CostEstimateLineId", 36), _s("SalesEstimateLineId", 36)),
           read_only=True),
    Entity("ItemForecasts", "ForecastSales", ("dataAreaId", "TransId"),
           (DAID, _s("TransId", 36, True), _s("ProjectId", 20), _s("ActivityNumber", 36),
            _s("CategoryId", 30), _s("ItemId", 20), _r("Qty"), _s("SalesUnit", 10),
            _r("CostPrice"), _r("SalesPrice"), _s("CurrencyCode", 3), _s("ModelId", 10),
            _d("TransDate"), _s("CostEstimateLineId", 36), _s("SalesEstimateLineId", 36)),
           read_only=True),
    Entity("FixedPriceRevenueEstimateProjects", "ProjFixedPriceRevenueEstimateProject",
           ("dataAreaId", "ProjectContractId", "ContractLineId"),
           (DAID, _s("ProjectContractId", 100, True), _s("ContractLineId", 36, True),
            _s("ProjectId", 20), _s("EstimateProjectId", 30)),
           read_only=True),
    Entity("ActualsStaging", "ProjCDSActualsImport", ("ProjectDataAreaId", "ActualId"),
           (_s("ProjectDataAreaId", 4, True), _s("ActualId", 36, True),
            _e("TransType", ("Cost", "UnbilledSales", "BilledSales")),
            _e("TransactionClassification", ("Time", "Expense", "Material", "Milestone", "Fee")),
            _s("ProjectId", 20), _s("TaskId", 36), _s("ContractId", 100),
            _s("ContractLine", 36), _s("ResourceId", 36), _s("TransactionCategory", 30),
            _r("Quantity"), _s("UnitOfMeasure", 10), _r("UnitPrice"), _r("Amount"),
            _s("TransactionCurrencyId", 3), _d("DocumentDate"), _d("AccountingDate"),
            _s("BillingType", 20), _s("BillingStatusId", 20), _s("InvoiceId", 36),
            _e("ImportStatus", ("New", "Imported", "Invalid"), "New"), _s("ImportError", 1000),
            _r("ExchangeRate"), _r("AmountMST"), _r("UnitPriceMST"), _s("Voucher", 20),
            _r("SalesTaxAmount"), _e("IsJournalized", NOYES, "No")),
           company_field="ProjectDataAreaId",
           refs=(Ref(("ProjectId",), "ProjectsV2", ("ProjectId",)),)),
    Entity("TransactionRelationships", "ProjCDSTransactionRelationshipImportEntity",
           ("ConnectionId",),
           (_s("ConnectionId", 36, True), _s("Transaction1Id", 36), _s("Transaction1Role", 30),
            _s("Transaction1Type", 30), _s("Transaction2Id", 36), _s("Transaction2Role", 30),
            _s("Transaction2Type", 30)), company_field=None),
    Entity("IntegrationJournals", "ProjOpsIntegrationJournalEntity", ("dataAreaId", "JournalId"),
           (DAID, _s("JournalId", 20, True), _s("PeriodKey", 10),
            _e("Status", ("Draft", "Processing", "Posted", "Error"), "Draft"),
            _s("OriginalJournalId", 20), Field("NumOfLines", "int", default=0)),
           read_only=True),
    Entity("IntegrationJournalLines", "ProjOpsIntegrationJournalTransEntity",
           ("dataAreaId", "JournalId", "LineNum"),
           (DAID, _s("JournalId", 20, True), Field("LineNum", "int", required=True),
            _s("ActualId", 36), _s("ProjectId", 20), _e("TransType", ("Cost", "UnbilledSales")),
            _s("CategoryId", 30), _s("LineProperty", 20), _r("Amount"), _s("CurrencyCode", 3),
            _d("AccountingDate"), _s("OffsetAccount", 30), _s("Voucher", 20),
            _e("Status", ("Draft", "Posted"), "Draft")),
           read_only=True),
    Entity("InvoiceProposals", "ProjInvoiceProposalV2Entity", ("dataAreaId", "InvoiceProposalId"),
           (DAID, _s("InvoiceProposalId", 20, True), _s("SourceInvoiceId", 36),
            _s("ProjectContractId", 100), _s("FundingSourceId", 30), _d("InvoiceDate"),
            _s("SalesCurrency", 3), _s("InvoiceHeaderText", 200),
            _e("Status", ("Open", "Posted"), "Open")),
           refs=(Ref(("ProjectContractId",), "ProjectContractHeaders", ("ProjectContractId",)),)),
    Entity("InvoiceProposalLines", "ProjInvoiceProposalLineV2Entity",
           ("dataAreaId", "InvoiceProposalId", "LineNum"),
           (DAID, _s("InvoiceProposalId", 20, True), Field("LineNum", "int", required=True),
            _s("ActualId", 36), _s("ProjectId", 20), _s("CategoryId", 30), _r("Amount"),
            _r("SalesTaxAmount"), _s("CurrencyCode", 3)),
           read_only=True),
    Entity("ExpenseReportLines", "TrvExpTransProjEntity", ("dataAreaId", "ExpenseNumber", "LineNum"),
           (DAID, _s("ExpenseNumber", 20, True), Field("LineNum", "int", required=True),
            _s("Worker", 25), _s("ProjectId", 20), _s("ActivityNumber", 36),
            _s("ExpenseCategoryId", 30), _d("Date"), _r("Amount"), _s("Currency", 3),
            _r("NonRecoverableTax"), _e("Status", ("Draft", "Approved", "Posted"), "Draft")),
           refs=(Ref(("ProjectId",), "ProjectsV2", ("ProjectId",)),
                 Ref(("ExpenseCategoryId",), "ExpenseCategories", ("CategoryId",)))),
    Entity("PendingVendorInvoices", "VendInvoiceInfoTableEntity", ("dataAreaId", "InvoiceId"),
           (DAID, _s("InvoiceId", 20, True), _s("VendorAccount", 20), _s("InvoiceNumber", 40),
            _d("InvoiceDate"), _s("Currency", 3), _e("Status", ("Pending", "Posted"), "Pending")),
           refs=(Ref(("VendorAccount",), "VendorsV2", ("VendorAccountNumber",)),)),
    Entity("PendingVendorInvoiceLines", "VendInvoiceInfoLineEntity",
           ("dataAreaId", "ExternalInvoiceLine"),
           (DAID, _s("ExternalInvoiceLine", 36, True), _s("InvoiceId", 20, True),
            Field("LineNumber", "int"), _s("ProjectId", 20), _s("ActivityNumber", 36),
            _s("ProjectCategoryId", 30), _s("ItemId", 20), _s("Unit", 10), _r("Quantity"),
            _r("UnitPrice"), _r("Amount"), _e("IntercompanyFlag", NOYES, "No")),
           refs=(Ref(("InvoiceId",), "PendingVendorInvoices", ("InvoiceId",)),
                 Ref(("ProjectId",), "ProjectsV2", ("ProjectId",)),
                 Ref(("ProjectCategoryId",), "ProjectCategories", ("CategoryId",)))),
    # Export entities: written by posting only; dual-write carries them FO->DV.
    Entity("ProjectExpenses", "ProjExpenseExportEntity", ("dataAreaId", "ExpenseLineId"),
           (DAID, _s("ExpenseLineId", 40, True), _s("ExpenseNumber", 20), _s("Worker", 25),
            _s("ProjectId", 20), _s("ActivityNumber", 36), _s("ExpenseCategoryId", 30),
            _d("TransactionDate"), Field("Quantity", "real", default=1.0), _r("Amount"),
            _r("SalesTaxAmount"), _s("Currency", 3), _s("Voucher", 20)),
           read_only=True),
    Entity("ProjectVendorInvoices", "ProjVendInvoiceHeaderExportEntity",
           ("dataAreaId", "InvoiceId"),
           (DAID, _s("InvoiceId", 20, True), _s("VendorAccount", 20), _s("InvoiceNumber", 40),
            _d("InvoiceDate"), _s("Currency", 3), _s("Voucher", 20)),
           read_only=True),
    Entity("ProjectVendorInvoiceLines", "ProjVendInvoiceLineExportEntity",
           ("dataAreaId", "ExternalInvoiceLine"),
           (DAID, _s("ExternalInvoiceLine", 36, True), _s("InvoiceId", 20),
            _s("ProjectId", 20), _s("ActivityNumber", 36), _s("ProjectCategoryId", 30),
            _s("ItemId", 20), _s("Unit", 10), _r("Quantity"), _r("UnitPrice"), _r("Amount"),
            _e("IntercompanyFlag", NOYES, "No")),
           read_only=True),
)

_BY_NAME = {e.name.lower(): e for e in ENTITIES}


def entity(name: str) -> Entity | None:
    """Look an entity up by public collection name (FO URLs are case-insensitive)."""
    return _BY_NAME.get(name.lower())


def entity_named(name: str) -> Entity:
    """Like ``entity`` for names the emulator's own code uses (a typo is a bug, not a 404)."""
    found = entity(name)
    if found is None:
        raise LookupError(name)
    return found
