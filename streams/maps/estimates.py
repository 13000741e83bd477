"""Project estimates, Dataverse -> Finance staging (domain.md 1.2 "Labor", 1.7, 2 map 15).

    hour_estimates  msdyn_resourceassignments -> HourEstimateStaging (ProjCDSEstimateHoursImport)

A resource assignment (a named or generic resource on a task) is the labor estimate; Finance
turns each staging row into an hour forecast (``HourForecasts``). Dataverse is the only master:
Finance never changes estimates, and a deleted assignment deletes its staging row (and so its
forecast). Dependency order (1.7, level 5): an estimate waits for its project and, when it has
one, its task in Finance, found through ``key`` lookups so the keys are those their maps wrote.

Not mapped, and why:

- ``ResourceId`` is the bookable resource id as is, without waiting for the worker resource: a
  generic resource has no worker in Finance, and the staging entity does not reference one.
- ``ExchangeRate`` and ``ForecastModel``: Dataverse holds neither; Finance defaults them from
  its rates and the project parameters' forecast model.
- ``Description``: the emulator entity has no such field.
- Expense and material estimates (``msdyn_estimatelines``) need their cost and sales lines
  joined into one forecast: not here.
"""

from __future__ import annotations

from streams.maps.model import Dependency, Endpoint, FieldMap, Lookup, TableMap

__all__ = ["ESTIMATE_MAPS", "HOUR_ESTIMATES"]

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
    lookups=(
        Lookup(name="project", column="_msdyn_projectid_value", ref="key", table="projects"),
        Lookup(name="task", column="_msdyn_taskid_value", ref="key", table="project_tasks"),
    ),
    depends=(
        Dependency(entity="ProjectsV2", key=(("dataAreaId", "project", "dataAreaId"),
                                             ("ProjectId", "project", "ProjectId")),
                   same_tx_column="_msdyn_projectid_value"),
        Dependency(entity="ProjectTasks", key=(("dataAreaId", "task", "dataAreaId"),
                                               ("ProjectId", "task", "ProjectId"),
                                               ("Task", "task", "Task")),
                   same_tx_column="_msdyn_taskid_value"),
    ),
)

ESTIMATE_MAPS: tuple[TableMap, ...] = (HOUR_ESTIMATES,)
