"""A bench-only map registry with an actuals-like map: each row looks up six other tables.

Actuals are what the maps still to come look like (issue 9: seven lookups), so the P1b figure
replays them to show whether the processor's cost stays flat in the number of lookups. The
worker loads it with ``DUALWRITE_PROCESSOR__MAPS=bench.registry:ACTUALS_REGISTRY``; nothing else
in the project knows it. The lookup tables' rows are pre-filled (`bench.workload`), as a
deployment's reference data would be, before the actuals replay.
"""

from __future__ import annotations

from streams.maps import Endpoint, FieldMap, Lookup, MapRegistry, TableMap

__all__ = ["ACTUALS", "ACTUALS_REGISTRY", "ACTUALS_TABLE", "LOOKUP_TABLES", "REGISTRY_SPEC"]

ACTUALS_TABLE = "msdyn_actuals"
# lookup name -> (table, primary key, indexed column)
LOOKUP_TABLES: dict[str, tuple[str, str, str]] = {
    "company": ("cdm_companies", "cdm_companyid", "cdm_companycode"),
    "project": ("msdyn_projects", "msdyn_projectid", "msdyn_projectnumber"),
    "task": ("msdyn_projecttasks", "msdyn_projecttaskid", "msdyn_wbsid"),
    "resource": ("bookableresources", "bookableresourceid", "name"),
    "category": ("msdyn_transactioncategories", "msdyn_transactioncategoryid", "msdyn_name"),
    "role": ("bookableresourcecategories", "bookableresourcecategoryid", "name"),
}
REGISTRY_SPEC = "bench.registry:ACTUALS_REGISTRY"


def _column(name: str) -> str:
    return f"_msdyn_{name}_value"


ACTUALS = TableMap(
    name="bench_actuals",
    source=Endpoint(system="dataverse", table=ACTUALS_TABLE, primary_key="msdyn_actualid"),
    target=Endpoint(system="finance", table="BenchProjectActuals", company="dataAreaId"),
    key=(
        FieldMap(target="dataAreaId", lookup="company", lookup_field="cdm_companycode"),
        FieldMap(target="TransId", source="msdyn_transactionnumber"),
    ),
    fields=(
        FieldMap(target="ProjectId", lookup="project", lookup_field="msdyn_projectnumber"),
        FieldMap(target="ActivityNumber", lookup="task", lookup_field="msdyn_wbsid"),
        FieldMap(target="Worker", lookup="resource", lookup_field="name"),
        FieldMap(target="CategoryId", lookup="category", lookup_field="msdyn_name"),
        FieldMap(target="LinePropertyId", lookup="role", lookup_field="name"),
        FieldMap(target="Qty", source="msdyn_quantity", kind="int"),
        FieldMap(target="TransDate", source="msdyn_documentdate", kind="date"),
    ),
    lookups=tuple(Lookup(name=name, column=_column(name), ref="row", table=table, fields=(column,))
                  for name, (table, _pk, column) in LOOKUP_TABLES.items()),
    reads=tuple(Endpoint(system="dataverse", table=table, primary_key=pk)
                for table, pk, _column_name in LOOKUP_TABLES.values()),
    target_id_column="RecId",
)

ACTUALS_REGISTRY = MapRegistry((ACTUALS,))
