"""Project estimates, Dataverse -> Finance staging (domain.md 1.2 "Labor", "Expense" and
"Material", 1.7, 2 maps 9, 14, 15). All flow one way: Dataverse is the only master, Finance never
changes estimates, and a deleted estimate deletes its staging row (and so its forecast).

    hour_estimates      msdyn_resourceassignments -> HourEstimateStaging (ProjCDSEstimateHoursImport)
    expense_estimates   msdyn_estimatelines (Expense class) -> ExpenseEstimateStaging
                        (ProjCDSEstimateExpenseImport)
    material_estimates  msdyn_estimatelines (Material class) -> MaterialEstimateStaging
                        (ProjForecastSalesImport, "Project integration table for material estimates")

Expense and material estimates: one Dataverse table feeds both maps, each filtered on its
transaction class, so an estimate line is in exactly one of them (lines of other classes in
neither). Dataverse keeps a cost and a sales estimate as two lines; Finance merges the pair into
one forecast (``ExpenseForecasts``, ``ItemForecasts``), matching them by project, task,
transaction category and date, and a material pair also by item. Each line is written only once
its partner is known (`Partner`): a half whose partner never comes waits, named in `dualwrite
status` with its age, rather than becoming a forecast with half its prices. A line waits for its
project, task and transaction category in Finance; a material line also for its released product
in the project's legal entity (``ReleasedProductsV2``): the line's Dataverse product is read
from the ``products`` rows the released products map writes (`streams.maps.prerequisites`),
whose item number is the Finance ``ItemId``. Pairs are matched when a line is first written: a
line moved to another pair later (a new date) waits for a partner there; its old half stays known.

A resource assignment (a named or generic resource on a task) is the labor estimate; Finance
turns each staging row into an hour forecast (``HourForecasts``). Dependency order (1.7, level
5): an estimate waits for its project and, when it has one, its task in Finance, found through
``key`` lookups so the keys are those their maps wrote.

Not mapped, and why:

- ``ResourceId`` is the bookable resource id as is, without waiting for the worker resource: a
  generic resource has no worker in Finance, and the staging entity does not reference one.
- ``ExchangeRate``, ``ForecastModel`` / ``ModelId``: Dataverse holds neither; Finance defaults
  them from its rates and the project parameters' forecast model.
- ``Description``: the emulator entity has no such field.
- Material ``Unit``: the Dataverse estimate line holds no unit; Finance defaults the item's
  sales unit on the forecast. A material line without a product, or on a product that is no
  released product (no item number), names no item: Finance refuses it (``ItemId`` is
  mandatory), so it is a dead letter with Finance's reason, never a forecast without an item.
"""

from __future__ import annotations

from streams.maps.actuals import BILLING_TYPES
from streams.maps.model import Condition, Dependency, Endpoint, FieldMap, Lookup, Partner, TableMap

__all__ = ["ESTIMATE_MAPS", "EXPENSE_ESTIMATES", "HOUR_ESTIMATES", "MATERIAL_ESTIMATES"]

def _on_task(project_column: str, task_column: str) -> tuple[Lookup, ...]:
    """The Finance keys the projects and project tasks maps wrote for the estimate's project and task."""
    return (Lookup(name="project", column=project_column, ref="key", table="projects"),
            Lookup(name="task", column=task_column, ref="key", table="project_tasks"))


def _waits_for_task(project_column: str, task_column: str) -> tuple[Dependency, ...]:
    """The project in Finance, and the task when the estimate has one."""
    return (Dependency(entity="ProjectsV2", key=(("dataAreaId", "project", "dataAreaId"),
                                                 ("ProjectId", "project", "ProjectId")),
                       same_tx_column=project_column),
            Dependency(entity="ProjectTasks", key=(("dataAreaId", "task", "dataAreaId"),
                                                   ("ProjectId", "task", "ProjectId"),
                                                   ("Task", "task", "Task")),
                       same_tx_column=task_column))


HOUR_ESTIMATES = TableMap(
    name="hour_estimates",
    source=Endpoint(system="dataverse", table="msdyn_resourceassignments",
                    primary_key="msdyn_resourceassignmentid"),
    target=Endpoint(system="finance", table="HourEstimateStaging", company="dataAreaId"),
    key=(
        # The project's legal entity as the projects map wrote it (no project: a dead letter).
        FieldMap(target="dataAreaId", lookup="project", lookup_field="dataAreaId"),
        FieldMap(target="SourceId", source="msdyn_resourceassignmentid"),
    ),
    fields=(
        FieldMap(target="ProjectId", lookup="project", lookup_field="ProjectId"),
        FieldMap(target="TaskId", lookup="task", lookup_field="Task"),
        FieldMap(target="ResourceId", source="_msdyn_bookableresourceid_value"),
        FieldMap(target="Duration", source="msdyn_hours"),
        FieldMap(target="PlannedCostAmount", source="msdyn_plannedcost"),
        FieldMap(target="PlannedSalesAmount", source="msdyn_plannedsales"),
        FieldMap(target="SalesCurrency", source="transactioncurrencyid"),
        FieldMap(target="StartDate", source="msdyn_scheduledstart", kind="date"),
    ),
    lookups=_on_task("_msdyn_projectid_value", "_msdyn_taskid_value"),
    depends=_waits_for_task("_msdyn_projectid_value", "_msdyn_taskid_value"),
)

