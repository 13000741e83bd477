"""Project resource roles for all companies (domain.md 1.1 step 2, section 2 map 1).

Dataverse roles (``bookableresourcecategories``) are global; Finance roles are per legal entity.
The map writes each Dataverse role once per legal entity in Dataverse's ``cdm_companies`` (the
companies dual-write brought over from Finance, so they exist there): a new legal entity gets
every existing role, and a role's delete deletes it in every company. Dataverse is the master;
the Finance role id is the Dataverse role's name [inf: the map's field list is not published],
its Dataverse id kept in ``SourceDataId``.
"""

from __future__ import annotations

from streams.maps.model import Condition, Endpoint, FanOut, FieldMap, TableMap

__all__ = ["RESOURCE_ROLES", "ROLE_MAPS"]

RESOURCE_ROLES = TableMap(
    name="resource_roles",
    source=Endpoint(system="dataverse", table="bookableresourcecategories",
                    primary_key="bookableresourcecategoryid"),
    target=Endpoint(system="finance", table="ResourceRoles", company="dataAreaId"),
    key=(
        FieldMap(target="dataAreaId", source="dataAreaId"),  # filled by the fan-out
        FieldMap(target="RoleId", source="name"),
    ),
    fields=(
        FieldMap(target="Name", source="name"),
        FieldMap(target="SourceDataId", source="bookableresourcecategoryid"),
    ),
    filter=(Condition(column="name", op="present"),),
    # Roles set up in Finance itself (no Dataverse id) are not this map's rows.
    target_scope=(Condition(column="SourceDataId", op="present"),),
    fan_out=FanOut(system="dataverse", table="cdm_companies", column="cdm_companycode",
                   fill="dataAreaId"),
    reads=(Endpoint(system="dataverse", table="cdm_companies", primary_key="cdm_companyid",
                    company="cdm_companycode"),),
)

ROLE_MAPS: tuple[TableMap, ...] = (RESOURCE_ROLES,)
