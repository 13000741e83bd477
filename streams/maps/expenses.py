"""Expense management, Finance -> Dataverse (domain.md 1.4, 1.7, 2 maps 16 and 17, 5).

    expense_categories  ExpenseCategories (ProjExpenseCategoryEntity) -> msdyn_expensecategories
    project_expenses    ProjectExpenses (ProjExpenseExportEntity)     -> msdyn_expenses

Finance is the master of both: an expense category is set up in Finance on a shared category
of type Expense, an expense line is exported when its expense report is posted. Dataverse
approves a new expense itself and creates its Expense-class actuals, which the actuals map
(`streams.maps.actuals`) carries back to Finance staging: this module only brings the lines.

Dependency order (1.7): legal entity -> transaction category -> Finance shared and expense
category -> Dataverse expense category -> expense line -> approval -> actuals. Every reference
here is a Dataverse row, bound by its GUID, found through a ``present`` lookup (the row's
presence in Dataverse, learned from acks or the table's own feed), so a row waits, parked and
named in `dualwrite status`, until what it binds exists:

- an expense category waits for its legal entity and its transaction category in Dataverse:
  its shared category (Finance ``SharedCategories``, indexed from its feed) names the
  transaction category id, the Dataverse row's integration key (``msdyn_integrationid``, the
  transaction categories map's key); a category of a Finance-only transaction category waits
  until that category exists in Dataverse. It is company specific: one Dataverse row per legal
  entity, keyed by (category id, company GUID);
- an expense line waits for its legal entity, its project (number + company GUID), its task
  (project GUID + WBS id, ``ActivityNumber``), its expense category (category id + company
  GUID: the row the expense categories map wrote, or one made in Dataverse) and, when it names
  a worker, that worker's bookable resource in the same company (personnel number + company
  GUID). A line without a task or worker binds none and waits for none.

Deletes: Finance never deletes an export row; a deleted expense category deletes its Dataverse
row (the key the map wrote).

Not mapped, and why:

- ``msdyn_expensetype``: a Dataverse choice whose option values are not published; Finance's
  expense type is a name (Travel, Hotel). Left to Dataverse's default rather than guessed.
- ``ExpenseNumber``, ``Voucher``: the Dataverse table has no such columns (the line's id,
  ``<expense number>-<line>``, is its integration key ``msdyn_externalexpenseid``).
- ``msdyn_expensestatus``: Dataverse's own (its approval sets it).
- A shared category id holding ``|`` or ``\\`` is not found: the Finance source escapes those
  in record ids (``connectors.finance.client.key_string``); such a category waits, named.
"""

from __future__ import annotations

from streams.maps.model import Endpoint, Lookup, TableMap
from streams.maps.to_dataverse import COMPANY, bind, company_key, present, to_dv

__all__ = ["EXPENSE_CATEGORIES", "EXPENSE_MAPS", "PROJECT_EXPENSES"]

_IN_COMPANY = (("_msdyn_company_value", "company", "target_id"),)


EXPENSE_CATEGORIES = TableMap(
    name="expense_categories",
    source=Endpoint(system="finance", table="ExpenseCategories", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="msdyn_expensecategories",
                    primary_key="msdyn_expensecategoryid", company_lookup="_msdyn_company_value"),
    key=(to_dv("msdyn_categoryid", "CategoryId"), company_key()),
    fields=(
        to_dv("msdyn_name", "Name"),
        bind("msdyn_transactioncategory", "category", "msdyn_transactioncategories"),
        bind("msdyn_company", "company", "cdm_companies"),
    ),
    lookups=(
        COMPANY,
        Lookup(name="shared", column="SharedCategoryId", ref="row", system="finance",
               table="SharedCategories", fields=("TransactionCategoryId",)),
        Lookup(name="category", column="TransactionCategoryId", via="shared", ref="present",
               table="msdyn_transactioncategories", key_field="msdyn_integrationid"),
    ),
    filter=present("dataAreaId", "CategoryId", "SharedCategoryId"),
    target_id_column="msdyn_expensecategoryid",
)

PROJECT_EXPENSES = TableMap(
    name="project_expenses",
    source=Endpoint(system="finance", table="ProjectExpenses", company="dataAreaId"),
    target=Endpoint(system="dataverse", table="msdyn_expenses", primary_key="msdyn_expenseid",
                    company_lookup="_msdyn_company_value"),
    key=(to_dv("msdyn_externalexpenseid", "ExpenseLineId"), company_key()),
    fields=(
        bind("msdyn_project", "project", "msdyn_projects"),
        bind("msdyn_projecttask", "task", "msdyn_projecttasks"),
        bind("msdyn_expensecategory", "category", "msdyn_expensecategories"),
        bind("msdyn_bookableresource", "resource", "bookableresources"),
        to_dv("msdyn_transactiondate", "TransactionDate", kind="date"),
        to_dv("msdyn_quantity", "Quantity"),
        to_dv("msdyn_amount", "Amount"),
        to_dv("msdyn_salestaxamount", "SalesTaxAmount"),
        to_dv("transactioncurrencyid", "Currency"),
        bind("msdyn_company", "company", "cdm_companies"),
    ),
    lookups=(
        COMPANY,
        Lookup(name="project", column="ProjectId", ref="present", table="msdyn_projects",
               key_field="msdyn_projectnumber",
               also=(("_msdyn_owningcompany_value", "company", "target_id"),)),
        Lookup(name="task", column="ActivityNumber", ref="present", table="msdyn_projecttasks",
               key_field="msdyn_wbsid", also=(("_msdyn_project_value", "project", "target_id"),)),
        Lookup(name="category", column="ExpenseCategoryId", ref="present",
               table="msdyn_expensecategories", key_field="msdyn_categoryid", also=_IN_COMPANY),
        Lookup(name="resource", column="Worker", ref="present", table="bookableresources",
               key_field="msdyn_personnelnumber", also=_IN_COMPANY),
    ),
    filter=present("dataAreaId", "ExpenseLineId", "ProjectId"),
    target_id_column="msdyn_expenseid",
)

EXPENSE_MAPS: tuple[TableMap, ...] = (EXPENSE_CATEGORIES, PROJECT_EXPENSES)