# Dataverse choice values (domain.md 5) -> Finance. [inf] Finance's estimate transaction types
# are not published: a cost line is "Cost", a sales line (unbilled sales) "Sales".
ESTIMATE_TYPES = ((192350000, "Cost"), (192350005, "Sales"))
CLASS_EXPENSE, CLASS_MATERIAL = 192350001, 192350002
# How Finance matches a cost line with its sales line (a material pair also by item).
PAIR_MATCH = ("dataAreaId", "ProjectId", "TaskId", "TransactionCategory", "DocumentDate")


def _estimate_lines(name: str, staging: str, classification: int, *, fields: tuple[FieldMap, ...] = (),
                    lookups: tuple[Lookup, ...] = (), depends: tuple[Dependency, ...] = (),
                    match: tuple[str, ...] = ()) -> TableMap:
    """A map of the estimate lines of one transaction class to a staging entity whose cost and
    sales lines Finance merges into one forecast; ``fields``, ``lookups``, ``depends`` and
    ``match`` are what the class adds to what every such map has."""
    return TableMap(
        name=name,
        source=Endpoint(system="dataverse", table="msdyn_estimatelines", primary_key="msdyn_estimatelineid"),
        target=Endpoint(system="finance", table=staging, company="dataAreaId"),
        key=(
            FieldMap(target="dataAreaId", lookup="project", lookup_field="dataAreaId"),
            FieldMap(target="EstimateLineId", source="msdyn_estimatelineid"),
        ),
        fields=(
            FieldMap(target="ProjectId", lookup="project", lookup_field="ProjectId"),
            FieldMap(target="TaskId", lookup="task", lookup_field="Task"),
            FieldMap(target="TransType", source="msdyn_transactiontypecode", value_map=ESTIMATE_TYPES),
            FieldMap(target="BillingType", source="msdyn_billingtype", value_map=BILLING_TYPES),
            FieldMap(target="TransactionCategory", lookup="category", lookup_field="CategoryId"),
            FieldMap(target="Quantity", source="msdyn_quantity"),
            FieldMap(target="Price", source="msdyn_price"),
            FieldMap(target="CurrencyId", source="transactioncurrencyid"),
            FieldMap(target="DocumentDate", source="msdyn_documentdate", kind="date"),
            *fields,
        ),
        lookups=(*_on_task("_msdyn_project_value", "_msdyn_task_value"),
                 Lookup(name="category", column="_msdyn_transactioncategory_value", ref="key",
                        table="transaction_categories"),
                 *lookups),
        # One Dataverse table feeds the expense and the material maps: each takes its class only.
        filter=(Condition(column="msdyn_transactionclassification", op="eq", value=classification),),
        depends=(*_waits_for_task("_msdyn_project_value", "_msdyn_task_value"),
                 Dependency(entity="TransactionCategories", key=(("CategoryId", "category", "CategoryId"),)),
                 *depends),
        # Finance merges a cost line and its sales line into one forecast: both are written once
        # both are known, matched as Finance matches them.
        partner=Partner(match=(*PAIR_MATCH, *match), side="TransType", sides=("Cost", "Sales")),
    )


EXPENSE_ESTIMATES = _estimate_lines("expense_estimates", "ExpenseEstimateStaging", CLASS_EXPENSE)

MATERIAL_ESTIMATES = _estimate_lines(
    "material_estimates", "MaterialEstimateStaging", CLASS_MATERIAL,
    # The Dataverse product as the released products map wrote it: its item number in Finance.
    fields=(FieldMap(target="ItemId", lookup="product", lookup_field="msdyn_itemnumber"),),
    lookups=(Lookup(name="product", column="_msdyn_product_value", ref="row", table="products",
                    fields=("msdyn_itemnumber",)),),
    # The item released in the project's legal entity (Finance refuses a line naming another).
    depends=(Dependency(entity="ReleasedProductsV2", key=(("dataAreaId", "project", "dataAreaId"),
                                                          ("ItemNumber", "product", "msdyn_itemnumber"))),),
    match=("ItemId",),
)

ESTIMATE_MAPS: tuple[TableMap, ...] = (HOUR_ESTIMATES, EXPENSE_ESTIMATES, MATERIAL_ESTIMATES)
