"""The Dataverse tables the emulator serves, declared once; SQL and OData names derive from it.

Names are the real logical names, entity set names and column names of Project Operations
where they are published; the rest follow ``docs/domain.md`` section 5.1. Every table also has
``createdon``, ``modifiedon`` (ISO datetime, ``Z``) and ``versionnumber`` (a global, strictly
increasing integer shared by all tables; the ``@odata.etag`` is ``W/"<versionnumber>"``).

Emulator simplifications (documented contract for connectors):

- ``transactioncurrencyid`` is a plain ISO currency code string, not a lookup to
  ``transactioncurrencies``; so are the ledger's ``msdyn_accountingcurrency`` and
  ``msdyn_reportingcurrency``, and its chart of accounts and fiscal calendar are their names
  (real Dataverse: lookups to ``msdyn_chartofaccounts`` / ``msdyn_fiscalcalendars``).
- Polymorphic customer lookups (``salesorder.customerid``, ``invoice.customerid``) target
  ``accounts`` only; bind them as ``customerid@odata.bind`` (real Dataverse uses
  ``customerid_account@odata.bind``; both spellings are accepted here).
- Lookups are written with ``<column>@odata.bind`` and read back as ``_<column>_value``; the
  navigation property name equals the column name.
- Time-entry prices (``msdyn_costprice``, ``msdyn_salesprice``) stand in for price lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM_COLUMNS = ("createdon", "modifiedon", "versionnumber")


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # guid | str | int | dec | money | bool | date | datetime | choice | lookup
    max_length: int | None = None
    target: str | None = None  # entity set of a lookup
    required: bool = False
    parental: bool = False  # deleting the target deletes this row; otherwise the link is removed

    @property
    def prop(self) -> str:
        """The OData property name a client reads (``_x_value`` for lookups)."""
        return f"_{self.name}_value" if self.kind == "lookup" else self.name


@dataclass(frozen=True)
class Table:
    logical_name: str
    entity_set: str
    primary_key: str
    columns: tuple[Column, ...]
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        cols = (Column(self.primary_key, "guid"), *self.columns,
                Column("createdon", "datetime"), Column("modifiedon", "datetime"),
                Column("versionnumber", "int"))
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "by_name", {c.name: c for c in cols})

    @property
    def type_name(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical_name}"

    @property
    def properties(self) -> dict[str, str]:
        """OData property name -> SQL column, for query options."""
        return {c.prop: c.name for c in self.columns}

    def column(self, name: str) -> Column | None:
        return self.by_name.get(name)


def S(name: str, n: int = 100, required: bool = False) -> Column:
    return Column(name, "str", max_length=n, required=required)


def L(name: str, target: str, required: bool = False, parental: bool = False) -> Column:
    return Column(name, "lookup", target=target, required=required, parental=parental)


def K(name: str, kind: str) -> Column:
    return Column(name, kind)


def _choice(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, "choice") for n in names)


CURRENCY = S("transactioncurrencyid", 3)

TABLES: tuple[Table, ...] = (
    Table("cdm_company", "cdm_companies", "cdm_companyid",
          (S("cdm_companycode", 4, required=True), S("cdm_name", 100), S("accountingcurrency", 3),
           K("msdyn_defaultowningteam", "guid"), *_choice("statecode")),
          (("cdm_companycode",),)),
    Table("account", "accounts", "accountid",
          (S("accountnumber", 20), S("name", 160), L("msdyn_company", "cdm_companies"), CURRENCY,
           *_choice("customertypecode", "statecode"), S("msdyn_customergroupid", 10)),
          (("accountnumber", "msdyn_company"),)),
    Table("msdyn_vendor", "msdyn_vendors", "msdyn_vendorid",
          (S("msdyn_vendoraccountnumber", 20), S("msdyn_vendorname", 160),
           L("msdyn_company", "cdm_companies"), S("msdyn_vendorgroupid", 10), CURRENCY,
           *_choice("statecode")),
          (("msdyn_vendoraccountnumber", "msdyn_company"),)),
    # msdyn_symbol is the integration key of units synced from Finance (the "Units" map).
    Table("uom", "uoms", "uomid",
          (S("name", 100, required=True), K("quantity", "dec"), S("msdyn_symbol", 10),
           S("msdyn_description", 60), S("msdyn_externalunitclassname", 20),
           K("msdyn_decimalprecision", "int")),
          (("name",), ("msdyn_symbol",))),
    # A released product's productnumber joins its company and item number (the integration
    # key of "CDS released distinct products"); msdyn_productnumber is the bare number.
    Table("product", "products", "productid",
          (S("productnumber", 100, required=True), S("name", 100), L("defaultuomid", "uoms"),
           *_choice("statecode"), S("msdyn_productnumber", 70), S("msdyn_itemnumber", 20),
           S("description", 2000), L("msdyn_company", "cdm_companies"),
           *_choice("producttypecode"), K("price", "money"), K("currentcost", "money")),
          (("productnumber",),)),
    Table("msdyn_currencyexchangerate", "msdyn_currencyexchangerates",
          "msdyn_currencyexchangerateid",
          (S("msdyn_exchangeratetypename", 20, required=True),
           S("msdyn_fromcurrencycode", 3, required=True), S("msdyn_tocurrencycode", 3, required=True),
           K("msdyn_validfrom", "date"), K("msdyn_validto", "date"), K("msdyn_exchangerate", "dec")),
          (("msdyn_exchangeratetypename", "msdyn_fromcurrencycode", "msdyn_tocurrencycode",
            "msdyn_validfrom"),)),
    # One ledger per legal entity: it carries the company's accounting currency.
    Table("msdyn_ledger", "msdyn_ledgers", "msdyn_ledgerid",
          (L("msdyn_company", "cdm_companies", required=True), S("msdyn_name", 60),
           S("msdyn_description", 60), S("msdyn_accountingcurrency", 3),
           S("msdyn_reportingcurrency", 3), S("msdyn_chartofaccounts", 60),
           S("msdyn_fiscalcalendar", 60)),
          (("msdyn_company",),)),
    Table("cdm_worker", "cdm_workers", "cdm_workerid",
          (S("cdm_workernumber", 25, required=True), S("cdm_firstname", 100),
           S("cdm_middlename", 100), S("cdm_lastname", 100), S("cdm_fullname", 200),
           *_choice("cdm_type"), S("cdm_primaryemailaddress", 100)),
          (("cdm_workernumber",),)),
    Table("msdyn_organizationalunit", "msdyn_organizationalunits", "msdyn_organizationalunitid",
          (S("msdyn_name", 100, required=True), S("msdyn_currency", 3),
           L("msdyn_company", "cdm_companies")),
          (("msdyn_name",),)),
    Table("bookableresourcecategory", "bookableresourcecategories", "bookableresourcecategoryid",
          (S("name", 100, required=True), S("description", 2000), *_choice("statecode")),
          (("name",),)),
    # Users: a project's manager, and the user a bookable resource of type User stands for.
    Table("systemuser", "systemusers", "systemuserid",
          (S("fullname", 200), S("domainname", 1024, required=True),
           S("internalemailaddress", 100), K("isdisabled", "bool")),
          (("domainname",),)),
    Table("bookableresource", "bookableresources", "bookableresourceid",
          (S("name", 100), *_choice("resourcetype", "statecode"),
           L("msdyn_organizationalunit", "msdyn_organizationalunits"),
           L("msdyn_company", "cdm_companies"), S("msdyn_personnelnumber", 25),
           L("userid", "systemusers"))),
    Table("msdyn_transactioncategory", "msdyn_transactioncategories", "msdyn_transactioncategoryid",
          (S("msdyn_integrationid", 30), S("msdyn_name", 100), *_choice("statecode")),
          (("msdyn_integrationid",),)),
    Table("msdyn_expensecategory", "msdyn_expensecategories", "msdyn_expensecategoryid",
          (S("msdyn_categoryid", 30), S("msdyn_name", 100),
           L("msdyn_transactioncategory", "msdyn_transactioncategories"),
           L("msdyn_company", "cdm_companies"), *_choice("msdyn_expensetype", "statecode")),
          (("msdyn_categoryid", "msdyn_company"),)),
    Table("salesorder", "salesorders", "salesorderid",
          (S("ordernumber", 100), S("name", 300), L("customerid", "accounts"),
           L("msdyn_owningcompany", "cdm_companies"),
           L("msdyn_contractorganizationalunitid", "msdyn_organizationalunits"), CURRENCY,
           *_choice("msdyn_ordertype", "statecode", "statuscode"), K("requestdeliveryby", "date"),
           K("totalamount", "money")),
          (("ordernumber", "msdyn_owningcompany"),)),
    Table("msdyn_projectcontractsplitbillingrule", "msdyn_projectcontractsplitbillingrules",
          "msdyn_projectcontractsplitbillingruleid",
          (S("msdyn_name", 100), L("msdyn_salesorder", "salesorders", parental=True),
           L("msdyn_customer", "accounts"), K("msdyn_percentage", "dec"), *_choice("statecode")),
          (("msdyn_salesorder", "msdyn_customer"),)),
    Table("msdyn_project", "msdyn_projects", "msdyn_projectid",
          (S("msdyn_projectnumber", 20), S("msdyn_subject", 200), L("msdyn_customer", "accounts"),
           L("msdyn_salesorderid", "salesorders"), L("msdyn_owningcompany", "cdm_companies"),
           L("msdyn_contractorganizationalunitid", "msdyn_organizationalunits"),
           L("msdyn_projectmanager", "systemusers"), K("msdyn_scheduledstart", "date"),
           K("msdyn_finish", "date"), CURRENCY, *_choice("statecode")),
          (("msdyn_projectnumber", "msdyn_owningcompany"),)),
    Table("msdyn_projecttask", "msdyn_projecttasks", "msdyn_projecttaskid",
          (L("msdyn_project", "msdyn_projects", required=True, parental=True),
           S("msdyn_wbsid", 50), S("msdyn_subject", 450),
           L("msdyn_parenttask", "msdyn_projecttasks", parental=True),
           K("msdyn_scheduledstart", "date"), K("msdyn_scheduledend", "date"),
           K("msdyn_effort", "dec"), K("msdyn_isleaf", "bool")),
          (("msdyn_project", "msdyn_wbsid"),)),
    Table("salesorderdetail", "salesorderdetails", "salesorderdetailid",
          (L("salesorderid", "salesorders", required=True, parental=True),
           L("msdyn_project", "msdyn_projects"),
           S("msdyn_linenumber", 20), S("productdescription", 500),
           *_choice("msdyn_billingmethod"), K("priceperunit", "money"),
           K("extendedamount", "money"), CURRENCY, L("msdyn_owningcompany", "cdm_companies")),
          (("salesorderid", "msdyn_linenumber"),)),
    Table("msdyn_contractlinescheduleofvalue", "msdyn_contractlinescheduleofvalues",
          "msdyn_contractlinescheduleofvalueid",
          # msdyn_contractline (text) is deprecated for the msdyn_contractlineid lookup.
          (L("msdyn_contract", "salesorders"), S("msdyn_contractline", 100),
           L("msdyn_contractlineid", "salesorderdetails", parental=True), S("msdyn_name", 100),
           K("msdyn_amount", "money"), K("msdyn_invoicedate", "date"),
           *_choice("msdyn_invoicestatus", "msdyn_transactionclassification"),
           L("msdyn_project", "msdyn_projects"), L("msdyn_projecttask", "msdyn_projecttasks"),
           CURRENCY)),
    Table("msdyn_resourceassignment", "msdyn_resourceassignments", "msdyn_resourceassignmentid",
          (L("msdyn_projectid", "msdyn_projects"), L("msdyn_taskid", "msdyn_projecttasks"),
           L("msdyn_bookableresourceid", "bookableresources"),
           L("msdyn_resourcecategory", "bookableresourcecategories"), K("msdyn_hours", "dec"),
           K("msdyn_plannedcost", "money"), K("msdyn_plannedsales", "money"),
           K("msdyn_scheduledstart", "date"), K("msdyn_scheduledend", "date"), CURRENCY)),
    Table("msdyn_estimateline", "msdyn_estimatelines", "msdyn_estimatelineid",
          (L("msdyn_project", "msdyn_projects"), L("msdyn_task", "msdyn_projecttasks"),
           *_choice("msdyn_transactionclassification", "msdyn_transactiontypecode",
                    "msdyn_billingtype"),
           L("msdyn_transactioncategory", "msdyn_transactioncategories"),
           L("msdyn_product", "products"), K("msdyn_quantity", "dec"), K("msdyn_price", "money"),
           K("msdyn_amount", "money"), K("msdyn_documentdate", "date"), CURRENCY)),
    Table("msdyn_actual", "msdyn_actuals", "msdyn_actualid",
          (*_choice("msdyn_transactiontypecode", "msdyn_transactionclassification",
                    "msdyn_billingtype", "msdyn_billingstatus", "msdyn_adjustmentstatus"),
           L("msdyn_project", "msdyn_projects"), L("msdyn_task", "msdyn_projecttasks"),
           L("msdyn_bookableresource", "bookableresources"),
           L("msdyn_resourcecategory", "bookableresourcecategories"),
           L("msdyn_transactioncategory", "msdyn_transactioncategories"),
           L("msdyn_salescontract", "salesorders"),
           L("msdyn_salescontractline", "salesorderdetails"),
           L("msdyn_accountcustomer", "accounts"), L("msdyn_product", "products"),
           K("msdyn_documentdate", "date"), K("msdyn_accountingdate", "date"),
           K("msdyn_quantity", "dec"), L("msdyn_unit", "uoms"), K("msdyn_price", "money"),
           K("msdyn_amount", "money"), CURRENCY, K("msdyn_exchangerate", "dec"),
           L("msdyn_invoice", "invoices"), L("msdyn_owningcompany", "cdm_companies"),
           K("msdyn_skipsync", "bool"), S("msdyn_description", 500),
           S("msdyn_vouchernumber", 50), K("msdyn_accountingamount", "money"),
           K("msdyn_salestaxamount", "money"))),
    Table("msdyn_transactionconnection", "msdyn_transactionconnections",
          "msdyn_transactionconnectionid",
          (S("msdyn_transaction1", 36), *_choice("msdyn_transaction1role", "msdyn_transaction1type"),
           S("msdyn_transaction2", 36), *_choice("msdyn_transaction2role", "msdyn_transaction2type",
                                                 "msdyn_transactiontypecode"))),
    Table("invoice", "invoices", "invoiceid",
          (S("invoicenumber", 100), S("name", 300), L("customerid", "accounts"),
           L("salesorderid", "salesorders"), K("msdyn_invoicedate", "date"), CURRENCY,
           K("totalamount", "money"), *_choice("statecode", "statuscode"),
           L("msdyn_owningcompany", "cdm_companies")),
          (("invoicenumber", "msdyn_owningcompany"),)),
    Table("msdyn_expense", "msdyn_expenses", "msdyn_expenseid",
          (S("msdyn_externalexpenseid", 100), L("msdyn_company", "cdm_companies"),
           L("msdyn_project", "msdyn_projects"), L("msdyn_projecttask", "msdyn_projecttasks"),
           L("msdyn_expensecategory", "msdyn_expensecategories"),
           L("msdyn_bookableresource", "bookableresources"), K("msdyn_transactiondate", "date"),
           K("msdyn_quantity", "dec"), K("msdyn_amount", "money"),
           K("msdyn_salestaxamount", "money"), CURRENCY, *_choice("msdyn_expensestatus")),
          (("msdyn_externalexpenseid", "msdyn_company"),)),
    Table("msdyn_projectvendorinvoice", "msdyn_projectvendorinvoices",
          "msdyn_projectvendorinvoiceid",
          (S("msdyn_externalinvoice", 100), L("msdyn_owningcompany", "cdm_companies"),
           L("msdyn_vendor", "msdyn_vendors"), K("msdyn_invoicedate", "date"),
           S("msdyn_invoicenumber", 100), CURRENCY, *_choice("msdyn_approvalstatus")),
          (("msdyn_externalinvoice", "msdyn_owningcompany"),)),
    Table("msdyn_projectvendorinvoiceline", "msdyn_projectvendorinvoicelines",
          "msdyn_projectvendorinvoicelineid",
          (S("msdyn_externalinvoiceline", 100),
           L("msdyn_vendorinvoice", "msdyn_projectvendorinvoices", parental=True),
           L("msdyn_project", "msdyn_projects"), L("msdyn_projecttask", "msdyn_projecttasks"),
           L("msdyn_transactioncategory", "msdyn_transactioncategories"),
           L("msdyn_product", "products"), L("msdyn_unit", "uoms"), K("msdyn_quantity", "dec"),
           K("msdyn_unitprice", "money"), K("msdyn_amount", "money"),
           L("msdyn_owningcompany", "cdm_companies"), K("msdyn_intercompany", "bool"), CURRENCY),
          (("msdyn_externalinvoiceline",),)),
    Table("msdyn_timeentry", "msdyn_timeentries", "msdyn_timeentryid",
          (L("msdyn_project", "msdyn_projects"), L("msdyn_projecttask", "msdyn_projecttasks"),
           L("msdyn_bookableresource", "bookableresources"),
           L("msdyn_resourcecategory", "bookableresourcecategories"),
           L("msdyn_transactioncategory", "msdyn_transactioncategories"),
           L("msdyn_salescontractline", "salesorderdetails"), K("msdyn_date", "date"),
           K("msdyn_duration", "int"), S("msdyn_description", 500), *_choice("msdyn_entrystatus"),
           K("msdyn_costprice", "money"), K("msdyn_salesprice", "money"), CURRENCY)),
)

_TIME_TO_FEE = tuple(range(192350000, 192350005))
# Accepted option values of choice columns, by column name, or (entity set, column) where a
# table's values differ. Choices not listed accept any integer.
CHOICE_VALUES: dict[str | tuple[str, str], tuple[int, ...]] = {
    "statecode": (0, 1),
    ("salesorders", "statecode"): (0, 1, 2, 3, 4),
    ("invoices", "statecode"): (0, 1, 2, 3),
    "msdyn_transactionclassification": _TIME_TO_FEE,
    "msdyn_transactiontypecode": (192350000, *range(192350004, 192350009)),
    "msdyn_billingtype": tuple(range(192350000, 192350004)),
    "msdyn_billingstatus": tuple(range(192350000, 192350005)),
    "msdyn_adjustmentstatus": tuple(range(192350000, 192350003)),
    "msdyn_invoicestatus": tuple(range(192350000, 192350004)),
    "msdyn_billingmethod": (192350000, 192350001),
    "msdyn_entrystatus": (192350000, 192350001, 192350002, 192354320),
    "cdm_type": (754400000, 754400001),  # worker type: Employee, Contractor [inf values]
    "producttypecode": (1, 2, 3, 4),  # Sales Inventory, Miscellaneous Charges, Services, Flat Fees
}


def choice_values(table: Table, column: Column) -> tuple[int, ...] | None:
    return CHOICE_VALUES.get((table.entity_set, column.name), CHOICE_VALUES.get(column.name))


BY_SET: dict[str, Table] = {t.entity_set: t for t in TABLES}
# entity set -> the (table, lookup column) pairs that reference it
REFERENCES: dict[str, list[tuple[Table, Column]]] = {}
for _table in TABLES:
    for _column in _table.columns:
        if _column.target is not None:
            REFERENCES.setdefault(_column.target, []).append((_table, _column))
_SQL_TYPES = {"int": "INTEGER", "choice": "INTEGER", "bool": "INTEGER", "dec": "REAL", "money": "REAL"}


def ddl(table: Table) -> list[str]:
    """CREATE statements for one table: columns, primary key and one UNIQUE index per key."""
    # Dataverse compares strings case-insensitively (SQL Server's default collation): keys,
    # $filter and uniqueness of alternate keys alike.
    cols = [f'"{c.name}" {_SQL_TYPES.get(c.kind, "TEXT")}'
            + (" COLLATE NOCASE" if c.kind == "str" else "")
            + (" PRIMARY KEY" if c.name == table.primary_key else "") for c in table.columns]
    statements = [f'CREATE TABLE IF NOT EXISTS "{table.entity_set}" ({", ".join(cols)})']
    for i, key in enumerate(table.alternate_keys):
        names = ", ".join(f'"{n}"' for n in key)
        statements.append(f'CREATE UNIQUE INDEX IF NOT EXISTS "{table.entity_set}_ak{i}" '
                          f'ON "{table.entity_set}" ({names})')
    for c in table.columns:
        if c.kind == "lookup":
            statements.append(f'CREATE INDEX IF NOT EXISTS "{table.entity_set}_{c.name}" '
                              f'ON "{table.entity_set}" ("{c.name}")')
    return statements
