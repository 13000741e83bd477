"""A test registry: the setup maps plus one more (Finance operating units -> Dataverse
organizational units), declared here and nowhere else: no built-in map reads either table.
Processes load it through ``DUALWRITE_PROCESSOR__MAPS``."""

from __future__ import annotations

from streams.maps import SETUP_MAPS, Endpoint, FieldMap, MapRegistry, TableMap

ORGANIZATIONAL_UNITS = TableMap(
    name="organizational_units",
    source=Endpoint(system="finance", table="OperatingUnits"),
    target=Endpoint(system="dataverse", table="msdyn_organizationalunits",
                    primary_key="msdyn_organizationalunitid"),
    key=(FieldMap(target="msdyn_name", source="Name", direction="to_dataverse"),),
    # Finance operating units carry no currency; this test map writes a constant one.
    fields=(FieldMap(target="msdyn_currency", const="USD", direction="to_dataverse"),),
    target_id_column="msdyn_organizationalunitid",
)

REGISTRY = MapRegistry((*SETUP_MAPS, ORGANIZATIONAL_UNITS))
